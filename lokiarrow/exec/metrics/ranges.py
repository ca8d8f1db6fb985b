"""Range aggregations: `count_over_time({…} | … [5m])` and the rest, at each step of the query.

1. Samples: every line of the selected streams in the time the windows cover, after the line
   filters (in the scan) and the pipeline, as (series, ts, value). Without a pipeline the scan
   returns only stream ids, times, metadata and line sizes; with one, the lines run through
   exec/pipeline and each keeps its final label set. `| unwrap x` turns label x into the value
   (converted as asked), drops it from the labels and applies the filters after it.
2. A line that still carries `__error__` fails the query with Loki's "pipeline error" text.
3. `by`/`without` on the range aggregation group the samples first.
4. Windows, as Loki's: the step at time t covers (t - offset - range, t - offset]. Each sample is
   spread over the steps whose window holds it, and DuckDB aggregates per (series, step).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.compile.fields import field_filter
from lokiarrow.compile.filters import line_filters_sql
from lokiarrow.compile.prefilter import prefilters
from lokiarrow.errors import BadRequest
from lokiarrow.exec import pipeline
from lokiarrow.exec.duck import cursor
from lokiarrow.exec.label_filters import FilterState, evaluate, go_float
from lokiarrow.exec.logs import LogQuery, ScanStats, select_batches
from lokiarrow.exec.metrics.index_counts import whole_rows
from lokiarrow.exec.metrics.series import POINTS_SCHEMA, Labels, Matrix, labels_of
from lokiarrow.exec.metrics.windows_sql import (
    IN_WINDOWS,
    SPANS,
    covered,
    numbered_to_named,
    rolled_up,
    steps_sql,
    window_params,
)
from lokiarrow.exec.sources import Source, has_columns, metadata_maps, pure_paths, sources
from lokiarrow.logql import ast
from lokiarrow.model import go_quote
from lokiarrow.store.fs import readable
from lokiarrow.store.index import Streams
from lokiarrow.store.names import rollup_of
from lokiarrow.store.schema import METADATA_SET_COLUMN
from lokiarrow.store.tenant import Snapshot
from lokiarrow.units import go_duration_ns, parse_humanized_bytes

SAMPLE_EXTRACTION_ERROR = "SampleExtractionErr"
BATCH_ROWS = 200_000   # lines through the pipeline at a time: memory stays bounded
_AGGREGATES = {
    "count_over_time": "count(*)::DOUBLE",
    "rate": "count(*) / $seconds",
    "bytes_over_time": "sum(v)",
    "bytes_rate": "sum(v) / $seconds",
    "sum_over_time": "sum(v)",
    "avg_over_time": "avg(v)",
    "min_over_time": "min(v)",
    "max_over_time": "max(v)",
    "first_over_time": "arg_min(v, seq)",
    "last_over_time": "arg_max(v, seq)",
    "stdvar_over_time": "var_pop(v)",
    "stddev_over_time": "stddev_pop(v)",
}


def range_aggregation(node: ast.RangeAggregation, snapshot: Snapshot, steps: np.ndarray, step_ns: int,
                      stats: ScanStats) -> Matrix:
    rng = node.range
    filters, rest = pipeline.split(rng.selector.stages)
    # `| drop …` / `| keep …` alone change only labels, which are the same for all lines of a
    # (stream, metadata) series: counted in SQL, then relabelled per series (Grafana's log volume
    # sends `| drop __error__`)
    relabels = all(isinstance(s, ast.DropLabels | ast.KeepLabels) for s in rest)
    if relabels and rng.unwrap is None and node.grouping is None and node.op in IN_SQL:
        return _in_sql(node, snapshot, steps, step_ns, filters, stats, rest)
    samples, labels = _samples(node, snapshot, steps, stats)
    if node.op == "absent_over_time":
        return _absent(rng, samples, steps, step_ns)
    if node.grouping is not None:
        samples, labels = _grouped(samples, labels, node.grouping)
    points = windows(node, samples, steps, step_ns)
    return Matrix(steps, labels, points)


# --- lines without a pipeline: all in SQL -------------------------------------------------------

IN_SQL = {"count_over_time": "count(*)::DOUBLE", "rate": "count(*) / ?",
           "bytes_over_time": "sum(v)::DOUBLE", "bytes_rate": "sum(v) / ?"}


def _in_sql(node: ast.RangeAggregation, snapshot: Snapshot, steps: np.ndarray, step_ns: int,
            filters: tuple[ast.LineFilter, ...], stats: ScanStats, relabel: tuple[ast.Stage, ...] = ()) -> Matrix:
    """Counts and sizes straight from the scan: DuckDB spreads each line over the steps whose
    window holds it and aggregates per (stream, structured metadata, step); no line leaves it."""
    rng = node.range
    expr = rng.selector
    ids = sorted(snapshot.index.streams.match(expr.matchers))
    lo, hi = covered(rng, steps)
    found = sources(snapshot, ids, lo, hi) if ids else []
    if not found:
        return Matrix.empty(steps)
    every_stream = len(ids) == len(snapshot.index.streams.labels)
    indexed = None
    if not filters:  # whole index rows in the windows: their files need no scan
        indexed = whole_rows(snapshot, None if every_stream else ids, rng, steps, step_ns)
        found = [s for s in found if s.path not in indexed.answered]
        stats.chunks += len(indexed.answered)
    table = _scanned(node, found, ids, filters, steps, step_ns, stats) if found else None
    if indexed is not None and indexed.counts.num_rows:
        table = _with_index_counts(node, table, indexed.counts)
    if table is None:
        return Matrix.empty(steps)
    return _labelled(table, snapshot, steps, relabel)


def _with_index_counts(node: ast.RangeAggregation, scanned: pa.Table | None, counts: pa.Table) -> pa.Table:
    """The scan's (stream_id, mk, step, v) and the index's counts, summed per key (both add up)."""
    seconds = node.range.range_ns / 1e9
    amount = pc.cast(counts.column("bytes" if node.op.startswith("bytes") else "rows"), pa.float64())
    if node.op in ("rate", "bytes_rate"):
        amount = pc.divide(amount, seconds)
    parts = [counts.select(["stream_id", "mk", "step"]).append_column("v", amount)]
    if scanned is not None and scanned.num_rows:
        parts.append(scanned.select(["stream_id", "mk", "step", "v"]).cast(parts[0].schema))
    both = pa.concat_tables(parts)
    return both.group_by(["stream_id", "mk", "step"], use_threads=False).aggregate([("v", "sum")]) \
        .rename_columns(["stream_id", "mk", "step", "v"])


def _scanned(node: ast.RangeAggregation, found: list[Source], ids: list[int],
             filters: tuple[ast.LineFilter, ...], steps: np.ndarray, step_ns: int, stats: ScanStats) -> pa.Table:
    rng = node.range
    lo, hi = covered(rng, steps)
    cur = cursor()
    where, where_params = line_filters_sql(filters)
    parts: list[str] = []
    registered: list[str] = []
    files = [s.path for s in found if s.path is not None]
    pure = pure_paths(found)
    rolled = rolled_up(files, (), filters, node.op, rng, steps, step_ns)
    size = "strlen(line)" if node.op.startswith("bytes") else "0"  # counts need no line
    as_json = "coalesce(to_json(metadata)::VARCHAR, '{}')"
    # files that hold each row's metadata set as text are grouped by it, the others by the map;
    # files holding wanted streams only are read without the stream test; files whose rollup
    # answers are read from it (rows that count `n` lines, or those the filters keep, of `bytes` bytes)
    by_kind: dict[tuple[bool, bool, str | None], list[str]] = {}
    for f in files:
        by_kind.setdefault((f in pure, has_columns(f, (METADATA_SET_COLUMN,)), rolled.get(f)), []).append(f)
    weight = ", 1 AS n" if rolled else ""
    named_files = {}
    for i, ((clean, stored, counted), paths) in enumerate(by_kind.items()):
        in_sql = "TRUE" if clean else "stream_id = ANY($ids)"
        if counted is None:
            mk = METADATA_SET_COLUMN if stored else as_json
            parts.append(f"SELECT stream_id, ts, {mk} AS mk, {size} AS v{weight} FROM read_parquet($files{i}) "
                         f"WHERE {in_sql} AND ts >= $lo AND ts < $hi AND {where}")
            named_files[f"files{i}"] = readable(paths)
        else:
            v = "bytes" if node.op.startswith("bytes") else "0"
            parts.append(f"SELECT stream_id, ts, {METADATA_SET_COLUMN} AS mk, {v} AS v, {counted} AS n "
                         f"FROM read_parquet($files{i}) WHERE {in_sql} AND ts >= $lo AND ts < $hi AND {counted} > 0")
            named_files[f"files{i}"] = readable(rollup_of(p) for p in paths)
    for s in found:
        if s.table is not None:
            name = f"head_rows_{id(s.table)}"
            cur.register(name, s.table)
            registered.append(name)
            parts.append(f"SELECT stream_id, ts, {as_json} AS mk, {size} AS v{weight} FROM {name} WHERE {where}")
    agg = IN_SQL[node.op].replace("?", "$seconds")
    carried = "v, n" if rolled else "v"
    if rolled:
        agg = agg.replace("count(*)", "sum(n)")
    named = window_params(rng, steps, step_ns)
    sql = f"""
        WITH spans AS (
            SELECT stream_id, mk, {carried}, {SPANS}
            FROM ({" UNION ALL ".join(parts)})
            WHERE {IN_WINDOWS}
        )
        SELECT stream_id, mk, step, {agg} AS v
        FROM (SELECT stream_id, mk, {carried}, {steps_sql(named)} FROM spans WHERE k0 <= k1)
        GROUP BY stream_id, mk, step
    """
    if files:
        named.update(lo=lo, hi=hi, **named_files)
        if not all(clean for clean, _, _ in by_kind):
            named["ids"] = ids
    if "$seconds" in agg:
        named["seconds"] = rng.range_ns / 1e9
    filter_names = [f"f{i}" for i in range(len(where_params))]
    sql = numbered_to_named(sql, filter_names)
    if filter_names and f"${filter_names[0]}" in sql:  # not when rollups answer the filters
        named.update(zip(filter_names, where_params, strict=True))
    try:
        table = cur.sql(sql, params=named).to_arrow_table()
    finally:
        for name in registered:
            cur.unregister(name)
    stats.chunks += len(files)
    stats.lines += sum(s.rows for s in found)
    stats.bytes += sum(s.bytes for s in found)
    return table


# (stream id, metadata set) -> series labels: ids name label sets, so this holds across tenants
_SERIES_LABELS: dict[tuple[int, str], Labels] = {}
SERIES_LABELS_CACHED = 100_000


def _series_labels(stream: dict[str, str], metadata: str) -> Labels:
    """A stream's labels, then its metadata's in order (a name the stream has gets `_extracted`)."""
    pairs = dict(stream)
    for name, value in json.loads(metadata).items():
        pairs[f"{name}_extracted" if name in stream else name] = value
    return labels_of(pairs)


def _labelled(table: pa.Table, snapshot: Snapshot, steps: np.ndarray, relabel: tuple[ast.Stage, ...] = ()) -> Matrix:
    """Points keyed by (stream, metadata) -> series labels: the stream's, then the metadata's
    (a name the stream has gets `_extracted`, as in log answers). Labels are built once per
    distinct key; two spellings of one metadata set (its names in another order) are one series:
    their points add up (counts and sizes)."""
    if table.num_rows <= PYTHON_ROWS and not relabel:  # Polars' per-operation cost outweighs a short loop
        return _labelled_rows(table, snapshot, steps)
    frame = pl.from_arrow(table.select(["stream_id", "mk", "step", "v"]))
    assert isinstance(frame, pl.DataFrame)
    keys = frame.select("stream_id", "mk").unique(maintain_order=True)
    series: dict[Labels, int] = {}
    pairs = list(zip(keys.get_column("stream_id").to_list(), keys.get_column("mk").to_list(), strict=True))
    sids = [series.setdefault(labels, len(series)) for labels in _keys_labelled(pairs, snapshot, relabel)]
    mapping = keys.with_columns(pl.Series("sid", sids, dtype=pl.Int64))
    points = frame.join(mapping, on=["stream_id", "mk"]).select("sid", "step", "v")
    if len(series) < keys.height:
        points = points.group_by("sid", "step").agg(pl.col("v").sum())
    return Matrix(steps, list(series), points.cast(POINTS_SCHEMA))  # type: ignore[arg-type]


PYTHON_ROWS = 4096


def _labelled_rows(table: pa.Table, snapshot: Snapshot, steps: np.ndarray) -> Matrix:
    """`_labelled` for few points (instant queries), row by row."""
    series: dict[Labels, int] = {}
    streams = snapshot.index.streams
    sid_of: dict[tuple[int, str], int] = {}
    points: dict[tuple[int, int], float] = {}
    for stream_id, mk, step, v in zip(*(table.column(c).to_pylist() for c in ("stream_id", "mk", "step", "v")),
                                      strict=True):
        sid = sid_of.get((stream_id, mk))
        if sid is None:
            sid = sid_of[(stream_id, mk)] = series.setdefault(_series_labels_of(streams, stream_id, mk), len(series))
        points[(sid, step)] = v if (sid, step) not in points else points[(sid, step)] + v
    frame = pl.DataFrame({"sid": [k[0] for k in points], "step": [k[1] for k in points], "v": list(points.values())},
                         schema=POINTS_SCHEMA)
    return Matrix(steps, list(series), frame)


def _keys_labelled(keys: list[tuple[int, str]], snapshot: Snapshot, relabel: tuple[ast.Stage, ...]) -> list[Labels]:
    """The series labels of (stream, metadata set) keys, after the `relabel` stages (drop, keep),
    which run as in a log query, over one row per key."""
    streams = snapshot.index.streams
    if not relabel:
        return [_series_labels_of(streams, stream_id, mk) for stream_id, mk in keys]
    rows = pa.table({"stream_id": pa.array([k[0] for k in keys], pa.int64()),
                     "ts": pa.array(range(len(keys)), pa.int64()),  # distinct: rows alike are not one entry
                     "line": pa.array([""] * len(keys), pa.string()),
                     "metadata": metadata_maps(pa.array([k[1] for k in keys], pa.string()))})
    finished = pipeline.finish(pipeline.run(relabel, pipeline.begin(rows, streams.labels)))
    return [labels_of(dict(m)) for m in finished.column("labels").to_pylist()]


def _series_labels_of(streams: Streams, stream_id: int, mk: str) -> Labels:
    labels = _SERIES_LABELS.get((stream_id, mk))
    if labels is None:
        labels = _series_labels(streams.labels[stream_id], mk)
        if len(_SERIES_LABELS) >= SERIES_LABELS_CACHED:
            _SERIES_LABELS.clear()
        _SERIES_LABELS[(stream_id, mk)] = labels
    return labels


# --- samples -------------------------------------------------------------------------------------

_VALUE = "__unwrapped_value"


def _samples(node: ast.RangeAggregation, snapshot: Snapshot, steps: np.ndarray, stats: ScanStats
             ) -> tuple[pl.DataFrame, list[Labels]]:
    """(gid, ts, v, seq) per sample, and each gid's labels."""
    rng = node.range
    expr = rng.selector
    lo = int(steps[0]) - rng.offset_ns - rng.range_ns   # exclusive
    hi = int(steps[-1]) - rng.offset_ns                  # inclusive
    filters, rest = pipeline.split(expr.stages)
    ids = snapshot.index.streams.match(expr.matchers)
    empty = pl.DataFrame(schema={"gid": pl.Int64, "ts": pl.Int64, "v": pl.Float64, "seq": pl.Int64})
    if not ids:
        return empty, []
    names = {n for sid in ids for n in snapshot.index.streams.labels[sid]}
    q = LogQuery(expr.matchers, filters, lo + 1, hi + 1, 0, False, rest, prefilters(rest, names),
                 field_filter(rest, names))
    index: dict[Labels, int] = {}
    frames: list[pl.DataFrame] = []
    failing: list[dict[str, str]] = []
    # a bounded batch of lines at a time: only the samples (series, time, value) are kept
    for rows in select_batches(snapshot, ids, q, stats, BATCH_ROWS):
        flowing = pipeline.begin(rows, snapshot.index.streams.labels)
        if rest:
            flowing = pipeline.run(rest, flowing)
        values: pa.Array | pa.ChunkedArray
        if rng.unwrap is not None:
            flowing, unwrapped = _unwrap(rng.unwrap, flowing)
            # the values ride along as a column: finishing drops entries that became identical
            flowing.table = flowing.table.append_column(_VALUE, unwrapped)
        table = pipeline.finish(flowing)
        failing += error_series(table)
        if failing or table.num_rows == 0:
            continue
        if rng.unwrap is not None:
            values = table.column(_VALUE).combine_chunks()
        else:
            sizes = pc.binary_length(table.column("line")).cast(pa.float64())
            values = sizes.combine_chunks() if isinstance(sizes, pa.ChunkedArray) else sizes
        keys = [labels_of(dict(m)) for m in table.column("labels").to_pylist()]
        gids = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
        frames.append(pl.DataFrame({"gid": gids, "ts": table.column("ts").to_numpy(),
                                    "v": np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)}))
    fail_on_errors(failing)
    if not frames:
        return empty, []
    # one order for first/last_over_time: by time, batches in scan order within a time
    frame = pl.concat(frames).sort("ts", maintain_order=True)
    return frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("seq")), list(index)


def _unwrap(unwrap: ast.Unwrap, rows: pipeline.Rows) -> tuple[pipeline.Rows, pa.Array]:
    """The unwrapped label as the value: rows without it are dropped, conversion failures get
    `__error__`; the label leaves the series labels; the filters after unwrap apply."""
    column = rows.labels.get(unwrap.label)
    if column is None:
        return rows.keep(np.zeros(rows.table.num_rows, dtype=bool)), pa.array([], pa.float64())
    texts = column.to_pylist()
    keep = np.array([t is not None and t != "" for t in texts], dtype=bool)
    rows = rows.keep(keep)
    texts = [t for t, k in zip(texts, keep, strict=True) if k]
    convert = _CONVERSIONS[unwrap.conversion]
    values = np.zeros(len(texts), dtype=np.float64)
    errors, details = rows.error.to_pylist(), rows.details.to_pylist()
    for i, text in enumerate(texts):
        try:
            values[i] = convert(text)
        except ValueError as exc:
            if errors[i] is None:
                errors[i], details[i] = SAMPLE_EXTRACTION_ERROR, str(exc)
    rows.error, rows.details = pa.array(errors, pa.string()), pa.array(details, pa.string())
    del rows.labels[unwrap.label]
    value_array = pa.array(values)
    for f in unwrap.post_filters:
        state = FilterState(rows.labels, rows.error, rows.details)
        mask = evaluate(f, state, np.ones(rows.table.num_rows, dtype=bool))
        rows.error, rows.details = state.error, state.details
        rows = rows.keep(mask)
        value_array = value_array.filter(pa.array(mask))
    return rows, value_array


def _seconds(text: str) -> float:
    return go_duration_ns(text) / 1e9


def _bytes(text: str) -> float:
    return float(parse_humanized_bytes(text))


_CONVERSIONS: dict[str, Callable[[str], float]] = {
    "": go_float, "duration": _seconds, "duration_seconds": _seconds, "bytes": _bytes,
}


def error_series(table: pa.Table) -> list[dict[str, str]]:
    """The label sets of the lines that failed a stage."""
    return [dict(m) for m in table.column("labels").to_pylist() if any(k == "__error__" for k, _ in m)]


def fail_on_errors(failing: list[dict[str, str]]) -> None:
    """Loki refuses a metric over lines that failed a stage, naming one such series (here the one
    whose label text sorts first)."""
    if not failing:
        return
    first = min(failing, key=_label_text)
    error = first["__error__"]
    raise BadRequest(
        f"pipeline error: '{error}' for series: '{{{_label_text(first)}}}'.\n"
        f'Use a label filter to intentionally skip this error. (e.g | __error__!="{error}").\n'
        'To skip all potential errors you can match empty errors.(e.g __error__="")\n'
        'The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__="" )')


def _label_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={go_quote(v)}" for k, v in sorted(labels.items()))


def _grouped(samples: pl.DataFrame, labels: list[Labels], grouping: ast.Grouping
             ) -> tuple[pl.DataFrame, list[Labels]]:
    wanted = set(grouping.labels)
    index: dict[Labels, int] = {}
    remap = np.empty(len(labels), dtype=np.int64)
    for gid, pairs in enumerate(labels):
        kept = tuple(p for p in pairs if (p[0] in wanted) != grouping.without)
        remap[gid] = index.setdefault(kept, len(index))
    samples = samples.with_columns(pl.Series("gid", remap).gather(samples.get_column("gid")))
    return samples, list(index)


# --- windows -------------------------------------------------------------------------------------

def _exploded(name: str, params: dict[str, object]) -> str:
    """Each sample of the registered table `name` once per step whose window holds it."""
    return (f"SELECT gid, {steps_sql(params)}, ts, v, seq FROM (SELECT *, {SPANS} FROM {name} WHERE {IN_WINDOWS}) "
            f"WHERE k0 <= k1")


def windows(node: ast.RangeAggregation, samples: pl.DataFrame, steps: np.ndarray, step_ns: int) -> pl.DataFrame:
    if samples.height == 0:
        return pl.DataFrame(schema=POINTS_SCHEMA)
    arrow = samples.to_arrow()
    params = window_params(node.range, steps, step_ns)
    cur = cursor()
    name = "samples_" + str(id(arrow))
    cur.register(name, arrow)
    try:
        exploded = _exploded(name, params)
        if node.op in _AGGREGATES:
            # with unwrap, rate is the per-second sum of the values (Loki's rateLogs)
            agg = "sum(v) / $seconds" if node.op == "rate" and node.range.unwrap else _AGGREGATES[node.op]
            if "$seconds" in agg:
                params["seconds"] = node.range.range_ns / 1e9
            sql = f"SELECT gid AS sid, step, {agg} AS v FROM ({exploded}) GROUP BY gid, step"
            table = cur.sql(sql, params=params).to_arrow_table()
        elif node.op == "quantile_over_time":
            table = _quantiles(cur, exploded, params, node.param)
        elif node.op == "rate_counter":
            table = _counter_rates(cur, exploded, params, node.range, steps)
        else:
            raise BadRequest(f"unknown range aggregation {node.op}")
    finally:
        cur.unregister(name)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.cast(POINTS_SCHEMA)  # type: ignore[arg-type]


def _quantiles(cur: object, exploded: str, params: dict[str, object], phi: float | None) -> pa.Table:
    """Prometheus' quantile: linear between the two nearest ranks; φ outside [0, 1] gives ∓Inf."""
    phi = 0.0 if phi is None else phi
    sql = f"SELECT gid AS sid, step, list(v ORDER BY v) AS vs FROM ({exploded}) GROUP BY gid, step"
    table = cur.sql(sql, params=params).to_arrow_table()  # type: ignore[attr-defined]
    values = [_quantile(phi, vs) for vs in table.column("vs").to_pylist()]
    return pa.table({"sid": table.column("sid"), "step": table.column("step"), "v": pa.array(values, pa.float64())})


def _quantile(phi: float, ordered: list[float]) -> float:
    if math.isnan(phi):
        return math.nan
    if phi < 0:
        return -math.inf
    if phi > 1:
        return math.inf
    n = len(ordered)
    rank = phi * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def _counter_rates(cur: object, exploded: str, params: dict[str, object], rng: ast.LogRange,
                   steps: np.ndarray) -> pa.Table:
    """`rate_counter`: Loki's extrapolated counter rate over each window."""
    sql = (f"SELECT gid AS sid, step, list(ts ORDER BY seq) AS ts, list(v ORDER BY seq) AS vs "
           f"FROM ({exploded}) GROUP BY gid, step")
    table = cur.sql(sql, params=params).to_arrow_table()  # type: ignore[attr-defined]
    out = [_counter_rate(stamps, values, int(steps[k]) - rng.offset_ns, rng.range_ns)
           for k, stamps, values in zip(table.column("step").to_pylist(), table.column("ts").to_pylist(),
                                        table.column("vs").to_pylist(), strict=True)]
    return pa.table({"sid": table.column("sid"), "step": table.column("step"), "v": pa.array(out, pa.float64())})


def _divide(a: float, b: float) -> float:
    """Go's float division: x/0 is ±Inf, 0/0 NaN."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def _counter_rate(stamps: list[int], values: list[float], end: int, range_ns: int) -> float:
    """Loki's extrapolatedRate(isCounter=true, isRate=true): a window with fewer than two samples
    gives 0; resets add the value before them; the ends extrapolate by up to half the average
    spacing (and not below the counter's zero)."""
    if len(values) < 2:
        return 0.0
    start = end - range_ns
    result = values[-1] - values[0]
    last = 0.0
    for v in values:
        if v < last:
            result += last
        last = v
    to_start = (stamps[0] - start) / 1e9
    to_end = (end - stamps[-1]) / 1e9
    sampled = (stamps[-1] - stamps[0]) / 1e9
    average = sampled / (len(values) - 1)
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    to_zero = to_start
    if result > 0 and values[0] >= 0:
        to_zero = sampled * (values[0] / result)
    to_start = min(to_start, to_zero)
    if to_end >= threshold:
        to_end = average / 2
    result = result * _divide(sampled + to_start + to_end, sampled)
    return result / (range_ns / 1e9)


def _absent(rng: ast.LogRange, samples: pl.DataFrame, steps: np.ndarray, step_ns: int) -> Matrix:
    """1 at every step whose window holds no line at all, labelled by the selector's `=` matchers."""
    held = np.zeros(len(steps), dtype=bool)
    if samples.height:
        arrow = samples.to_arrow()
        cur = cursor()
        name = "samples_" + str(id(arrow))
        cur.register(name, arrow)
        params = window_params(rng, steps, step_ns)
        try:
            found = cur.sql(f"SELECT DISTINCT step FROM ({_exploded(name, params)})", params=params).fetchnumpy()["step"]
        finally:
            cur.unregister(name)
        held[found.astype(np.int64)] = True
    missing = np.flatnonzero(~held)
    labels = labels_of({m.name: m.value for m in rng.selector.matchers if m.op == "="})
    points = pl.DataFrame({"sid": np.zeros(len(missing), dtype=np.int64), "step": missing.astype(np.int64),
                           "v": np.ones(len(missing))}, schema=POINTS_SCHEMA)
    return Matrix(steps, [labels], points)

