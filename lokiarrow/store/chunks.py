"""Writing a head's entries as day-partitioned Parquet chunk files and their index rows.

1. Sort the entries by (stream_id, ts): a stream's entries sit together, so row-group statistics
   on stream_id let a scan skip everything but the wanted streams.
2. Split by UTC day (the `day=` partition).
3. Per day: write the chunk file (zstd, ~128 k-row groups) atomically, then its index file
   (one row per stream: span, entries, bytes). The chunk lands first, so no index row ever points
   at a missing file.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lokiarrow.store.fs import Root
from lokiarrow.store.names import NS_PER_DAY, chunk_path, day_of, index_path, new_segment_name
from lokiarrow.store.schema import CHUNK, INDEX

ZSTD_LEVEL = 3


def _parquet_bytes(table: pa.Table, row_group_size: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size, compression="zstd",
                   compression_level=ZSTD_LEVEL, use_dictionary=["stream_id"], write_statistics=True)
    return sink.getvalue().to_pybytes()


def write_chunks(root: Root, tenant: str, entries: pa.Table, streams: dict[int, str],
                 row_group_size: int) -> pa.Table:
    """Write `entries` (ENTRIES schema) as chunk + index files; returns the index rows written."""
    if entries.num_rows == 0:
        return INDEX.empty_table()
    ordered = entries.sort_by([("stream_id", "ascending"), ("ts", "ascending")])
    days = pc.divide(ordered.column("ts"), pa.scalar(NS_PER_DAY, pa.int64()))
    segment = new_segment_name()
    written = []
    for day_number in pc.unique(days).to_pylist():
        part = ordered.filter(pc.equal(days, day_number))
        day = day_of(day_number * NS_PER_DAY)
        chunk = chunk_path(tenant, day, segment)
        root.write_atomic(chunk, _parquet_bytes(part.select(CHUNK.names).cast(CHUNK), row_group_size))
        rows = _index_rows(part, chunk, streams)
        root.write_atomic(index_path(tenant, day, segment), _parquet_bytes(rows, row_group_size))
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
