"""`sum by (level) (count_over_time({…} | json [1m]))` answered from the parsed-field columns.

Summing counts (or rates, or sizes) by some labels is the same as counting the lines per value of
those labels, so the full label set of every line, which `| json` would build, is never needed:
only the grouping labels, and those a chunk file already holds as columns (store/fields.py).
DuckDB then reads the columns, spreads each line over its windows and counts per (labels, step).
Where the windows are made of whole minutes and no line filter runs, a file's rollup (per-minute
counts, store/rollups.py) is read instead of its rows, with the same SQL.

Taken only where that is exactly what the pipeline would give:
- the pipeline is the leading line filters and one `| json` or `| logfmt` without parameters;
- the outer aggregation is `sum` (by labels, or none); the range aggregation adds up per line
  (count_over_time, rate, bytes_over_time, bytes_rate) with no grouping, unwrap or offset quirks;
- every grouping label is a field column in every file, or a stream label of every selected
  stream (a parsed name that shadows a stream label is renamed, so the stream's value counts);
  structured metadata of that name takes precedence over the parsed value, as in Loki;
- every chunk file in range has the field columns.
Lines not marked as parsed by that parser (odd lines, and lines still in a head, which has no
field columns) run through the pipeline as usual: their labels come out exact, a line that fails
fails the query as in Loki, and their counts join the others'.
Otherwise None: the caller evaluates the expression as usual.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.compile.filters import line_filters_mask
from lokiarrow.exec import pipeline
from lokiarrow.exec.duck import cursor
from lokiarrow.exec.logs import ScanStats
from lokiarrow.exec.metrics.ranges import (
    IN_SQL,
    error_series,
    fail_on_errors,
    windows,
)
from lokiarrow.exec.metrics.series import POINTS_SCHEMA, Labels, Matrix, labels_of
from lokiarrow.exec.metrics.windows_sql import (
    IN_WINDOWS,
    SPANS,
    chunk_scan,
    covered,
    field_key,
    grouping_sources,
    rolled_up,
    steps_sql,
    window_params,
)
from lokiarrow.exec.sources import footer_value, has_columns, pure_paths, sources
from lokiarrow.logql import ast
from lokiarrow.store.fields import (
    INEXACT_COLUMN,
    PARSED_COLUMN,
    PARSED_JSON,
    PARSED_LOGFMT,
    SETTLED_KEY,
    field_column,
    unsettled_rows,
)
from lokiarrow.store.names import rollup_of
from lokiarrow.store.tenant import Snapshot

# rows whose fields the columns hold: parsed by the parser, every needed value known
SETTLED = (f"coalesce({PARSED_COLUMN} = $kind AND NOT coalesce(list_has_any({INEXACT_COLUMN}, $needed), FALSE), "
           "FALSE)")


def sum_by_fields(node: ast.VectorAggregation, snapshot: Snapshot, steps: np.ndarray, step_ns: int,
                  stats: ScanStats) -> Matrix | None:
    inner = node.expr
    if node.op != "sum" or not isinstance(inner, ast.RangeAggregation) or inner.op not in IN_SQL:
        return None
    if inner.grouping is not None or inner.range.unwrap is not None:
        return None
    if node.grouping is not None and node.grouping.without:
        return None
    filters, rest = pipeline.split(inner.range.selector.stages)
    parsed = parsed_by(rest)
    if parsed is None:
        return None
    wanted = node.grouping.labels if node.grouping else ()
    rng = inner.range
    ids = sorted(snapshot.index.streams.match(rng.selector.matchers))
    if not ids:
        return None
    split = grouping_sources(wanted, [snapshot.index.streams.labels[i] for i in ids])
    if split is None:
        return None
    from_streams, from_fields = split
    lo, hi = covered(rng, steps)
    found = sources(snapshot, ids, lo, hi)
    columns = (PARSED_COLUMN, INEXACT_COLUMN, *(field_column(g) for g in from_fields))
    if not found or any(s.path is not None and not has_columns(s.path, columns) for s in found):
        return None
    files = [s.path for s in found if s.path is not None]
    pure = pure_paths(found)
    heads = [s.table for s in found if s.table is not None]
    stats.chunks += len(files)
    stats.lines += sum(s.rows for s in found)
    stats.bytes += sum(s.bytes for s in found)
    parts = []
    leftovers: list[pa.Table] = []
    if files:
        metadata = snapshot.index.metadata_names(ids, lo, hi)
        rolled = rolled_up(files, from_fields, filters, inner.op, rng, steps, step_ns)
        groups: dict[str | None, list[str]] = {}
        for f in files:
            groups.setdefault(rolled.get(f), []).append(f)
        for weight, group in groups.items():
            if weight is None:
                scan, named = chunk_scan(group, pure, ids, lo, hi, filters)
            else:  # the rollup's column counts the lines the filters keep
                scan, named = chunk_scan([rollup_of(f) for f in group], {rollup_of(f) for f in group if f in pure},
                                         ids, lo, hi, ())
            named.update(kind=parsed, needed=list(from_fields))
            parts.append(_exact_rows(inner, scan, named, steps, step_ns, snapshot, from_streams, from_fields,
                                     metadata, weight))
        # files whose footers do not promise every row settled: counted first without reading
        # lines (line filters left out: at worst a needless fetch)
        unsure = [f for f in files if unsettled_rows(footer_value(f, SETTLED_KEY), parsed, from_fields) != 0]
        unsettled = 0
        if unsure:
            counted, count_params = chunk_scan(unsure, pure, ids, lo, hi, ())
            [(unsettled,)] = cursor().sql(f"SELECT count(*) {counted} AND NOT ({SETTLED})",
                                          params={**count_params, "kind": parsed,
                                                  "needed": list(from_fields)}).fetchall()
        if unsettled:
            scan_unsure, named_unsure = chunk_scan(unsure, pure, ids, lo, hi, filters)
            named_unsure.update(kind=parsed, needed=list(from_fields))
            leftovers.append(cursor().sql(f"SELECT stream_id, ts, line, metadata {scan_unsure} AND NOT ({SETTLED})",
                                          params=named_unsure).to_arrow_table())
    for table in heads:
        mask = line_filters_mask(table.column("line"), filters)
        leftovers.append((table if mask is None else table.filter(mask)).select(["stream_id", "ts", "line", "metadata"]))
    rows = [t for t in leftovers if t.num_rows]
    if rows:
        parts.append(_through_pipeline(inner, pa.concat_tables(rows, promote_options="permissive"), rest, snapshot,
                                       steps, step_ns, wanted))
    return _summed(parts, steps)


def _exact_rows(inner: ast.RangeAggregation, scan: str, named: dict[str, object], steps: np.ndarray,
                step_ns: int, snapshot: Snapshot, from_streams: list[str], from_fields: list[str],
                metadata: set[str] | None, weight: str | None) -> tuple[list[Labels], pl.DataFrame]:
    """Lines marked as parsed: counted in SQL per (grouping values, step), from the chunk files'
    rows or from their rollups' (`weight`: the rollup column that counts lines; `bytes` sizes them)."""
    rng = inner.range
    params = {**named, **window_params(rng, steps, step_ns)}
    key = field_key(from_fields, params, metadata)
    agg = IN_SQL[inner.op].replace("?", "$seconds")
    if "$seconds" in agg:
        params["seconds"] = rng.range_ns / 1e9
    size = ("strlen(line)" if weight is None else "bytes") if inner.op.startswith("bytes") else "0"  # counts need no line
    carried = "v"
    if weight is not None:
        agg, carried = agg.replace("count(*)", "sum(n)"), "v, n"
    sql = f"""
        WITH spans AS (
            SELECT stream_id, {key} AS gk, {size} AS v, {"" if weight is None else f"{weight} AS n, "}{SPANS}
            {scan} AND {SETTLED} AND {IN_WINDOWS}{"" if weight is None else f" AND {weight} > 0"}
        )
        SELECT {"stream_id" if from_streams else "0 AS stream_id"}, gk, step, {agg} AS v
        FROM (SELECT stream_id, gk, {carried}, {steps_sql(params)} FROM spans WHERE k0 <= k1)
        GROUP BY ALL
    """
    frame = pl.from_arrow(cursor().sql(sql, params=params).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    index: dict[Labels, int] = {}
    sid_of: dict[tuple[int, str], int] = {}
    for stream_id, gk in frame.select("stream_id", "gk").unique().iter_rows():
        pairs = dict(zip(from_fields, json.loads(gk), strict=True)) if from_fields else {}
        if from_streams:
            stream = snapshot.index.streams.labels[stream_id]
            pairs.update({g: stream[g] for g in from_streams})
        labels = labels_of({k: v for k, v in pairs.items() if v is not None})
        sid_of[(stream_id, gk)] = index.setdefault(labels, len(index))
    mapping = pl.DataFrame({"stream_id": [k[0] for k in sid_of], "gk": [k[1] for k in sid_of],
                            "sid": list(sid_of.values())},
                           schema={"stream_id": frame.schema["stream_id"], "gk": pl.String, "sid": pl.Int64})
    points = frame.join(mapping, on=["stream_id", "gk"]).select("sid", "step", "v")
    return list(index), points


def _through_pipeline(inner: ast.RangeAggregation, rows: pa.Table, rest: tuple[ast.Stage, ...],
                      snapshot: Snapshot, steps: np.ndarray, step_ns: int, wanted: tuple[str, ...]
                      ) -> tuple[list[Labels], pl.DataFrame]:
    """The other lines: the pipeline gives their labels (and errors), then windows as usual."""
    rows = rows.sort_by([("ts", "ascending")])
    table = pipeline.finish(pipeline.run(rest, pipeline.begin(rows, snapshot.index.streams.labels)))
    fail_on_errors(error_series(table))
    index: dict[Labels, int] = {}
    gids = [index.setdefault(labels_of({k: v for k, v in m if k in wanted}), len(index))
            for m in table.column("labels").to_pylist()]
    sizes = pc.binary_length(table.column("line")).to_numpy(zero_copy_only=False).astype(np.float64)
    samples = pl.DataFrame({"gid": np.asarray(gids, dtype=np.int64), "ts": table.column("ts").to_numpy(),
                            "v": sizes, "seq": np.arange(len(gids), dtype=np.int64)})
    return list(index), windows(inner, samples, steps, step_ns)


def _summed(parts: list[tuple[list[Labels], pl.DataFrame]], steps: np.ndarray) -> Matrix:
    """Parts with their own series numbering, summed per (label set, step)."""
    index: dict[Labels, int] = {}
    frames = []
    for labels, points in parts:
        remap = np.array([index.setdefault(lb, len(index)) for lb in labels], dtype=np.int64)
        if points.height:
            frames.append(points.with_columns(pl.Series("sid", remap).gather(points.get_column("sid")))
                          .cast(POINTS_SCHEMA))  # type: ignore[arg-type]
    if not frames:
        return Matrix.empty(steps)
    summed = pl.concat(frames).group_by("sid", "step").agg(pl.col("v").sum()).select("sid", "step", "v")
    return Matrix(steps, list(index), summed.cast(POINTS_SCHEMA))  # type: ignore[arg-type]


def parsed_by(rest: tuple[ast.Stage, ...]) -> int | None:
    if len(rest) != 1:
        return None
    stage = rest[0]
    if isinstance(stage, ast.JsonParser) and not stage.extractions:
        return PARSED_JSON
    if isinstance(stage, ast.LogfmtParser) and not stage.extractions:
        return PARSED_LOGFMT
    return None
