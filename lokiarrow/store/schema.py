"""The Arrow schemas of everything the store keeps, in one place.

- ENTRIES: what ingest hands the store, the WAL records and the head holds: one row per log entry,
  with the stream's canonical label text beside its id so a WAL replay can rebuild the stream table.
- CHUNK: a Parquet chunk file, sorted by (stream_id, ts): ENTRIES without the label text.
- INDEX: a Parquet index file, one row per (stream, chunk file, structured metadata set): where a
  stream's entries are and how many, so queries open only the files they need and counts can
  come from the index. `metadata` is the set as a JSON object (`{}` for none), or null for all of
  a stream's entries in the file when they carry too many different sets to count apart.
"""

from __future__ import annotations

import pyarrow as pa

METADATA_TYPE = pa.map_(pa.string(), pa.string())
METADATA_SET_COLUMN = "metadata_set"  # in chunk files: each row's metadata as DuckDB's to_json writes it

CHUNK = pa.schema([
    pa.field("stream_id", pa.int64(), nullable=False),
    pa.field("ts", pa.int64(), nullable=False),
    pa.field("line", pa.string(), nullable=False),
    pa.field("metadata", METADATA_TYPE),
])

ENTRIES = pa.schema([pa.field("labels", pa.string(), nullable=False), *CHUNK])

INDEX = pa.schema([
    pa.field("stream_id", pa.int64(), nullable=False),
    pa.field("labels", pa.string(), nullable=False),
    pa.field("chunk", pa.string(), nullable=False),
    pa.field("min_ts", pa.int64(), nullable=False),
    pa.field("max_ts", pa.int64(), nullable=False),
    pa.field("rows", pa.int64(), nullable=False),
    pa.field("bytes", pa.int64(), nullable=False),
    pa.field("metadata", pa.string()),
])
