"""Queries over several tenants at once (`X-Scope-OrgID: a|b`), as Loki's multi-tenant querier
answers them when `querier.multi_tenant_queries_enabled` is on.

1. The tenants are the `|`-separated ids, sorted and without repeats (dskit's `TenantIDs`).
2. Every stream carries a `__tenant_id__` label naming its tenant. A selector may match on it:
   those matchers choose the tenants to read and are taken out of the selector each tenant runs.
3. Log queries run per tenant and merge: the entries of all tenants in the query's direction,
   cut at its limit. Metric queries read each tenant's samples with the label (evaluate.py), so
   that `sum(…)` adds tenants up and `sum by (__tenant_id__)` keeps them apart. A range
   aggregation grouped without the label merges equal series of several tenants where the
   operation allows it (max and min over time), and is refused where it does not.
4. Labels, label values and series: the union over tenants, with `__tenant_id__`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import polars as pl

from lokiarrow.errors import BadRequest
from lokiarrow.exec.logs import ScanStats
from lokiarrow.exec.metrics.series import POINTS_SCHEMA, Labels, Matrix
from lokiarrow.exec.results import stats_block
from lokiarrow.logql import ast
from lokiarrow.logql.printer import format_expr
from lokiarrow.model import Matcher

TENANT_LABEL = "__tenant_id__"
_MERGEABLE = {"max_over_time": "max", "min_over_time": "min"}   # of the groupable ones


def tenant_ids(org: str) -> list[str]:
    """The tenants of an `X-Scope-OrgID` value: sorted, each once."""
    return sorted(set(org.split("|")))


def is_multi(org: str) -> bool:
    return "|" in org


def split_matchers(matchers: Iterable[Matcher], tenants: list[str]) -> tuple[list[str], tuple[Matcher, ...]]:
    """The tenants a selector's `__tenant_id__` matchers choose, and its other matchers."""
    chosen = [t for t in tenants if all(m.matches(t) for m in matchers if m.name == TENANT_LABEL)]
    rest = tuple(m for m in matchers if m.name != TENANT_LABEL)
    if not rest:
        raise BadRequest(f"a selector needs a matcher besides {TENANT_LABEL}")
    return chosen, rest


def labelled(labels: Labels, tenant: str) -> Labels:
    return tuple(sorted((*(p for p in labels if p[0] != TENANT_LABEL), (TENANT_LABEL, tenant))))


# --- metrics ------------------------------------------------------------------------------------------

Leaf = Callable[[ast.RangeAggregation, Any], Matrix]   # a range aggregation over one tenant's snapshot


def range_over_tenants(expr: ast.RangeAggregation, tenants: tuple[tuple[str, Any], ...], leaf: Leaf,
                       steps: Any) -> Matrix:
    """A range aggregation over several tenants' snapshots (step 3)."""
    selector = expr.range.selector
    chosen, rest = split_matchers(selector.matchers, [t for t, _ in tenants])
    grouping = expr.grouping
    keep_label = True
    if grouping is not None:
        named = TENANT_LABEL in grouping.labels
        keep_label = named if not grouping.without else not named
        grouping = replace(grouping, labels=tuple(n for n in grouping.labels if n != TENANT_LABEL))
    local = replace(expr, range=replace(expr.range, selector=replace(selector, matchers=rest)), grouping=grouping)
    snapshots = dict(tenants)
    parts = [(t, leaf(local, snapshots[t])) for t in chosen]
    if keep_label:
        return concat([(m, [labelled(ls, t) for ls in m.labels]) for t, m in parts], steps)
    how = _MERGEABLE.get(expr.op)
    if how is None and len(parts) > 1:
        raise BadRequest(f"{expr.op} grouped without {TENANT_LABEL} cannot combine several tenants: "
                         f"add {TENANT_LABEL} to its grouping")
    return merged(concat([(m, m.labels) for _, m in parts], steps), how or "max")


def concat(parts: list[tuple[Matrix, list[Labels]]], steps: Any) -> Matrix:
    """The series of several matrices (their labels given) as one matrix."""
    labels: list[Labels] = []
    frames = []
    for matrix, names in parts:
        if matrix.points.height:
            frames.append(matrix.points.with_columns(pl.col("sid") + len(labels)))
        labels += names
    points = pl.concat(frames) if frames else pl.DataFrame(schema=POINTS_SCHEMA)
    return Matrix(steps, labels, points)


def merged(matrix: Matrix, how: str) -> Matrix:
    """Series with equal labels made one: their points at a step summed, or the max or min."""
    ids: dict[Labels, int] = {}
    remap = [ids.setdefault(ls, len(ids)) for ls in matrix.labels]
    if len(ids) == len(remap):
        return matrix
    agg = {"sum": pl.col("v").sum(), "max": pl.col("v").max(), "min": pl.col("v").min()}[how]
    points = (matrix.points.with_columns(pl.col("sid").replace_strict(list(range(len(remap))), remap))
              .group_by(["sid", "step"]).agg(agg).sort(["sid", "step"]).select(POINTS_SCHEMA.keys()))
    return Matrix(matrix.steps, list(ids), points.cast(POINTS_SCHEMA))  # type: ignore[arg-type]


# --- logs -----------------------------------------------------------------------------------------------

class TenantStreams(list[dict[str, Any]]):
    """The merged `streams` of several tenants, which gives their `categorize-labels` form too."""

    def __init__(self, parts: list[tuple[str, list[dict[str, Any]]]], limit: int, backward: bool) -> None:
        super().__init__(merge_streams([(t, list(s)) for t, s in parts], limit, backward))
        self._parts, self._limit, self._backward = parts, limit, backward

    def categorized(self, formatted: Any = ()) -> list[dict[str, Any]]:
        return merge_streams([(t, s.categorized(formatted) if hasattr(s, "categorized") else list(s))
                              for t, s in self._parts], self._limit, self._backward)


def merge_streams(parts: list[tuple[str, list[dict[str, Any]]]], limit: int, backward: bool) -> list[dict[str, Any]]:
    """Each tenant's streams with `__tenant_id__`, the entries of all cut at `limit` in the
    query's direction (ties by tenant order), grouped back into streams."""
    entries = []
    for rank, (tenant, streams) in enumerate(parts):
        for stream in streams:
            labels = {**stream["stream"], TENANT_LABEL: tenant}
            key = tuple(sorted(labels.items()))
            entries += [(int(value[0]), rank, key, labels, value) for value in stream["values"]]
    entries.sort(key=lambda e: (-e[0] if backward else e[0], e[1]))
    out: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for _, _, key, labels, value in entries[:limit]:
        out.setdefault(key, {"stream": labels, "values": []})["values"].append(value)
    return list(out.values())


def merge_stats(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Loki's `stats` of several queries: counts added, flags or'ed; rates from the totals."""
    def add(a: Any, b: Any) -> Any:
        if isinstance(a, dict):
            return {k: add(a[k], b.get(k, 0)) if k in b else a[k] for k in a}
        if isinstance(a, bool):
            return a or bool(b)
        return a + b if isinstance(a, int | float) and isinstance(b, int | float) else a

    total = blocks[0]
    for block in blocks[1:]:
        total = add(total, block)
    summary = total.get("summary")
    if summary and summary.get("execTime"):
        seconds = summary["execTime"]
        summary["bytesProcessedPerSecond"] = int(summary["totalBytesProcessed"] / seconds)
        summary["linesProcessedPerSecond"] = int(summary["totalLinesProcessed"] / seconds)
    return total


# --- the querier's calls over several tenants --------------------------------------------------------

def log_query(run: Callable[[str, str], dict[str, Any]], org: str, expr: ast.LogExpr, limit: int,
              backward: bool) -> dict[str, Any]:
    """A log query over the tenants (step 3): `run(tenant, query text)` answers one tenant."""
    chosen, rest = split_matchers(expr.matchers, tenant_ids(org))
    text = format_expr(replace(expr, matchers=rest))
    parts = [(t, run(t, text)) for t in chosen]
    stats = merge_stats([a["stats"] for _, a in parts]) if parts else stats_block(ScanStats(), 0.0)
    return {"resultType": "streams", "result": TenantStreams([(t, a["result"]) for t, a in parts], limit, backward),
            "stats": stats}


def per_tenant(org: str, query: str | None) -> list[tuple[str, str | None]]:
    """The tenants an optional selector chooses, each with the selector it runs (its other matchers)."""
    if not query:
        return [(t, None) for t in tenant_ids(org)]
    from lokiarrow.logql.parser import parse_log_selector
    expr = parse_log_selector(query)
    chosen, rest = split_matchers(expr.matchers, tenant_ids(org))
    text = format_expr(replace(expr, matchers=rest))
    return [(t, text) for t in chosen]


def label_names(names_of: Callable[[str, str | None], list[str]], org: str, query: str | None) -> list[str]:
    """Label names of the tenants (`names_of(tenant, selector)`), with `__tenant_id__`."""
    found = {n for t, q in per_tenant(org, query) for n in names_of(t, q)}
    return sorted(found | {TENANT_LABEL})


def label_values(values_of: Callable[[str, str | None], list[str]], org: str, name: str,
                 query: str | None) -> list[str]:
    """Values of a label over the tenants; of `__tenant_id__`, the tenants themselves."""
    chosen = per_tenant(org, query)
    if name == TENANT_LABEL:
        return [t for t, _ in chosen]
    return sorted({v for t, q in chosen for v in values_of(t, q)})


def series(series_of: Callable[[str, list[str]], list[dict[str, str]]], org: str,
           selectors: list[str]) -> list[dict[str, str]]:
    """Per tenant, the series its part of each selector matches, with `__tenant_id__`."""
    from lokiarrow.logql.parser import parse_matchers
    parsed = [parse_matchers(text, validate=False) for text in selectors]
    out: list[dict[str, str]] = []
    for tenant in tenant_ids(org):
        mine = []
        for matchers in parsed:
            if all(m.matches(tenant) for m in matchers if m.name == TENANT_LABEL):
                rest = [m for m in matchers if m.name != TENANT_LABEL]
                mine.append("{" + ", ".join(str(m) for m in rest) + "}")
        if selectors and not mine:
            continue
        out += [{**labels, TENANT_LABEL: tenant} for labels in series_of(tenant, mine)]
    return sorted(out, key=lambda s: sorted(s.items()))
