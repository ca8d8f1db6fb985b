from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lokiarrow.store.chunks import MIN_ROW_GROUP, ROW_GROUP_WINDOW_NS, _row_group_bounds, write_chunks
from lokiarrow.store.fs import Root
from tests.store.helpers import entries


def test_row_groups_cut_at_stream_boundaries() -> None:
    ids = np.array([1] * 3 + [2] * MIN_ROW_GROUP + [3] * 5 + [4] * 3 * MIN_ROW_GROUP)
    bounds = _row_group_bounds(ids, 2 * MIN_ROW_GROUP)
    assert bounds[0] == (0, 3 + MIN_ROW_GROUP)  # small stream 1 shares with 2; cut where 2 ends
    assert all(hi - lo <= 2 * MIN_ROW_GROUP for lo, hi in bounds)
    assert bounds[-1][1] == len(ids)
    assert [lo for lo, _ in bounds[1:]] == [hi for _, hi in bounds[:-1]]


def test_equal_timestamps_keep_arrival_order_in_files(tmp_path: Path) -> None:
    a, b = {"app": "a"}, {"app": "b"}
    batch = entries([(b, 5, "b first"), (a, 7, "x1"), (a, 5, "first"), (a, 5, "second"), (a, 5, "third")])
    table = pa.Table.from_batches([batch])
    streams = dict(zip(table.column("stream_id").to_pylist(), table.column("labels").to_pylist(), strict=True))
    index = write_chunks(Root(str(tmp_path)), "t", table, streams, 1000)
    [chunk] = {c for c in index.column("chunk").to_pylist()}
    lines = pq.read_table(tmp_path / chunk).column("line").to_pylist()
    assert [x for x in lines if x in ("first", "second", "third")] == ["first", "second", "third"]
    assert sorted(index.column("rows").to_pylist()) == [1, 4]


def test_row_groups_never_cross_a_window(tmp_path: Path) -> None:
    """An hour's file holds six windows; each row group lies in one (its ts statistics say which),
    and tiny streams share a row group only inside a window."""
    window = ROW_GROUP_WINDOW_NS
    rows = [({"app": f"s{i % 7}"}, (i * 997 * 10**9) % (6 * window), f"line {i}") for i in range(2000)]
    table = pa.Table.from_batches([entries(rows)])
    streams = dict(zip(table.column("stream_id").to_pylist(), table.column("labels").to_pylist(), strict=True))
    index = write_chunks(Root(str(tmp_path)), "t", table, streams, 1000)
    [chunk] = set(index.column("chunk").to_pylist())
    md = pq.read_metadata(tmp_path / chunk)
    assert md.num_rows == 2000
    windows = []
    for i in range(md.num_row_groups):
        ts = md.row_group(i).column(1).statistics
        assert ts.min // window == ts.max // window
        windows.append(ts.min // window)
    assert windows == sorted(windows) and set(windows) == set(range(6))
    assert md.num_row_groups < 6 * 7  # neighbours shared a row group


def test_row_group_bounds_cut_at_window_changes() -> None:
    ids = np.array([1, 1, 2, 2, 1, 1, 2])
    windows = np.array([0, 0, 0, 0, 1, 1, 1])
    assert _row_group_bounds(ids, 100, windows) == [(0, 4), (4, 7)]
