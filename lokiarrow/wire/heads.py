"""What a writer tells a reader about one tenant (a scaled-out deployment, `-target=read|write`):
the entries it holds unflushed and the index rows of the files it flushed lately.

Request: `POST /lokiarrow/v1/unflushed` with the tenant's X-Scope-OrgID and a JSON body
`{"start": ns, "end": ns, "selectors": [[[name, op, value], …], …] | null, "rows": true}`: entries
in [start, end) of the streams any selector (a list of matchers) matches (null: every stream);
`rows: false` asks only which streams have entries there (their first and last entry each).

Answer (`application/vnd.apache.arrow.stream`): two Arrow IPC streams, each after its length in
bytes (8, little-endian): the entries (ENTRIES and `head`, which of the writer's heads, oldest
first, and `rn`, the entry's place in it), then the index rows (INDEX) of the files it flushed
within `ingester.chunk_retain_period` that hold entries in [start, end), every stream's.
"""

from __future__ import annotations

import struct

import pyarrow as pa

from lokiarrow.model import Matcher
from lokiarrow.store.schema import ENTRIES, INDEX

PATH = "/lokiarrow/v1/unflushed"
MEDIA_TYPE = "application/vnd.apache.arrow.stream"
HELD = ENTRIES.append(pa.field("head", pa.int32(), nullable=False)).append(pa.field("rn", pa.int64(), nullable=False))


OPS = ("=", "!=", "=~", "!~")


def selectors_json(groups: list[tuple[Matcher, ...]] | None) -> list[list[list[str]]] | None:
    return None if groups is None else [[[m.name, m.op, m.value] for m in group] for group in groups]


def selectors_of(value: object) -> list[tuple[Matcher, ...]] | None:
    """The selectors of a request; ValueError when they are not well formed."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("selectors must be a list")
    groups = []
    for group in value:
        matchers = []
        for m in group:
            if not (isinstance(m, list) and len(m) == 3 and all(isinstance(x, str) for x in m) and m[1] in OPS):
                raise ValueError(f"not a matcher: {m!r}")
            matchers.append(Matcher(m[0], m[1], m[2]))  # type: ignore[arg-type]
        groups.append(tuple(matchers))
    return groups


def encode(entries: pa.Table, index_rows: pa.Table) -> bytes:
    parts = []
    for table, schema in ((entries, HELD), (index_rows, INDEX)):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(table.select(schema.names).cast(schema))
        data = sink.getvalue()
        parts += [struct.pack("<Q", data.size), data.to_pybytes()]
    return b"".join(parts)


def decode(body: bytes) -> tuple[pa.Table, pa.Table]:
    """The two tables of an answer; ValueError when it is not one."""
    tables = []
    at = 0
    for schema in (HELD, INDEX):
        if len(body) < at + 8:
            raise ValueError("truncated answer")
        (size,) = struct.unpack_from("<Q", body, at)
        at += 8
        if len(body) < at + size:
            raise ValueError("truncated answer")
        table = pa.ipc.open_stream(pa.py_buffer(body[at:at + size])).read_all()
        if not table.schema.equals(schema):
            raise ValueError(f"unexpected columns {table.schema.names}")
        tables.append(table)
        at += size
    return tables[0], tables[1]
