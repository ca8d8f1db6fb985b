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
from lokiarrow.store.names import literal
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

    def extended(self, texts: dict[int, str]) -> Streams:
        """These streams and those of `texts` (id -> labels): self when it knows them all, else a
        copy (this one is left as it is: queries may be reading it)."""
        new = {sid: text for sid, text in texts.items() if sid not in self.labels}
        if not new:
            return self
        out = Streams()
        out.labels, out.text = dict(self.labels), dict(self.text)
        out.postings = {name: dict(values) for name, values in self.postings.items()}
        for sid, text in new.items():
            labels = parse_labels(text)
            out.labels[sid] = labels
            out.text[sid] = text
            for name, value in labels.items():
                values = out.postings.setdefault(name, {})
                values[value] = values.get(value, set()) | {sid}
        return out

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
    tables = {f: pq.read_table(root.readable_path(f)) for f in root.glob(f"{literal(tenant)}/index/day={day}/*.parquet")}
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
        self.chunk_files: set[str] = set()     # the chunk files the rows name
        self.retired: set[str] = set()         # chunk files whose rows a compaction replaced
        self.files: dict[str, set[str]] = {}   # index files read (live ones -> the chunk files they name)

    def add_rows(self, rows: pa.Table) -> None:
        for sid, text in zip(rows.column("stream_id").to_pylist(), rows.column("labels").to_pylist(), strict=True):
            self.streams.add(sid, text)
        held = rows.select(INDEX.names).cast(INDEX).drop_columns("labels").cast(HELD)
        self.rows = pa.concat_tables([self.rows, held]).combine_chunks()
        self.chunk_files.update(pc.unique(rows.column("chunk")).to_pylist())

    def load(self, root: Root, tenant: str) -> None:
        """Read the tenant's live index files, or (called again: a reader's refresh) those written
        since. A new file that supersedes others (a compaction elsewhere) swaps their chunk files'
        rows for its own. Rows of chunk files already held are not added twice, so files this
        process wrote itself (flushes, its own compactions) change nothing."""
        listed = root.glob(f"{literal(tenant)}/index/day=*/*.parquet")
        new = {f: _with_metadata(pq.read_table(root.readable_path(f))) for f in listed if f not in self.files}
        if not new:
            return
        superseded = {old for t in new.values() for old in superseded_by(t)}
        live = {f: set(pc.unique(t.column("chunk")).to_pylist()) for f, t in new.items() if f not in superseded}
        named = set().union(*live.values())
        gone = set().union(*(self.files.get(f, ()) for f in superseded)) - named
        # files superseded before this process read them: their chunk files are retired all the same
        self.retired |= set().union(*(set(pc.unique(t.column("chunk")).to_pylist())
                                      for f, t in new.items() if f in superseded)) - named
        for f in new.keys() | (superseded & self.files.keys()):
            self.files[f] = live.get(f, set())
        held = self.chunk_files - gone
        rows = [t for f, t in new.items() if f in live and not live[f] <= held]
        added = pa.concat_tables(rows, promote_options="permissive") if rows else INDEX.empty_table()
        if held:
            added = added.filter(pc.invert(pc.is_in(added.column("chunk"), value_set=pa.array(sorted(held)))))
        if gone:
            self.replace(gone, added)
        elif added.num_rows:
            self.add_rows(added)

    def replace(self, chunks: Iterable[str], rows: pa.Table) -> None:
        """Drop the rows of `chunks`, add `rows` (INDEX schema): one swap."""
        dropped = set(chunks)
        gone = pa.array(sorted(dropped), pa.string())
        for sid, text in zip(rows.column("stream_id").to_pylist(), rows.column("labels").to_pylist(), strict=True):
            self.streams.add(sid, text)
        kept = self.rows.filter(pc.invert(pc.is_in(self.rows.column("chunk").cast(pa.string()), value_set=gone)))
        added = rows.select(INDEX.names).cast(INDEX).drop_columns("labels").cast(HELD)
        self.rows = pa.concat_tables([kept, added]).combine_chunks()
        named = set(pc.unique(rows.column("chunk")).to_pylist())
        self.retired |= dropped - named
        self.chunk_files = (self.chunk_files - dropped) | named

    def overlaid(self, rows: pa.Table, streams: dict[int, str]) -> Index:
        """This index with more rows (INDEX schema; those of chunk files it has are left out) and
        streams (id -> labels), as a new Index: self when there is nothing new. Rows of files a
        compaction replaced are left out too: their lines are in the files that replaced them."""
        if rows.num_rows:
            fresh = set(pc.unique(rows.column("chunk")).to_pylist()) - self.chunk_files - self.retired
            rows = rows.filter(pc.is_in(rows.column("chunk"), value_set=pa.array(sorted(fresh), pa.string())))
        texts = {**streams, **dict(zip(rows.column("stream_id").to_pylist(), rows.column("labels").to_pylist(),
                                       strict=True))}
        more = self.streams.extended(texts)
        if not rows.num_rows and more is self.streams:
            return self
        out = Index()
        out.streams = more
        added = rows.select(INDEX.names).cast(INDEX).drop_columns("labels").cast(HELD)
        out.rows = pa.concat_tables([self.rows, added]).combine_chunks() if rows.num_rows else self.rows
        out.chunk_files = self.chunk_files | set(pc.unique(rows.column("chunk")).to_pylist())
        out.retired = self.retired
        return out

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
