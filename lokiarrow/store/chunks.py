"""Writing a head's entries as Parquet chunk files, one per hour of data, and their index rows.

1. Sort the entries by (hour, stream_id, ts), stably: entries with equal timestamps keep arrival
   order.
2. Split by UTC hour: a file covers a bounded time window, so the index can order files by time
   and a log query can read the newest files first and stop early. Files sit in `day=` folders.
3. Per file: row groups follow stream boundaries (small neighbouring streams share one, big ones
   are split at `row_group_size`), so row-group statistics on stream_id skip every other stream.
4. Beside the line, the parsed-field columns of store/fields.py (chosen once per flush).
5. Write the chunk file atomically, then its index file (one row per stream: span, entries,
   bytes). The chunk lands first, so no index row ever points at a missing file.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lokiarrow.store.fields import (
    FIELD_PREFIX,
    INEXACT_COLUMN,
    PARSED_COLUMN,
    choose_fields,
    extract,
    field_column,
)
from lokiarrow.store.fs import Root
from lokiarrow.store.names import chunk_path, day_of, index_path, new_segment_name
from lokiarrow.store.schema import CHUNK, INDEX

ZSTD_LEVEL = 1  # as small as level 3 on log lines, and faster; the compactor can spend more
NS_PER_HOUR = 3600 * 10**9
MIN_ROW_GROUP = 256  # neighbouring tiny streams share a row group up to this many rows


def _row_group_bounds(stream_ids: np.ndarray, max_rows: int) -> list[tuple[int, int]]:
    """[start, end) row ranges that cut only at stream boundaries, except inside huge streams."""
    starts = np.flatnonzero(np.diff(stream_ids, prepend=stream_ids[0] - 1)).tolist() + [len(stream_ids)]
    bounds: list[tuple[int, int]] = []
    lo = 0
    for cut in starts[1:]:
        if cut - lo >= MIN_ROW_GROUP or cut == len(stream_ids):
            for s in range(lo, cut, max_rows):
                bounds.append((s, min(s + max_rows, cut)))
            lo = cut
    return bounds


def _parquet_bytes(table: pa.Table, bounds: list[tuple[int, int]]) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    dictionary = ["stream_id", "metadata.key_value.key", "metadata.key_value.value",
                  *(name for name in table.column_names if name.startswith(FIELD_PREFIX)),
                  *([f"{INEXACT_COLUMN}.list.element"] if INEXACT_COLUMN in table.column_names else [])]
    delta = {"ts": "DELTA_BINARY_PACKED"} if "ts" in table.column_names else None  # ~30 % smaller
    with pq.ParquetWriter(sink, table.schema, compression="zstd", compression_level=ZSTD_LEVEL,
                          use_dictionary=dictionary, column_encoding=delta,
                          write_statistics=["stream_id", "ts"]) as writer:
        for lo, hi in bounds:
            writer.write_table(table.slice(lo, hi - lo), row_group_size=hi - lo)
    return sink.getvalue()


def write_chunks(root: Root, tenant: str, entries: pa.Table, streams: dict[int, str],
                 row_group_size: int, max_fields: int = 0) -> pa.Table:
    """Write `entries` (ENTRIES schema) as chunk + index files; returns the index rows written."""
    if entries.num_rows == 0:
        return INDEX.empty_table()
    # one stable sort by (hour, stream, time), of the chunk columns only: each hour is then a
    # zero-copy slice, and memory holds one sorted copy of the head at most
    data = entries.select(CHUNK.names).cast(CHUNK)
    hours = pc.divide(data.column("ts"), pa.scalar(NS_PER_HOUR, pa.int64()))
    keyed = data.append_column("hour", hours)
    order = pc.sort_indices(keyed, [("hour", "ascending"), ("stream_id", "ascending"), ("ts", "ascending")])
    ordered = keyed.take(order)
    del keyed, data
    names = choose_fields(ordered.column("line"), max_fields)
    if names:
        fields = extract(ordered.column("line"), names)
        ordered = ordered.append_column(PARSED_COLUMN, fields.parsed).append_column(INEXACT_COLUMN, fields.inexact)
        for name in names:
            ordered = ordered.append_column(field_column(name), fields.columns[name])
    hour_of_row = ordered.column("hour").to_numpy()
    cuts = np.flatnonzero(np.diff(hour_of_row)) + 1
    segment = new_segment_name()
    written = []
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(hour_of_row)], strict=True):
        hour = int(hour_of_row[lo])
        part = ordered.slice(lo, hi - lo).drop_columns(["hour"])
        day = day_of(hour * NS_PER_HOUR)
        name = f"{segment}-h{hour % 24:02d}"
        chunk = chunk_path(tenant, day, name)
        bounds = _row_group_bounds(part.column("stream_id").to_numpy(), row_group_size)
        root.write_atomic(chunk, _parquet_bytes(part, bounds))
        rows = _index_rows(part, chunk, streams)
        root.write_atomic(index_path(tenant, day, name), _parquet_bytes(rows, [(0, rows.num_rows)]))
        written.append(rows)
    return pa.concat_tables(written)


def _index_rows(part: pa.Table, chunk: str, streams: dict[int, str]) -> pa.Table:
    sized = pa.table({"stream_id": part.column("stream_id"), "ts": part.column("ts"),
                      "bytes": pc.binary_length(part.column("line"))})
    stats = sized.group_by("stream_id", use_threads=False).aggregate(
        [("ts", "min"), ("ts", "max"), ("ts", "count"), ("bytes", "sum")])
    ids = stats.column("stream_id").to_pylist()
    return pa.table({
        "stream_id": stats.column("stream_id"),
        "labels": pa.array([streams[i] for i in ids], pa.string()),
        "chunk": pa.array([chunk] * len(ids), pa.string()),
        "min_ts": stats.column("ts_min"),
        "max_ts": stats.column("ts_max"),
        "rows": stats.column("ts_count").cast(pa.int64()),
        "bytes": stats.column("bytes_sum").cast(pa.int64()),
    }, schema=INDEX)
