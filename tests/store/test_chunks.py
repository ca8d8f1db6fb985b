from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lokiarrow.store.chunks import MIN_ROW_GROUP, _row_group_bounds, write_chunks
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


def test_row_groups_follow_streams_over_the_hour(tmp_path: Path) -> None:
    """An hour's file sorted by (stream, time): each stream's rows of the hour lie in consecutive
    row groups (its stream_id statistics find them), tiny neighbours share one."""
    n = 7 * (MIN_ROW_GROUP + 10)
    rows = [({"app": f"s{i % 7}"}, (i * 997 * 10**9) % (3600 * 10**9), f"line {i}") for i in range(n)]
    rows += [({"app": "tiny"}, i * 10**9, "t") for i in range(3)]
    table = pa.Table.from_batches([entries(rows)])
    streams = dict(zip(table.column("stream_id").to_pylist(), table.column("labels").to_pylist(), strict=True))
    index = write_chunks(Root(str(tmp_path)), "t", table, streams, MIN_ROW_GROUP)
    [chunk] = set(index.column("chunk").to_pylist())
    written = pq.read_table(tmp_path / chunk)
    keys = list(zip(written.column("stream_id").to_pylist(), written.column("ts").to_pylist(), strict=True))
    assert keys == sorted(keys)
    md = pq.read_metadata(tmp_path / chunk)
    assert md.num_rows == n + 3
    groups = [md.row_group(i).column(0).statistics for i in range(md.num_row_groups)]
    # each big stream split once at row_group_size; the tiny one shares a group or ends the file
    assert len(groups) in (14, 15)
    assert sum(st.min != st.max for st in groups) <= 1
