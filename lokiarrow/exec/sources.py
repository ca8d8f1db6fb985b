"""What a query reads: the chunk files the index points to and the heads in memory.

A source knows the time span of the wanted streams in it, so log queries can read sources
newest first (or oldest first) and stop early. Heads are pre-filtered to the wanted streams and
time range with Arrow compute, so DuckDB only sees rows that can match.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.store.tenant import Snapshot


@dataclass(frozen=True)
class Source:
    min_ts: int
    max_ts: int
    rows: int
    path: str | None = None          # a chunk file (full path) ...
    table: pa.Table | None = None    # ... or head rows already narrowed to the query
    head_rank: int = 0               # heads: older heads (being flushed) rank lower


def head_rows(snapshot: Snapshot, stream_ids: Collection[int], start: int, end: int
              ) -> list[tuple[int, pa.Table]]:
    """The head rows of the given streams within [start, end), one table per head, with its rank.

    Rows carry `rn`, their position in the head: the order they arrived in.
    """
    wanted_set = set(stream_ids)
    wanted = pa.array(list(wanted_set), pa.int64())
    out = []
    for rank, head in enumerate(snapshot.heads):
        if not head.batches or head.max_ts is None or head.max_ts < start or (head.min_ts or 0) >= end:
            continue
        table, offsets = head.table_for(wanted_set, start, end)
        if table.num_rows == 0:
            continue
        sizes = [b.num_rows for b in table.to_batches()]
        rn = np.concatenate([np.arange(o, o + n, dtype=np.int64) for o, n in zip(offsets, sizes, strict=True)])
        table = table.append_column("rn", pa.array(rn))
        ts = table.column("ts")
        mask = pc.and_(pc.is_in(table.column("stream_id"), value_set=wanted),
                       pc.and_(pc.greater_equal(ts, start), pc.less(ts, end)))
        table = table.filter(mask)
        if table.num_rows:
            out.append((rank, table))
    return out


def sources(snapshot: Snapshot, stream_ids: Collection[int], start: int, end: int) -> list[Source]:
    """Every source holding the given streams within [start, end)."""
    found = [Source(ref.min_ts, ref.max_ts, ref.rows, path=snapshot.root.full(ref.path))
             for ref in snapshot.index.chunks(stream_ids, start, end)]
    for rank, table in head_rows(snapshot, stream_ids, start, end):
        lo, hi = pc.min_max(table.column("ts")).values()
        found.append(Source(lo.as_py(), hi.as_py(), table.num_rows, table=table, head_rank=rank))
    return found
