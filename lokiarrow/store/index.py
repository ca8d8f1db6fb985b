"""The label/time index a tenant's queries start from.

It answers three questions without opening a chunk:
1. Which streams match these label matchers? A postings map (label name -> value -> stream ids),
   as Loki's TSDB keeps, so `=` is a lookup and `=~` runs its regex once per distinct value.
2. Which chunk files hold those streams within [start, end]? The index rows (one per stream,
   chunk file and structured metadata set, with min_ts, max_ts, rows and bytes), filtered with
   Arrow compute.
3. How many entries (bytes) does a stream have in a span holding whole rows? The same rows
   (exec/metrics/index_counts.py).

On disk: the index files under `<tenant>/index/day=…/`. A file written by the compactor names,
in its footer (SUPERSEDES_KEY), the files whose rows it holds instead: those are left out when
loading, so replacing many files by one is a single atomic write.

Contract: changes are atomic for readers: `add_rows` and `replace` swap in a new table; readers
keep whichever table they took. Not thread-safe for writers: the tenant serialises them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lokiarrow.logql.parser import parse_labels
from lokiarrow.model import Labels, Matcher
from lokiarrow.store.fs import Root
from lokiarrow.store.schema import INDEX


@dataclass(frozen=True)
class ChunkRef:
    """One chunk file a query must read, with the time span of the wanted streams in it."""

    path: str
    min_ts: int
    max_ts: int
    rows: int
    pure: bool = False   # every stream the file holds within [start, end) is a wanted one
    bytes: int = 0       # of the wanted streams' lines in the file


class Streams:
    """Every stream a tenant has, by id, with a postings map for matcher lookups."""

    def __init__(self) -> None:
        self.labels: dict[int, Labels] = {}
        self.text: dict[int, str] = {}
        self.postings: dict[str, dict[str, set[int]]] = {}

    def add(self, sid: int, text: str) -> None:
        if sid in self.labels:
            return
        labels = parse_labels(text)
        self.labels[sid] = labels
        self.text[sid] = text
        for name, value in labels.items():
            self.postings.setdefault(name, {}).setdefault(value, set()).add(sid)

    def match(self, matchers: Iterable[Matcher]) -> set[int]:
        """Ids of the streams whose labels satisfy every matcher."""
        result: set[int] | None = None
        for m in sorted(matchers, key=lambda m: m.op != "="):  # cheapest, most selective first
            if m.matches_empty():
                # also matches streams without the label: start from all, remove failing values
                hit = set(result if result is not None else self.labels)
                for value, ids in self.postings.get(m.name, {}).items():
                    if not m.matches(value):
                        hit -= ids
            else:
                hit = set()
                for value, ids in self.postings.get(m.name, {}).items():
                    if m.matches(value):
                        hit |= ids
            result = hit if result is None else result & hit
            if not result:
                return set()
        return result if result is not None else set(self.labels)


SUPERSEDES_KEY = b"lokiarrow.supersedes"   # index file footer: JSON list of the files it replaces


def live_index_files(root: Root, tenant: str, day: str = "*") -> dict[str, pa.Table]:
    """The index files of a tenant (of one day, or all) that no other file supersedes, with their
    rows, by store-relative path."""
    tables = {f: pq.read_table(root.readable_path(f)) for f in root.glob(f"{tenant}/index/day={day}/*.parquet")}
    superseded = {old for t in tables.values() for old in superseded_by(t)}
    return {f: t for f, t in tables.items() if f not in superseded}


def superseded_by(table: pa.Table) -> list[str]:
    """The index files an index file's footer says it replaces."""
    found = (table.schema.metadata or {}).get(SUPERSEDES_KEY)
    return list(json.loads(found)) if found else []


def _with_metadata(rows: pa.Table) -> pa.Table:
    """Index files written before rows were split by structured metadata: per stream, unknown."""
    if "metadata" in rows.column_names:
        return rows
    return rows.append_column("metadata", pa.nulls(rows.num_rows, pa.string()))


# The index rows as held in memory: labels live in `Streams`; file names and metadata sets repeat
# across rows, so they are dictionary-encoded and filtering copies small integers, not paths.
HELD = pa.schema([INDEX.field(name) if name not in ("chunk", "metadata") else
                  pa.field(name, pa.dictionary(pa.int32(), pa.string()), INDEX.field(name).nullable)
                  for name in INDEX.names if name != "labels"])


class Index:
    def __init__(self) -> None:
        self.rows: pa.Table = HELD.empty_table()
        self.streams = Streams()

    def add_rows(self, rows: pa.Table) -> None:
        for sid, text in zip(rows.column("stream_id").to_pylist(), rows.column("labels").to_pylist(), strict=True):
            self.streams.add(sid, text)
        held = rows.select(INDEX.names).cast(INDEX).drop_columns("labels").cast(HELD)
        self.rows = pa.concat_tables([self.rows, held]).combine_chunks()

    def load(self, root: Root, tenant: str) -> None:
        live = live_index_files(root, tenant)
        if live:
            self.add_rows(pa.concat_tables([_with_metadata(t) for t in live.values()]))

    def replace(self, chunks: Iterable[str], rows: pa.Table) -> None:
        """Drop the rows of `chunks`, add `rows` (INDEX schema): one swap."""
        gone = pa.array(sorted(set(chunks)), pa.string())
        for sid, text in zip(rows.column("stream_id").to_pylist(), rows.column("labels").to_pylist(), strict=True):
            self.streams.add(sid, text)
        kept = self.rows.filter(pc.invert(pc.is_in(self.rows.column("chunk").cast(pa.string()), value_set=gone)))
        added = rows.select(INDEX.names).cast(INDEX).drop_columns("labels").cast(HELD)
        self.rows = pa.concat_tables([kept, added]).combine_chunks()

    def rows_in(self, stream_ids: Iterable[int] | None, start: int, end: int) -> pa.Table:
        """The index rows of the streams (all of them for None) whose span meets [start, end)."""
        rows = self.rows
        mask = pc.and_(pc.greater_equal(rows.column("max_ts"), start), pc.less(rows.column("min_ts"), end))
        if stream_ids is not None:
            wanted = pa.array(list(stream_ids), pa.int64())
            mask = pc.and_(mask, pc.is_in(rows.column("stream_id"), value_set=wanted))
        if pc.all(mask).as_py() is not False:  # every row (or none held): no copy
            return rows
        return rows.filter(mask)

    def chunks(self, stream_ids: Iterable[int], start: int, end: int) -> list[ChunkRef]:
        """The chunk files holding any of the streams within [start, end), newest data first."""
        in_range = self.rows_in(None, start, end)
        wanted = pc.is_in(in_range.column("stream_id"), value_set=pa.array(list(stream_ids), pa.int64()))
        hits = in_range.filter(wanted)
        if hits.num_rows == 0:
            return []
        mixed = set(pc.unique(in_range.column("chunk").filter(pc.invert(wanted))).to_pylist())
        grouped = hits.group_by("chunk", use_threads=False).aggregate(
            [("min_ts", "min"), ("max_ts", "max"), ("rows", "sum"), ("bytes", "sum")])
        refs = [ChunkRef(p, lo, hi, n, p not in mixed, b) for p, lo, hi, n, b in zip(
            *(grouped.column(c).to_pylist() for c in ("chunk", "min_ts_min", "max_ts_max", "rows_sum", "bytes_sum")),
            strict=True)]
        return sorted(refs, key=lambda r: (r.max_ts, r.min_ts), reverse=True)

    def metadata_names(self, stream_ids: Iterable[int], start: int, end: int) -> set[str] | None:
        """The structured metadata names the streams' entries in chunk files within [start, end)
        carry; None when some index row does not know its metadata set."""
        sets = pc.unique(self.rows_in(stream_ids, start, end).column("metadata")).to_pylist()
        if any(s is None for s in sets):
            return None
        names: set[str] = set()
        for text in sets:
            names.update(json.loads(text))
        return names

    def stream_ids_in_range(self, start: int, end: int) -> set[int]:
        return set(pc.unique(self.rows_in(None, start, end).column("stream_id")).to_pylist())
