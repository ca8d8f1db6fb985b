"""Per-minute line counts beside each chunk file, for count and rate queries that need no line.

Grafana's log volume and queries such as `sum by (level) (count_over_time({…} | json [1m]))`
need, per window, how many lines (or bytes) each stream has for each value of a few labels;
reading every line's time for that costs more than the rest of the query. So at flush each chunk
file gets a rollup file: one row per (stream, minute, parse outcome, structured metadata set,
level field values) with the count and the bytes of its lines, and, for each of a few words
searched all the time (`ingester.rollup_words`: error, warn, …), how many of those lines contain
it (`w0`, `w1`, … in the order the footer lists them): `rate({…} |= "error" [5m])` reads that.

A rollup row keeps the chunk's column names, `ts` being the end of its minute (the last instant
the minute holds, as windows end inclusively): the SQL that counts a chunk's rows counts a
rollup's with `count(*)` read as `sum(n)`, exactly, whenever every window is made of whole minutes
(exec/metrics/windows_sql.rolled_up checks that). The rolled-up fields are the level fields among the file's
field columns, the labels log volumes group by. A rollup is written only where it is much smaller
than its chunk (MAX_SHARE); the chunk's footer names its rolled-up fields (ROLLUP_KEY), and a chunk
without that key has no rollup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from lokiarrow.store.fields import FIELD_PREFIX, INEXACT_COLUMN, PARSED_COLUMN, field_column
from lokiarrow.store.schema import METADATA_SET_COLUMN

BUCKET_NS = 60 * 10**9
ROLLUP_KEY = b"lokiarrow.rollup"  # a chunk file's key-value metadata: its rollup's fields, as a JSON list
MAX_SHARE = 0.25  # a rollup with more rows than this share of its chunk's is not worth writing
# the parsed names Loki derives a line's level from (its distributor's level detection)
LEVEL_FIELDS = frozenset({"level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl"})


def rolled_fields(part: pa.Table) -> list[str]:
    """The field names a rollup of `part` (a chunk file's rows) groups by."""
    return sorted(name[len(FIELD_PREFIX):] for name in part.column_names
                  if name.startswith(FIELD_PREFIX) and name[len(FIELD_PREFIX):] in LEVEL_FIELDS)


def build(part: pa.Table, fields: list[str], words: tuple[str, ...]) -> pa.Table | None:
    """The rollup rows of one chunk file's rows, sorted by (stream_id, ts); None where it would not
    be much smaller than the chunk."""
    if part.num_rows == 0:
        return None
    keys = ["stream_id", METADATA_SET_COLUMN]
    if PARSED_COLUMN in part.column_names:
        keys += [PARSED_COLUMN, INEXACT_COLUMN, *(field_column(f) for f in fields)]
    grouped = ", ".join(f'"{k}"' for k in keys)
    counted = "".join(f", count(*) FILTER (WHERE contains(line, $word{i})) AS w{i}" for i in range(len(words)))
    con = duckdb.connect(config={"threads": 1})  # off the push path: leave the other core to ingest
    con.register("part", part)
    table = con.sql(f"""
        SELECT {grouped}, (ts + $bucket - 1) // $bucket * $bucket AS ts, any_value(metadata) AS metadata,
               count(*) AS n, sum(strlen(line)) AS bytes{counted}
        FROM part GROUP BY ALL ORDER BY stream_id, ts
    """, params={"bucket": BUCKET_NS, **{f"word{i}": w for i, w in enumerate(words)}}).to_arrow_table()
    con.close()
    return table if table.num_rows <= MAX_SHARE * part.num_rows else None


def parquet_bytes(table: pa.Table) -> pa.Buffer:
    """One row group, statistics on stream_id and ts: queries skip the streams and times they do not want."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=1, row_group_size=max(table.num_rows, 1),
                   write_statistics=["stream_id", "ts"])
    return sink.getvalue()


@dataclass(frozen=True)
class Rolled:
    """What a chunk's rollup holds: counts per value of these fields, and of lines with these words."""

    fields: frozenset[str]
    words: tuple[str, ...]


def footer_entry(fields: list[str], words: tuple[str, ...]) -> dict[bytes, bytes]:
    return {ROLLUP_KEY: json.dumps({"fields": fields, "words": list(words)}).encode()}


def rolled_of(footer: bytes | None) -> Rolled | None:
    """What a chunk's rollup holds, from the chunk's footer entry; None when it has no rollup."""
    if footer is None:
        return None
    entry = json.loads(footer)
    return Rolled(frozenset(entry["fields"]), tuple(entry["words"]))
