"""`quantile_over_time(0.99, {…} | json | unwrap latency_ms [5m]) by (namespace)` from field columns.

An unwrapped value that a chunk file holds as a field column (store/fields.py) is read from it,
and DuckDB aggregates the values per (grouping labels, step) in the same pass; no line is parsed.

Taken only where that is exactly what the pipeline would give:
- the pipeline is the leading line filters and one `| json` or `| logfmt` without parameters, then
  `| unwrap x` (no conversion function), optionally followed by `| __error__=""`;
- the range aggregation has `by (…)` (labels that are stream labels of every selected stream, or
  field columns), and is one that needs every value at once (quantile) or adds up (sum, avg,
  min, max, stdvar, stddev);
- every line in range is in a chunk file with the columns, marked as parsed by that parser, and
  its value is absent or a plain decimal (which converts as strconv.ParseFloat does), or a JSON
  number the column could not hold as written (then read from the line), with no structured
  metadata named x.
Otherwise None: the caller evaluates the expression as usual (a mix of both cannot be combined
for a quantile).
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pyarrow as pa

from lokiarrow.exec import pipeline
from lokiarrow.exec.duck import cursor
from lokiarrow.exec.logs import ScanStats
from lokiarrow.exec.metrics.fielded import SETTLED, parsed_by
from lokiarrow.exec.metrics.series import POINTS_SCHEMA, Labels, Matrix, labels_of
from lokiarrow.exec.metrics.windows_sql import (
    IN_WINDOWS,
    SPANS,
    chunk_scan,
    covered,
    field_key,
    grouping_sources,
    steps_sql,
    window_params,
)
from lokiarrow.exec.sources import footer_value, has_columns, pure_paths, sources
from lokiarrow.logql import ast
from lokiarrow.store.fields import (
    INEXACT_COLUMN,
    PARSED_COLUMN,
    PARSED_JSON,
    PLAIN_DECIMAL,
    SETTLED_KEY,
    field_column,
    is_field_name,
    numbers_everywhere,
)
from lokiarrow.store.tenant import Snapshot

_AGGREGATES = {
    "sum_over_time": "sum(v)", "avg_over_time": "avg(v)", "min_over_time": "min(v)", "max_over_time": "max(v)",
    "stdvar_over_time": "var_pop(v)", "stddev_over_time": "stddev_pop(v)",
    "quantile_over_time": "quantile_cont(v, $phi)",
}


def unwrapped_by_fields(node: ast.RangeAggregation, snapshot: Snapshot, steps: np.ndarray, step_ns: int,
                        stats: ScanStats) -> Matrix | None:
    rng = node.range
    unwrap = rng.unwrap
    if unwrap is None or unwrap.conversion or node.op not in _AGGREGATES or not is_field_name(unwrap.label):
        return None
    if node.grouping is None or node.grouping.without or not all(_no_error(f) for f in unwrap.post_filters):
        return None
    if node.op == "quantile_over_time" and (node.param is None or not 0 <= node.param <= 1 or math.isnan(node.param)):
        return None
    filters, rest = pipeline.split(rng.selector.stages)
    parsed = parsed_by(rest)
    if parsed is None:
        return None
    ids = sorted(snapshot.index.streams.match(rng.selector.matchers))
    if not ids:
        return None
    stream_labels = [snapshot.index.streams.labels[i] for i in ids]
    split = grouping_sources(node.grouping.labels, stream_labels)
    if split is None or any(unwrap.label in s for s in stream_labels):
        return None
    from_streams, from_fields = split
    lo, hi = covered(rng, steps)
    found = sources(snapshot, ids, lo, hi)
    columns = (PARSED_COLUMN, INEXACT_COLUMN, field_column(unwrap.label), *(field_column(g) for g in from_fields))
    if not found or any(s.path is None or not has_columns(s.path, columns) for s in found):
        return None
    files = [s.path for s in found if s.path is not None]
    scan, params = chunk_scan(files, pure_paths(found), ids, lo, hi, filters)
    params.update(kind=parsed, unwrapped=unwrap.label, plain=PLAIN_DECIMAL, needed=list(from_fields),
                  path=f'$."{unwrap.label}"')
    column = f'"{field_column(unwrap.label)}"'
    # a JSON number the column could not hold as written (`8.090`) still has the value DuckDB reads
    unknown = f"coalesce(list_contains({INEXACT_COLUMN}, $unwrapped), FALSE)"
    number = f"{PARSED_COLUMN} = {PARSED_JSON} AND json_type(line, $path) IN ('BIGINT', 'UBIGINT', 'DOUBLE')"
    value = f"(CASE WHEN {unknown} THEN json_extract(line, $path)::DOUBLE ELSE TRY_CAST({column} AS DOUBLE) END)"
    present = f"(CASE WHEN {unknown} THEN TRUE ELSE {column} IS NOT NULL AND {column} <> '' END)"
    settled = (f"{SETTLED} AND NOT coalesce(list_contains(map_keys(metadata), $unwrapped), FALSE) "
               f"AND (CASE WHEN {unknown} THEN {number} "
               f"ELSE {column} IS NULL OR {column} = '' OR regexp_full_match({column}, $plain) END)")
    shadows = snapshot.index.metadata_names(ids, lo, hi)
    if shadows is not None and unwrap.label not in shadows and all(
            numbers_everywhere(footer_value(f, SETTLED_KEY), parsed, from_fields, unwrap.label) for f in files):
        # the footers and the index promise it: every row settled, every value a plain decimal
        settled, value = "TRUE", f"TRY_CAST({column} AS DOUBLE)"
        present = f"({column} IS NOT NULL AND {column} <> '')"
        params = {k: v for k, v in params.items() if k not in ("kind", "unwrapped", "plain", "needed", "path")}
    else:
        cur = cursor()
        [(unsettled,)] = cur.sql(f"SELECT count(*) {scan} AND NOT ({settled})", params=params).fetchall()
        if unsettled:
            return None
    stats.chunks += len(files)
    stats.lines += sum(s.rows for s in found)
    stats.bytes += sum(s.bytes for s in found)
    return _aggregate(node, scan, f"{settled} AND {present}", value, params, steps, step_ns, snapshot, ids,
                      from_streams, from_fields, shadows)


def _aggregate(node: ast.RangeAggregation, scan: str, settled: str, value: str, params: dict[str, object],
               steps: np.ndarray, step_ns: int, snapshot: Snapshot, ids: list[int], from_streams: list[str],
               from_fields: list[str], metadata: set[str] | None) -> Matrix:
    rng = node.range
    params.update(window_params(rng, steps, step_ns))
    fk = field_key(from_fields, params, metadata)
    streams = pa.table({"stream_id": pa.array(ids, pa.int64()), "sk": pa.array(
        [json.dumps([snapshot.index.streams.labels[i].get(g) for g in from_streams]) for i in ids], pa.string())})
    agg = _AGGREGATES[node.op]
    if "$phi" in agg:
        params["phi"] = node.param
    sql = f"""
        WITH spans AS (
            SELECT stream_id, {fk} AS fk, {value} AS v, {SPANS}
            {scan} AND {settled} AND {IN_WINDOWS}
        )
        SELECT sk, fk, step, {agg} AS v
        FROM (SELECT stream_id, fk, v, {steps_sql(params)} FROM spans WHERE k0 <= k1)
             JOIN unwrapped_streams USING (stream_id)
        GROUP BY sk, fk, step
    """
    cur = cursor()
    cur.register("unwrapped_streams", streams)
    try:
        frame = pl.from_arrow(cur.sql(sql, params=params).to_arrow_table())
    finally:
        cur.unregister("unwrapped_streams")
    assert isinstance(frame, pl.DataFrame)
    index: dict[Labels, int] = {}
    sid_of: dict[tuple[str, str], int] = {}
    for sk, fk in frame.select("sk", "fk").unique().iter_rows():
        pairs = dict(zip(from_streams, json.loads(sk), strict=True))
        pairs.update(zip(from_fields, json.loads(fk), strict=True))
        labels = labels_of({k: v for k, v in pairs.items() if v is not None})
        sid_of[(sk, fk)] = index.setdefault(labels, len(index))
    if not sid_of:
        return Matrix.empty(steps)
    mapping = pl.DataFrame({"sk": [k[0] for k in sid_of], "fk": [k[1] for k in sid_of], "sid": list(sid_of.values())},
                           schema={"sk": pl.String, "fk": pl.String, "sid": pl.Int64})
    points = frame.join(mapping, on=["sk", "fk"]).select("sid", "step", "v").cast(POINTS_SCHEMA)  # type: ignore[arg-type]
    return Matrix(steps, list(index), points)


def _no_error(f: ast.LabelFilter) -> bool:
    return isinstance(f, ast.LabelMatch) and f.matcher.name == "__error__" and f.matcher.op == "=" \
        and f.matcher.value == ""
