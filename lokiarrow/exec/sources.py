"""What a query reads: the chunk files the index points to and the heads in memory.

A source knows the time span of the wanted streams in it, so log queries can read sources
newest first (or oldest first) and stop early. Heads are pre-filtered to the wanted streams and
time range with Arrow compute, so DuckDB only sees rows that can match.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lokiarrow.exec.duck import note_reads
from lokiarrow.model import Matcher
from lokiarrow.store.fs import readable
from lokiarrow.store.schema import METADATA_TYPE
from lokiarrow.store.tenant import Snapshot


@dataclass(frozen=True)
class Source:
    min_ts: int
    max_ts: int
    rows: int                        # exact, or estimated for a slice
    path: str | None = None          # a chunk file (full path) ...
    table: pa.Table | None = None    # ... or head rows already narrowed to the query
    head_rank: int = 0               # heads: older heads (being flushed) rank lower
    pure: bool = False               # a file holding wanted streams only: no stream test needed
    bytes: int = 0                   # of the wanted streams' lines (the file's, not only in range)


def localized(found: list[Source]) -> list[Source]:
    """The sources with local paths to open (object storage files copied first, in parallel)."""
    if all(s.path is None or "://" not in s.path for s in found):
        return found
    paths = iter(readable(s.path for s in found if s.path is not None))
    return [s if s.path is None else replace(s, path=next(paths)) for s in found]


def pure_paths(found: list[Source]) -> set[str]:
    """The chunk files among `found` that hold wanted streams only: scans read them without a stream test."""
    return {s.path for s in found if s.pure and s.path is not None}


def metadata_maps(texts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Structured metadata as a map column, from its JSON text (`metadata_set`): each distinct
    set parsed once."""
    encoded = pc.dictionary_encode(texts).combine_chunks() if isinstance(texts, pa.ChunkedArray) \
        else pc.dictionary_encode(texts)
    distinct = [list(json.loads(t).items()) if t else [] for t in encoded.dictionary.to_pylist()]
    return pa.array(distinct, METADATA_TYPE).take(encoded.indices)


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


def streams_in_range(snapshot: Snapshot, start: int, end: int, matchers: tuple[Matcher, ...] | None) -> set[int]:
    """Streams with entries in [start, end) (chunk files or heads), matching `matchers` if given."""
    ids = snapshot.index.stream_ids_in_range(start, end)
    for head in snapshot.heads:
        for sid, (lo, hi) in list(head.stream_range.items()):
            if hi >= start and lo < end:
                ids.add(sid)
    if matchers:
        ids &= snapshot.index.streams.match(matchers)
    return ids


def sources(snapshot: Snapshot, stream_ids: Collection[int], start: int, end: int) -> list[Source]:
    """Every source holding the given streams within [start, end)."""
    refs = snapshot.index.chunks(stream_ids, start, end)
    note_reads(ref.path for ref in refs)
    found = [Source(ref.min_ts, ref.max_ts, ref.rows, path=snapshot.root.full(ref.path), pure=ref.pure,
                    bytes=ref.bytes) for ref in refs]
    for rank, table in head_rows(snapshot, stream_ids, start, end):
        lo, hi = pc.min_max(table.column("ts")).values()
        size = pc.sum(pc.binary_length(table.column("line"))).as_py() or 0
        found.append(Source(lo.as_py(), hi.as_py(), table.num_rows, table=table, head_rank=rank, bytes=size))
    return found


_FOOTERS: OrderedDict[str, tuple[pq.FileMetaData, frozenset[str]]] = OrderedDict()
_FOOTERS_LOCK = threading.Lock()
FOOTER_CACHE_SIZE = 4096
_READ_COLUMNS = ["stream_id", "ts", "line", "metadata"]


def _footer(path: str) -> tuple[pq.FileMetaData, frozenset[str]]:
    """A chunk file's Parquet footer and column names, cached: chunk files never change once written."""
    with _FOOTERS_LOCK:
        cached = _FOOTERS.get(path)
        if cached is not None:
            _FOOTERS.move_to_end(path)
            return cached
    md = pq.read_metadata(readable([path])[0])
    cached = md, frozenset(md.schema.to_arrow_schema().names)
    with _FOOTERS_LOCK:
        _FOOTERS[path] = cached
        while len(_FOOTERS) > FOOTER_CACHE_SIZE:
            _FOOTERS.popitem(last=False)
    return cached


def footer_value(path: str, key: bytes) -> bytes | None:
    """An entry of a chunk file's key-value metadata (read with the cached footer)."""
    kv = _footer(path)[0].metadata
    return None if kv is None else kv.get(key)


def has_columns(path: str, names: Collection[str]) -> bool:
    """Whether the chunk file has all these columns (parsed-field columns vary per file)."""
    return set(names) <= _footer(path)[1]


def read_chunk_rows(path: str, sorted_ids: list[int], start: int, end: int,
                    extra: tuple[str, ...] = ()) -> pa.Table:
    """The rows of the given streams within [start, end) from one chunk file, with `rn`, each
    row's number in the file, and the `extra` columns (the file must have them).

    Reads only the row groups whose stream_id and ts statistics can hold wanted rows: chunk files
    keep one stream per row group (tiny streams share), so this is the exact set a stream lives in.
    """
    md = _footer(path)[0]
    groups: list[int] = []
    firsts: list[int] = []
    row = 0
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        sid, ts = rg.column(0).statistics, rg.column(1).statistics
        k = bisect.bisect_left(sorted_ids, sid.min)
        if k < len(sorted_ids) and sorted_ids[k] <= sid.max and ts.max >= start and ts.min < end:
            groups.append(i)
            firsts.append(row)
        row += rg.num_rows
    if not groups:
        return pa.table({"rn": pa.array([], pa.int64())})
    table = pq.ParquetFile(readable([path])[0], metadata=md).read_row_groups(groups, columns=[*_READ_COLUMNS, *extra])
    sizes = [md.row_group(i).num_rows for i in groups]
    rn = np.concatenate([np.arange(f, f + n, dtype=np.int64) for f, n in zip(firsts, sizes, strict=True)])
    table = table.append_column("rn", pa.array(rn))
    ts_col = table.column("ts")
    mask = pc.and_(pc.is_in(table.column("stream_id"), value_set=pa.array(sorted_ids, pa.int64())),
                   pc.and_(pc.greater_equal(ts_col, pa.scalar(start, pa.int64())),
                           pc.less(ts_col, pa.scalar(end, pa.int64()))))
    return table.filter(mask)
