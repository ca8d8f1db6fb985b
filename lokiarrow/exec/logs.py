"""Log queries: the newest (or oldest) `limit` entries that pass the line filters.

1. Resolve the streams from the index and list the sources (chunk files, heads) holding them.
2. Order sources by their newest entry (backward) or oldest (forward).
3. Scan a group of sources in one query with the filters and the limit pushed down: DuckDB for
   regexes (RE2, as Loki), Polars for substring filters over many files (faster here), Arrow
   compute alone for a few row groups (no query to plan).
   The first group holds about 2 x `limit` rows, and every source overlapping its first (they
   hold entries as new); later groups are sized from the share of rows that passed the filters
   so far, so a selective filter reads more per round, not more rounds.
4. Keep the best `limit` rows so far; stop once we hold `limit` rows and the worst of them is
   strictly newer (older, forward) than anything in the sources not read yet.

Entries with equal timestamps keep the order they arrived in (reversed for backward queries), as
Loki's do: every row carries its source (chunk files are named by creation time, heads sort after
them) and its row number there, and flushes sort stably so arrival order survives in the file.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.compile.fields import FieldFilter
from lokiarrow.compile.filters import line_filters_mask, line_filters_sql
from lokiarrow.compile.prefilter import Prefilter, prefilter_mask, prefilter_sql
from lokiarrow.exec import pipeline
from lokiarrow.exec.duck import cursor
from lokiarrow.exec.sources import (
    Source,
    footer_value,
    has_columns,
    localized,
    metadata_maps,
    pure_paths,
    read_chunk_rows,
    sources,
)
from lokiarrow.logql.ast import LabelFilterStage, LineFilter, Stage
from lokiarrow.model import Matcher
from lokiarrow.store.fields import PARSED_COLUMN, SETTLED_KEY, unsettled_rows
from lokiarrow.store.schema import METADATA_SET_COLUMN
from lokiarrow.store.tenant import Snapshot

_names = itertools.count()
_COLUMNS = f"stream_id, ts, line, {METADATA_SET_COLUMN}"  # metadata as text: see _metadata_set
_HEAD_SOURCE = "~head{:06d}"  # sorts after every chunk path
# Up to this many candidate rows, chunk row groups are read directly (footers cached, exact row
# groups) and handed to DuckDB as Arrow; beyond it, DuckDB's own parallel Parquet scan is faster.
DIRECT_READ_ROWS = 60_000
DIRECT_READ_FILES = 2
_readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chunk-reader")  # reads release the GIL


_EMPTY = pa.table({"stream_id": pa.array([], pa.int64()), "ts": pa.array([], pa.int64()),
                   "line": pa.array([], pa.string()), "metadata": pa.array([], pa.map_(pa.string(), pa.string())),
                   "src": pa.array([], pa.string()), "rn": pa.array([], pa.int64())})


@dataclass(frozen=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    filters: tuple[LineFilter, ...]
    start: int                      # ns, inclusive
    end: int                        # ns, exclusive
    limit: int
    backward: bool = True
    pipeline: tuple[Stage, ...] = ()   # stages after the leading line filters (exec/pipeline)
    prefilters: tuple[Prefilter, ...] = ()   # what the pipeline's label filters imply for the line
    fields: FieldFilter | None = None        # ... and for the parsed-field columns


@dataclass
class ScanStats:
    """What a query read, for Loki's `stats` block."""

    chunks: int = 0
    lines: int = 0
    bytes: int = 0
    head_lines: int = 0
    head_bytes: int = 0
    candidates: int = 0    # rows handed to the pipeline
    returned: int = 0


IN_LIST_MAX = 32  # beyond this many ids, one list parameter binds and filters faster (measured 1.5x)


def _in_list(ids: list[int]) -> tuple[str, list[object]]:
    """`stream_id IN (?, ...)`: literal-free, and DuckDB prunes row groups with it; for many ids
    (random 64-bit hashes, so min/max pruning cannot help) `= ANY(?)` over one list parameter."""
    if len(ids) > IN_LIST_MAX:
        return "stream_id = ANY(?)", [list(ids)]
    return f"stream_id IN ({', '.join('?' * len(ids))})", list(ids)


def _prefilters_sql(q: LogQuery) -> tuple[str, list[object]]:
    sql, params = "TRUE", list[object]()
    for p in q.prefilters:
        more, extra = prefilter_sql(p)
        sql, params = f"{sql} AND {more}", [*params, *extra]
    return sql, params


def _file_groups(paths: list[str], group: list[Source]) -> dict[tuple[bool, bool], list[str]]:
    """Files read by one scan part: whether they hold wanted streams only (no stream test then),
    whether they hold the `metadata_set` column."""
    pure = pure_paths(group)
    grouped: dict[tuple[bool, bool], list[str]] = {}
    for path in paths:
        key = (path in pure, has_columns(path, (METADATA_SET_COLUMN,)))
        grouped.setdefault(key, []).append(path)
    return grouped


def _scan(group: list[Source], ids: list[int], q: LogQuery, stats: ScanStats,
          limit: int | None) -> pa.Table:
    """One query over a group of sources: line-filtered, ordered, and limited unless `limit` is None.

    Chunk files with the parsed-field columns a pipeline's label filters read are tested on those
    columns (compile/fields.py); other sources on the line prefilters.
    """
    group = localized(group)
    cur = cursor()
    filters_sql, filters_params = line_filters_sql(q.filters)
    pre_sql, pre_params = _prefilters_sql(q)
    plain = f"{filters_sql} AND {pre_sql}", [*filters_params, *pre_params]
    fielded = settled_sql = plain
    wanted: tuple[str, ...] = ()
    if q.fields is not None:
        row_sql, row_params = q.fields.row_sql(pre_sql, pre_params)
        fielded = f"{filters_sql} AND {row_sql}", [*filters_params, *row_params]
        wanted = q.fields.columns()
        field_sql, field_params = q.fields.settled_sql()
        settled_sql = f"{filters_sql} AND {field_sql}", [*filters_params, *field_params]
    parts: list[str] = []
    params: list[object] = []
    registered: list[str] = []
    files = list(dict.fromkeys(s.path for s in group if s.path is not None))
    tables = [(_HEAD_SOURCE.format(s.head_rank), s.table) for s in group if s.table is not None]
    # with field columns to test, DuckDB's own scan wins sooner: it tests them before copying rows out
    direct_rows = DIRECT_READ_ROWS if q.fields is None else DIRECT_READ_ROWS // 6
    if files and len(files) <= DIRECT_READ_FILES and sum(s.rows for s in group if s.path) <= direct_rows:
        def read_one(path: str) -> pa.Table:
            extra = wanted if wanted and has_columns(path, wanted) else ()
            return read_chunk_rows(path, ids, q.start, q.end, extra)

        read = list(_readers.map(read_one, files)) if len(files) > 1 else [read_one(files[0])]
        tables += list(zip(files, read, strict=True))
        files = []
    if not files and q.fields is None:
        return _top(tables, q, stats, group, limit)
    if not tables and not q.prefilters and q.fields is None and \
            all(f.op in ("|=", "!=") and not f.ip for f in q.filters):
        stats.chunks += len(files)
        stats.lines += sum(s.rows for s in group)
        stats.bytes += sum(s.bytes for s in group)
        return _scan_polars(_file_groups(files, group), ids, q, limit)
    in_sql, in_params = _in_list(ids)
    with_fields = [f for f in files if wanted and has_columns(f, wanted)]
    settled = [f for f in with_fields if q.fields is not None and _settled(f, q.fields)]
    tested = [(settled, settled_sql), ([f for f in with_fields if f not in settled], fielded),
              ([f for f in files if f not in with_fields], plain)]
    for paths, (where, where_params) in tested:
        for (pure, sets), same in _file_groups(paths, group).items():
            streams_sql, streams_params = ("TRUE", []) if pure else (in_sql, in_params)
            parts.append(f"SELECT {_COLUMNS}, filename AS src, rn FROM (SELECT *, file_row_number AS rn"
                         f"{_metadata_set(sets)} FROM read_parquet(?, filename = true, file_row_number = true)) "
                         f"WHERE {streams_sql} AND ts >= ? AND ts < ? AND {where}")
            params += [same, *streams_params, q.start, q.end, *where_params]
    for src, table in tables:
        if table.num_rows == 0:
            continue
        name = f"rows_{next(_names)}"
        cur.register(name, table)
        registered.append(name)
        where, where_params = fielded if wanted and PARSED_COLUMN in table.column_names else plain
        parts.append(f"SELECT {_COLUMNS}, ? AS src, rn FROM (SELECT *{_metadata_set(False)} FROM {name}) "
                     f"WHERE {where}")
        params += [src, *where_params]
    stats.chunks += len(set(s.path for s in group if s.path is not None))
    stats.lines += sum(s.rows for s in group)
    stats.bytes += sum(s.bytes for s in group)
    stats.head_lines += sum(s.rows for s in group if s.table is not None)
    stats.head_bytes += sum(s.bytes for s in group if s.table is not None)
    if not parts:
        return _EMPTY
    order = "DESC" if q.backward else "ASC"
    sql = (f"SELECT * FROM ({' UNION ALL '.join(parts)}) "
           f"ORDER BY ts {order}, stream_id, src {order}, rn {order}")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    try:
        found = cur.sql(sql, params=params).to_arrow_table()
    finally:
        for name in registered:
            cur.unregister(name)
    return found.set_column(3, "metadata", metadata_maps(found.column(3)))


def _settled(path: str, fields: FieldFilter) -> bool:
    """Whether the field test alone decides every row of the file: its footer says the parser
    settled every row for the filtered names, and no row in range has metadata of those names."""
    return fields.unshadowed and unsettled_rows(footer_value(path, SETTLED_KEY), fields.parsed, fields.names) == 0


def _metadata_set(stored: bool) -> str:
    """The scan reads each row's metadata as JSON text (`metadata_set`): files written with the
    column hold it (reading the map is several times slower); for others it is made from the map."""
    return "" if stored else f", coalesce(to_json(metadata)::VARCHAR, '{{}}') AS {METADATA_SET_COLUMN}"


def _scan_polars(files: dict[tuple[bool, bool], list[str]], ids: list[int], q: LogQuery,
                 limit: int | None) -> pa.Table:
    """Substring filters over many files: Polars' scan measures faster than DuckDB's here.

    Row numbers run on across the files of one scan, so they still rise within each file: with
    the file name, ties order exactly as on the DuckDB path.
    """
    scans = []
    for (pure, _), paths in files.items():
        frame = pl.scan_parquet(paths, row_index_name="rn", include_file_paths="src", extra_columns="ignore")
        predicate = (pl.col("ts") >= q.start) & (pl.col("ts") < q.end)
        if not pure:
            predicate &= pl.col("stream_id").is_in(ids)
        for f in q.filters:
            hits = pl.any_horizontal([pl.col("line").str.contains(v, literal=True) for v in f.values])
            predicate &= ~hits if f.op == "!=" else hits
        scans.append(frame.filter(predicate).select(_EMPTY.column_names))
    descending = q.backward
    ordered = pl.concat(scans).sort(["ts", "stream_id", "src", "rn"],
                                    descending=[descending, False, descending, descending])
    result = (ordered.head(limit) if limit is not None else ordered).collect()
    return result.to_arrow().cast(_EMPTY.schema)


def _top(tables: list[tuple[str, pa.Table]], q: LogQuery, stats: ScanStats, group: list[Source],
         limit: int | None) -> pa.Table:
    """Filter and order small in-memory sources with Arrow compute alone (no query to plan)."""
    parts = []
    for src, table in tables:
        if table.num_rows == 0:
            continue
        mask = line_filters_mask(table.column("line"), q.filters)
        for p in q.prefilters:
            implied = prefilter_mask(table, p)
            mask = implied if mask is None else pc.and_(mask, implied)
        if mask is not None:
            table = table.filter(mask)
        parts.append(table.select(["stream_id", "ts", "line", "metadata", "rn"]).append_column(
            "src", pa.array([src] * table.num_rows, pa.string())).select(_EMPTY.column_names))
    stats.lines += sum(s.rows for s in group)
    stats.bytes += sum(s.bytes for s in group)
    stats.head_lines += sum(s.rows for s in group if s.table is not None)
    stats.head_bytes += sum(s.bytes for s in group if s.table is not None)
    stats.chunks += len({s.path for s in group if s.path is not None})
    if not parts:
        return _EMPTY
    return _merge(None, pa.concat_tables(parts, promote_options="permissive"), q, force=True, limit=limit)


def _merge(best: pa.Table | None, new: pa.Table, q: LogQuery, force: bool = False,
           limit: int | None = -1) -> pa.Table:
    """The first `limit` (default: the query's) rows of both, in answer order (`new` alone when
    `force`); all of them when `limit` is None."""
    if best is None and not force:
        return new
    order = "descending" if q.backward else "ascending"
    both = [new] if best is None else [best, new]
    merged = pa.concat_tables(both, promote_options="permissive").sort_by(
        [("ts", order), ("stream_id", "ascending"), ("src", order), ("rn", order)])
    if limit is None:
        return merged
    return merged.slice(0, q.limit if limit == -1 else limit)


def _run_pipeline(snapshot: Snapshot, group: list[Source], ids: list[int], q: LogQuery,
                  stats: ScanStats, limit: int | None) -> tuple[pa.Table, int]:
    """The group's rows through the pipeline, and how many rows the scan gave.

    The scan gives rows in answer order, so the pipeline runs over growing prefixes of them and
    stops once `q.limit` rows came out: the rest could only rank after those. A prefix never ends
    inside a run of equal timestamps (entries the pipeline makes identical are kept once).
    """
    candidates = _scan(group, ids, q, stats, limit)
    n = candidates.num_rows
    stamps = candidates.column("ts").to_numpy()
    labels_of = snapshot.index.streams.labels
    parts: list[pa.Table] = []
    kept = lo = 0
    step = q.limit
    while lo < n and kept < q.limit:
        hi = min(n, lo + step)
        if hi < n:
            hi += int(np.searchsorted(-stamps[hi:] if q.backward else stamps[hi:],
                                      -stamps[hi - 1] if q.backward else stamps[hi - 1], side="right"))
        rows = pipeline.begin(candidates.slice(lo, hi - lo), labels_of)
        part = pipeline.finish(pipeline.run(q.pipeline, rows))
        parts.append(part)
        kept += part.num_rows
        lo = hi
        # the next prefix: what the pass rate so far says the rest of the limit needs, and more
        step = max(step, int(2 * (q.limit - kept) * lo / max(kept, 1)))
    stats.candidates += lo
    if not parts:
        return pipeline.finish(pipeline.begin(candidates, labels_of)), n
    return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0], n


def _unshadowed(snapshot: Snapshot, ids: list[int], q: LogQuery) -> LogQuery:
    """`q`, its field test without the per-row metadata check where the index rules it out."""
    if q.fields is None:
        return q
    names = snapshot.index.metadata_names(ids, q.start, q.end)
    if names is None or names & set(q.fields.names):
        return q
    return replace(q, fields=replace(q.fields, unshadowed=True))


def _overlaps(source: Source, first: Source, backward: bool) -> bool:
    return source.max_ts >= first.min_ts if backward else source.min_ts <= first.max_ts


def select_logs(snapshot: Snapshot, stream_ids: set[int], q: LogQuery, stats: ScanStats) -> pa.Table:
    """The `limit` entries of the query, ordered by time in the query's direction.

    With a pipeline, each group is scanned whole, run through the pipeline, then limited; the
    result then carries a `labels` column (each entry's final label set).
    """
    ids = sorted(stream_ids)
    q = _unshadowed(snapshot, ids, q)
    found = sources(snapshot, ids, q.start, q.end)
    if not found or q.limit <= 0:
        return _EMPTY
    if q.backward:
        found.sort(key=lambda s: s.max_ts, reverse=True)
    else:
        found.sort(key=lambda s: s.min_ts)
    best: pa.Table | None = None
    keeps_rows = not any(isinstance(s, (LineFilter, LabelFilterStage)) for s in q.pipeline)
    budget = 2 * q.limit
    scanned = hits = 0
    i = 0
    scan_q = q  # once `limit` rows are held, later groups only need rows at least as good as the worst
    while i < len(found):
        group = [found[i]]
        size = found[i].rows
        i += 1
        # sources overlapping the group's first are read with it: they hold rows as new as its
        while i < len(found) and (size < budget or _overlaps(found[i], group[0], q.backward)):
            group.append(found[i])
            size += found[i].rows
            i += 1
        if q.pipeline:
            # a pipeline that drops no rows needs only the group's first `limit` rows, unless it
            # made some of them identical (kept once): then the group is run whole
            first = q.limit if keeps_rows else None
            result, read = _run_pipeline(snapshot, group, ids, scan_q, stats, first)
            if first is not None and result.num_rows < read == first:
                result, _ = _run_pipeline(snapshot, group, ids, scan_q, stats, None)
        else:
            result = _scan(group, ids, scan_q, stats, q.limit)
        best = _merge(best, result, q, force=True)
        scanned += size
        hits += result.num_rows
        missing = max(q.limit - best.num_rows, 1)
        budget = max(2 * size, int(1.5 * missing * scanned / max(hits, 1)))
        if i < len(found) and best.num_rows >= q.limit:
            worst = best.column("ts")[q.limit - 1].as_py()
            if (q.backward and worst > found[i].max_ts) or (not q.backward and worst < found[i].min_ts):
                break
            scan_q = replace(q, start=max(q.start, worst)) if q.backward else replace(q, end=min(q.end, worst + 1))
    assert best is not None
    stats.returned = best.num_rows
    return best


def select_batches(snapshot: Snapshot, stream_ids: set[int], q: LogQuery, stats: ScanStats,
                   max_rows: int) -> Iterator[pa.Table]:
    """Every entry of the streams in [q.start, q.end) that passes the scan's filters (metric
    queries read them all; `q.limit` is ignored), a group of sources at a time: groups hold up to
    about `max_rows` rows, so memory stays bounded. Sources are read oldest first."""
    ids = sorted(stream_ids)
    found = sorted(sources(snapshot, ids, q.start, q.end), key=lambda s: (s.min_ts, s.max_ts))
    forward = replace(_unshadowed(snapshot, ids, q), backward=False)
    group: list[Source] = []
    size = 0
    for source in found:
        if group and size + source.rows > max_rows:
            yield _scan(group, ids, forward, stats, None)
            group, size = [], 0
        group.append(source)
        size += source.rows
    if group:
        yield _scan(group, ids, forward, stats, None)
