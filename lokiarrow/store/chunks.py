"""Writing a head's entries as Parquet chunk files, one per hour of data, and their index rows.

1. Sort the entries by (hour, stream_id, ts), stably: entries with equal timestamps keep arrival
   order.
2. Split by UTC hour: a file covers a bounded time window, so the index can order files by time
   and a log query can read the newest files first and stop early. Files sit in `day=` folders.
3. Per file: row groups follow stream boundaries (small neighbouring streams share one up to
   MIN_ROW_GROUP rows, big ones are split at `row_group_size`): row-group statistics on stream_id
   skip every other stream. Row groups are not cut by time within the hour: a flush covers
   minutes of data in steady ingestion, and scans over many small row groups cost far more
   (DuckDB's per-row-group work dominated full-day metric scans).
4. Beside the line, the parsed-field columns of store/fields.py (chosen once per flush), and
   each row's structured metadata set as JSON text (`metadata_set`).
5. Its per-minute counts as a rollup file (store/rollups.py), where that is much smaller.
6. Write the rollup, then the chunk file atomically, then its index file (one row per stream and
   structured metadata set: span, entries, bytes). The chunk lands before its index file and after
   its rollup, so no index row points at a missing chunk and no chunk at a missing rollup.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lokiarrow.store import rollups
from lokiarrow.store.fields import (
    FIELD_PREFIX,
    INEXACT_COLUMN,
    PARSED_COLUMN,
    SETTLED_KEY,
    choose_fields,
    extract,
    field_column,
    settled_summary,
)
from lokiarrow.store.fs import Root
from lokiarrow.store.names import chunk_path, day_of, index_path, new_segment_name, rollup_path
from lokiarrow.store.schema import CHUNK, INDEX, METADATA_SET_COLUMN

ZSTD_LEVEL = 1  # as small as level 3 on log lines, and faster; the compactor spends more (its own level)
NS_PER_HOUR = 3600 * 10**9
MIN_ROW_GROUP = 512  # neighbouring tiny streams share a row group up to this many rows
MAX_METADATA_SETS = 16  # index rows per (stream, file): beyond, one row whose metadata is unknown


def _row_group_bounds(stream_ids: np.ndarray, max_rows: int) -> list[tuple[int, int]]:
    """[start, end) row ranges that cut only at stream boundaries (rows sorted by stream), except
    inside huge streams."""
    n = len(stream_ids)
    starts = (np.flatnonzero(np.diff(stream_ids) != 0) + 1).tolist() + [n]
    bounds: list[tuple[int, int]] = []
    lo = 0
    for cut in starts:
        if cut - lo >= MIN_ROW_GROUP or cut == n:
            for s in range(lo, cut, max_rows):
                bounds.append((s, min(s + max_rows, cut)))
            lo = cut
    return bounds


def _parquet_bytes(table: pa.Table, bounds: list[tuple[int, int]], level: int = ZSTD_LEVEL) -> pa.Buffer:
    if PARSED_COLUMN in table.column_names:  # the footer says how many rows the field columns settle
        summary = settled_summary(table.column(PARSED_COLUMN).combine_chunks(),
                                  table.column(INEXACT_COLUMN).combine_chunks(),
                                  {name[len(FIELD_PREFIX):]: table.column(name).combine_chunks()
                                   for name in table.column_names if name.startswith(FIELD_PREFIX)})
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), SETTLED_KEY: summary})
    sink = pa.BufferOutputStream()
    dictionary = ["stream_id", "metadata.key_value.key", "metadata.key_value.value", METADATA_SET_COLUMN,
                  *(name for name in table.column_names if name.startswith(FIELD_PREFIX)),
                  *([f"{INEXACT_COLUMN}.list.element"] if INEXACT_COLUMN in table.column_names else [])]
    delta = {"ts": "DELTA_BINARY_PACKED"} if "ts" in table.column_names else None  # ~30 % smaller
    with pq.ParquetWriter(sink, table.schema, compression="zstd", compression_level=level,
                          use_dictionary=dictionary, column_encoding=delta,
                          write_statistics=["stream_id", "ts"], write_page_checksum=True) as writer:
        for lo, hi in bounds:
            writer.write_table(table.slice(lo, hi - lo), row_group_size=hi - lo)
    return sink.getvalue()


def write_chunks(root: Root, tenant: str, entries: pa.Table, streams: dict[int, str],
                 row_group_size: int, max_fields: int = 0, words: tuple[str, ...] = (),
                 index_files: bool = True, level: int = ZSTD_LEVEL,
                 commit: dict[str, object] | None = None) -> pa.Table:
    """Write `entries` (ENTRIES or CHUNK schema) as chunk files, and an index file beside each
    unless the caller publishes the rows itself (the compactor); returns the index rows. `commit`
    goes in every index file's footer (WAL_COMMIT_KEY, with how many index files the call writes)."""
    if entries.num_rows == 0:
        return INDEX.empty_table()
    # one stable sort by (hour, stream, time), of the chunk columns only: each hour is then a
    # zero-copy slice, and memory holds one sorted copy of the head at most
    data = entries.select(CHUNK.names).cast(CHUNK)
    del entries   # the caller may hand over its only reference: the sorted copy replaces it
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
    ordered = ordered.append_column(METADATA_SET_COLUMN, _metadata_sets(ordered.column("metadata")))
    hour_of_row = ordered.column("hour").to_numpy()
    cuts = np.flatnonzero(np.diff(hour_of_row)) + 1
    segment = new_segment_name()
    footer = {WAL_COMMIT_KEY: json.dumps({**commit, "files": len(cuts) + 1}).encode()} if commit else None
    written = []
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(hour_of_row)], strict=True):
        hour = int(hour_of_row[lo])
        part = ordered.slice(lo, hi - lo).drop_columns(["hour"])
        day = day_of(hour * NS_PER_HOUR)
        name = f"{segment}-h{hour % 24:02d}"
        chunk = chunk_path(tenant, day, name)
        levels = rollups.rolled_fields(part)
        rolled = rollups.build(part, levels, words)
        if rolled is not None:  # the rollup lands first: a chunk never names a missing one
            root.write_atomic(rollup_path(tenant, day, name), rollups.parquet_bytes(rolled))
            part = part.replace_schema_metadata({**(part.schema.metadata or {}),
                                                 **rollups.footer_entry(levels, words)})
        bounds = _row_group_bounds(part.column("stream_id").to_numpy(), row_group_size)
        root.write_atomic(chunk, _parquet_bytes(part, bounds, level))
        rows = _index_rows(part, chunk, streams)
        if index_files:
            write_index(root, index_path(tenant, day, name), rows, footer)
        written.append(rows)
    return pa.concat_tables(written)


WAL_COMMIT_KEY = b"lokiarrow.wal"   # index file footer: the WAL segments a flush covered (store/tenant.py)


def write_index(root: Root, path: str, rows: pa.Table, footer: dict[bytes, bytes] | None = None) -> None:
    """An index file (INDEX rows), atomically; `footer` adds key-value metadata."""
    if footer:
        rows = rows.replace_schema_metadata({**(rows.schema.metadata or {}), **footer})
    root.write_atomic(path, _parquet_bytes(rows, [(0, rows.num_rows)] if rows.num_rows else []))


def _metadata_sets(metadata: pa.ChunkedArray) -> pa.Array:
    """Each row's structured metadata as the JSON object DuckDB's to_json writes (`{}` for none):
    metric queries group lines by it, and reading this (dictionary-encoded) column is far cheaper
    than reading the map."""
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("rows", pa.table({"metadata": metadata}))
        return con.sql("SELECT coalesce(to_json(metadata)::VARCHAR, '{}') AS s FROM rows").to_arrow_table() \
            .column("s").combine_chunks()
    finally:
        con.close()


def _index_rows(part: pa.Table, chunk: str, streams: dict[int, str]) -> pa.Table:
    """One row per (stream, structured metadata set) of the file, with its span, entries and
    bytes; a stream with more than MAX_METADATA_SETS sets gets one row with null metadata."""
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("part", part.select(["stream_id", "ts", "line", METADATA_SET_COLUMN]))
        stats = con.sql(f"""
            WITH sets AS (
                SELECT stream_id, {METADATA_SET_COLUMN} AS metadata,
                       min(ts) AS min_ts, max(ts) AS max_ts, count(*) AS rows, sum(strlen(line)) AS bytes
                FROM part GROUP BY ALL
            ), counted AS (
                SELECT *, count(*) OVER (PARTITION BY stream_id) > {MAX_METADATA_SETS} AS mixed FROM sets
            )
            SELECT stream_id, CASE WHEN mixed THEN NULL ELSE metadata END AS metadata, min(min_ts) AS min_ts,
                   max(max_ts) AS max_ts, sum(rows)::BIGINT AS rows, sum(bytes)::BIGINT AS bytes
            FROM counted GROUP BY ALL ORDER BY stream_id, metadata
        """).to_arrow_table()
    finally:
        con.close()
    ids = stats.column("stream_id").to_pylist()
    return pa.table({
        "stream_id": stats.column("stream_id"),
        "labels": pa.array([streams[i] for i in ids], pa.string()),
        "chunk": pa.array([chunk] * len(ids), pa.string()),
        "min_ts": stats.column("min_ts"),
        "max_ts": stats.column("max_ts"),
        "rows": stats.column("rows"),
        "bytes": stats.column("bytes"),
        "metadata": stats.column("metadata"),
    }, schema=INDEX)
