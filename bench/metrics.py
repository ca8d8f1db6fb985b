"""The benchmark's metric queries (LogQL range aggregations over the JSON set), each with its floor.

A `MetricQuery` names a LogQL metric query, how it is asked (a range query: first step, last step
bound, step; or an instant query at one time) and what its floor computes, from a few parts:

- `by`: what a series is. ("json", f): the line's top-level JSON field f (`sum by (f) (… | json …)`);
  ("label", l): the stream label l (`sum by (l)`, `… by (l)`); ("stream", m): the stream itself plus
  its structured metadata pair m, which is a series of `count_over_time({…}[w])` without a `by`
  (the server adds `detected_level` to every line as metadata; the benchmark pushes no other pairs).
- `op`: "count" (count_over_time), "rate" (count / range in seconds) or "quantile" (Prometheus'
  quantile, linear between the two nearest ranks: DuckDB's quantile_cont, Polars' linear quantile)
  of the JSON field `unwrap_json` read as a float (lines where it is missing or not a number are
  left out, as `| unwrap x | __error__=""` leaves them out).
- `contains`: line filters (`|= "text"`); `topk`: keep the k largest series at each step.

Windows are Loki's: the point at step t covers lines with t - range < ts <= t. Every query here has
range == step (or is an instant query), so each line falls in exactly one window, the one whose end
is the first step >= ts: t = start + ceil((ts - start) / step) * step. A floor is one DuckDB
statement or one Polars lazy scan over the chunk files, vectorised, that returns one row per
(series, step): the series' key columns (`g`, and `stream_id` for ("stream", m)), `t` (ns) and `v`.
`floor_series` and `answer_series` turn a floor's table and the server's JSON into the same shape,
and `compare` says how they differ (None when they agree).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import orjson
import polars as pl
import pyarrow as pa

from bench.generate import Dataset
from bench.queries import HOUR_NS, Labels, StoreFiles, Target

MINUTE_NS = 60 * 10**9
REL_TOL = 1e-9
SeriesKey = tuple[tuple[str, str], ...]          # sorted (name, value) pairs
Series = dict[SeriesKey, dict[int, float]]      # series -> {unix ms: value}


@dataclass(frozen=True)
class MetricQuery:
    name: str
    title: str
    logql: str
    start: int                                  # ns: the first step, or the instant query's time
    end: int                                    # ns: steps are start, start + step, … <= end
    step: int                                   # ns; 0 for an instant query
    range: int                                  # ns: the range aggregation's [w]
    streams: Callable[[Labels], bool]           # the floor's stream selection
    by: tuple[str, str]                         # ("json" | "label" | "stream", name): what a series is
    op: str = "count"                           # count | rate | quantile
    contains: tuple[str, ...] = ()              # line filters (all must hold)
    unwrap_json: str | None = None              # the quantile's value: this top-level JSON field
    phi: float = 0.5
    topk: int | None = None
    target: Target = Target()
    peers: str = ""                             # Loki / VictoriaLogs figures from ANCHORS.md

    def __post_init__(self) -> None:
        if self.step and self.step != self.range:
            raise ValueError(f"{self.name}: the floors handle range == step only (a line in one window)")
        if self.by[0] not in ("json", "label", "stream") or self.op not in ("count", "rate", "quantile"):
            raise ValueError(f"{self.name}: unknown by {self.by} or op {self.op}")
        if (self.op == "quantile") != (self.unwrap_json is not None):
            raise ValueError(f"{self.name}: a quantile needs unwrap_json, and only a quantile")

    @property
    def instant(self) -> bool:
        return self.step == 0

    @property
    def last(self) -> int:
        """The last step (ns)."""
        return self.start + (self.end - self.start) // self.step * self.step if self.step else self.start

    @property
    def steps(self) -> int:
        return (self.last - self.start) // self.step + 1 if self.step else 1

    @property
    def path(self) -> str:
        return "/loki/api/v1/query" if self.instant else "/loki/api/v1/query_range"

    def params(self) -> dict[str, object]:
        if self.instant:
            return {"query": self.logql, "time": self.start}
        return {"query": self.logql, "start": self.start, "end": self.end, "step": f"{self.step / 1e9:g}"}

    def describe(self) -> str:
        """How it is asked, for the report."""
        if self.instant:
            return f"instant at {_when(self.start)}, range {self.range // 10**9:,} s"
        return (f"{_when(self.start)} to {_when(self.end)}, step {self.step // 10**9} s ({self.steps:,} steps), "
                f"range {self.range // 10**9:,} s")


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{ns % 10**9:09d}Z" if ns % 10**9 else "Z")


def build_metric_queries(ds: Dataset) -> list[MetricQuery]:
    """The metric queries e–h of ANCHORS.md's Loki table (named me–mh), over the JSON set's 24 h."""
    start, end = ds.start_ns, ds.end_ns

    def every(lb: Labels) -> bool:
        return bool(lb.get("namespace"))

    return [
        MetricQuery("me", "lines per JSON level per minute, 24 h",
                    'sum by (level) (count_over_time({namespace=~".+"} | json [1m]))',
                    start, end, MINUTE_NS, MINUTE_NS, every, by=("json", "level"),
                    target=Target(ms=150), peers="Loki 11.0 s, VictoriaLogs 0.17–2.8 s"),
        MetricQuery("mf", "top 5 pods by rate of `error` lines, 24 h",
                    'topk(5, sum by (pod) (rate({namespace=~".+"} |= "error" [5m])))',
                    start, end, 5 * MINUTE_NS, 5 * MINUTE_NS, every, by=("label", "pod"), op="rate",
                    contains=("error",), topk=5, target=Target(ms=500), peers="Loki 5.36 s, VictoriaLogs 1.01 s"),
        MetricQuery("mg", "p99 of JSON `latency_ms` per namespace, 24 h",
                    'quantile_over_time(0.99, {namespace=~".+"} | json | unwrap latency_ms | __error__="" [5m]) '
                    'by (namespace)',
                    start, end, 5 * MINUTE_NS, 5 * MINUTE_NS, every, by=("label", "namespace"),
                    op="quantile", unwrap_json="latency_ms", phi=0.99, target=Target(ms=1000),
                    peers="Loki 9.61 s, VictoriaLogs 1.60–4.24 s"),
        MetricQuery("mh", "instant: lines per stream in the last 1 h",
                    'count_over_time({namespace=~".+"}[1h])', end, end, 0, HOUR_NS, every,
                    by=("stream", "detected_level"), target=Target(ms=10), peers="Loki 0.74 s, VictoriaLogs 3–4 ms"),
    ]


def _label_map(files: StoreFiles, ids: list[int] | None, name: str) -> tuple[list[int], list[str | None]]:
    """(stream ids, their label `name`) of the selected streams: the series of `sum by (name)`."""
    sids = sorted(files.streams) if ids is None else ids
    return sids, [files.streams[s].get(name) for s in sids]


# --- DuckDB -------------------------------------------------------------------------------------

def metric_floor_duckdb(con: duckdb.DuckDBPyConnection, files: StoreFiles, q: MetricQuery,
                        ids: list[int] | None) -> pa.Table:
    """The query as one DuckDB statement: (g[, stream_id], t, v) per series and step."""
    kind, name = q.by
    params: dict[str, object] = {"glob": files.chunks_glob}
    where = [f"ts > {q.start - q.range}", f"ts <= {q.last}"]
    if ids is not None:
        where.append(f"stream_id IN ({', '.join(map(str, ids))})")
    for i, text in enumerate(q.contains):
        where.append(f"contains(line, $c{i})")
        params[f"c{i}"] = text
    t = f"{q.start} + (ts - {q.start} + {q.step - 1}) // {q.step} * {q.step}" if q.step else str(q.start)
    if kind == "json":
        keys, group = "json_extract_string(line, $key) AS g", "g"
        params["key"] = f"$.{name}"
    elif kind == "stream":
        keys, group = "stream_id, metadata[$key] AS g", "stream_id, g"
        params["key"] = name
    else:
        keys, group = "stream_id", "g"
        params["sids"], params["vals"] = _label_map(files, ids, name)
    mapping = "SELECT unnest($sids) AS stream_id, unnest($vals) AS g"
    value = ""
    if q.unwrap_json is not None:
        value = ", TRY_CAST(json_extract_string(line, $value) AS DOUBLE) AS v"
        params["value"] = f"$.{q.unwrap_json}"
    rows = (f"SELECT {keys}, {t} AS t{value} FROM read_parquet($glob, hive_partitioning = false) "
            f"WHERE {' AND '.join(where)}")
    if q.op == "quantile":
        if kind == "label":
            rows = f"SELECT m.g, r.t, r.v FROM ({rows}) r JOIN ({mapping}) m USING (stream_id)"
        sql = f"SELECT {group}, t, quantile_cont(v, {q.phi!r}) AS v FROM ({rows}) WHERE v IS NOT NULL GROUP BY ALL"
    else:
        counts = f"SELECT * EXCLUDE (t), t, count(*) AS n FROM ({rows}) GROUP BY ALL"
        if kind == "label":  # count per stream first, then add the streams of each label value up
            counts = f"SELECT m.g, c.t, sum(c.n) AS n FROM ({counts}) c JOIN ({mapping}) m USING (stream_id) GROUP BY ALL"
        per = f" / {q.range / 1e9!r}" if q.op == "rate" else ""
        sql = f"SELECT {group}, t, n::DOUBLE{per} AS v FROM ({counts})"
    if q.topk is not None:
        sql = f"SELECT * FROM ({sql}) QUALIFY row_number() OVER (PARTITION BY t ORDER BY v DESC) <= {q.topk}"
    return con.sql(sql, params=params).to_arrow_table()


# --- Polars -------------------------------------------------------------------------------------

def metric_floor_polars(files: StoreFiles, q: MetricQuery, ids: list[int] | None) -> pa.Table:
    """The query as one Polars lazy scan: (g[, stream_id], t, v) per series and step."""
    kind, name = q.by
    line, ts = pl.col("line"), pl.col("ts")
    cond = (ts > q.start - q.range) & (ts <= q.last)
    if ids is not None:
        cond &= pl.col("stream_id").is_in(ids)
    for text in q.contains:
        cond &= line.str.contains(text, literal=True)
    t = (q.start + (ts - q.start + q.step - 1) // q.step * q.step) if q.step else pl.lit(q.start, pl.Int64)
    if kind == "json":
        keys, group = [line.str.json_path_match(f"$.{name}").alias("g")], ["g"]
    elif kind == "stream":
        keys, group = [pl.col("stream_id"), pl.col("metadata").map.get(name).alias("g")], ["stream_id", "g"]
    else:
        keys, group = [pl.col("stream_id")], ["g"]
    sids, vals = _label_map(files, ids, name) if kind == "label" else ([], [])
    mapping = pl.LazyFrame({"stream_id": sids, "g": vals}, schema={"stream_id": pl.Int64, "g": pl.String})
    scan = pl.scan_parquet(files.chunks_glob, hive_partitioning=False, extra_columns="ignore").filter(cond)
    if q.unwrap_json is not None:
        value = line.str.json_path_match(f"$.{q.unwrap_json}").cast(pl.Float64, strict=False).alias("v")
        rows = scan.select(*keys, t.alias("t"), value).filter(pl.col("v").is_not_null())
        if kind == "label":
            rows = rows.join(mapping, on="stream_id")
        out = rows.group_by(*group, "t").agg(pl.col("v").quantile(q.phi, interpolation="linear"))
    else:
        counts = scan.group_by(*keys, t.alias("t")).agg(pl.len().alias("n"))
        if kind == "label":  # count per stream first, then add the streams of each label value up
            counts = counts.join(mapping, on="stream_id").group_by("g", "t").agg(pl.col("n").sum())
        v = pl.col("n").cast(pl.Float64)
        out = counts.select(*group, "t", (v / (q.range / 1e9) if q.op == "rate" else v).alias("v"))
    if q.topk is not None:
        out = out.filter(pl.col("v").rank("ordinal", descending=True).over("t") <= q.topk)
    return out.collect().to_arrow()


# --- answers, compared --------------------------------------------------------------------------

def floor_series(table: pa.Table, q: MetricQuery, files: StoreFiles) -> Series:
    """A floor's rows as series: the labels the server gives them, each with its points."""
    kind, name = q.by
    out: Series = {}
    n = table.num_rows
    sids = table.column("stream_id").to_pylist() if kind == "stream" else [None] * n
    for sid, g, t, v in zip(sids, table.column("g").to_pylist(), table.column("t").to_pylist(),
                            table.column("v").to_pylist(), strict=True):
        labels = dict(files.streams[sid]) if sid is not None else {}
        if g:  # an empty label is no label
            labels[f"{name}_extracted" if name in labels else name] = g
        out.setdefault(tuple(sorted(labels.items())), {})[t // 10**6] = float(v)
    return out


def answer_series(body: bytes, q: MetricQuery) -> tuple[Series, list[str]]:
    """The server's matrix (range) or vector (instant) as series; and what is malformed in it."""
    data = orjson.loads(body)["data"]
    want = "vector" if q.instant else "matrix"
    if data.get("resultType") != want:
        raise RuntimeError(f"expected {want}, got {data.get('resultType')}")
    out: Series = {}
    problems: list[str] = []
    for s in data["result"]:
        key = tuple(sorted(s["metric"].items()))
        points = [s["value"]] if q.instant else s["values"]
        if key in out and not q.instant:
            problems.append(f"series {_text(key)} twice")
        series = out.setdefault(key, {})
        for t, v in points:
            ms = round(float(t) * 1000)
            if ms in series:
                problems.append(f"series {_text(key)} has two points at {t}")
            series[ms] = float(v)
    return out, problems


def _text(key: SeriesKey) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in key) + "}"


def _close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=REL_TOL) or (math.isnan(a) and math.isnan(b))


def _points(series: Series) -> int:
    return sum(len(p) for p in series.values())


def compare(ours: Series, floor: Series, topk: bool = False) -> str | None:
    """None when the answers agree (same series, same points, values within REL_TOL relative); else
    what differs, counted, with the first few examples. With `topk`, the values of each step are
    compared as a multiset (ties may pick different series)."""
    diffs: list[str] = []
    count = 0
    if topk:
        per_step: dict[int, tuple[list[float], list[float]]] = {}
        for side, series in ((0, ours), (1, floor)):
            for points in series.values():
                for t, v in points.items():
                    per_step.setdefault(t, ([], []))[side].append(v)
        for t in sorted(per_step):
            a, b = (sorted(vs, reverse=True) for vs in per_step[t])
            if len(a) != len(b) or not all(_close(x, y) for x, y in zip(a, b, strict=True)):
                count += 1
                diffs.append(f"at {t / 1000:g}: ours {a}, floor {b}")
        return None if not count else f"{count} of {len(per_step)} steps differ; " + "; ".join(diffs[:3])
    only_ours, only_floor = sorted(set(ours) - set(floor)), sorted(set(floor) - set(ours))
    if only_ours:
        diffs.append(f"{len(only_ours)} series only in ours ({_points({k: ours[k] for k in only_ours}):,} points), "
                     f"e.g. {_text(only_ours[0])}")
    if only_floor:
        diffs.append(f"{len(only_floor)} series only in the floor "
                     f"({_points({k: floor[k] for k in only_floor}):,} points), e.g. {_text(only_floor[0])}")
    examples: list[str] = []
    for key in sorted(set(ours) & set(floor)):
        mine, theirs = ours[key], floor[key]
        for ms in sorted(set(mine) | set(theirs)):
            x, y = mine.get(ms), theirs.get(ms)
            if x is None or y is None or not _close(x, y):
                count += 1
                if len(examples) < 3:
                    examples.append(f"{_text(key)} at {ms / 1000:g}: ours {x}, floor {y}")
    if count:
        diffs.append(f"{count:,} points of shared series differ, e.g. " + "; ".join(examples))
    return "; ".join(diffs) or None
