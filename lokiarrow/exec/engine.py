"""The querier: LogQL text and a time range in, Loki's `data` object out.

This is the one function per endpoint the HTTP layer, the CLI and the Python API share. It knows
nothing of HTTP: parameters arrive parsed (ns timestamps), answers leave as plain dicts. Run under
an `exec.duck.Deadline`, a query stops between its phases (and at its next DuckDB query) once the
deadline has expired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lokiarrow.compile.fields import field_filter
from lokiarrow.compile.prefilter import prefilters
from lokiarrow.config import Limits
from lokiarrow.errors import BadRequest
from lokiarrow.exec import multitenant, pipeline
from lokiarrow.exec.duck import check_deadline
from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.exec.metrics import answers
from lokiarrow.exec.metrics.evaluate import Context, evaluate
from lokiarrow.exec.metrics.series import Matrix, Scalar
from lokiarrow.exec.results import stats_block, streams_result
from lokiarrow.exec.sources import streams_in_range
from lokiarrow.exec.writers import Want, Writers
from lokiarrow.logql.ast import Expr, LogExpr, VectorAggregation, log_ranges
from lokiarrow.logql.parser import parse_expr, parse_matchers
from lokiarrow.model import Matcher
from lokiarrow.overrides import TenantLimits
from lokiarrow.store.store import Store
from lokiarrow.store.tenant import Snapshot


@dataclass(frozen=True)
class RangeRequest:
    query: str
    start: int
    end: int
    limit: int = 100
    backward: bool = True
    step_ns: int = 10**9


def _sort_order(expr: Expr) -> str | None:
    """`sort(…)` / `sort_desc(…)` at the top order an instant answer by value."""
    if isinstance(expr, VectorAggregation) and expr.op in ("sort", "sort_desc"):
        return "desc" if expr.op == "sort_desc" else "asc"
    return None


def metric_want(expr: Expr, steps: np.ndarray) -> Want:
    """What the steps of a metric query read: each range's window before each step."""
    ranges = log_ranges(expr)
    reach = max((r.range_ns + r.offset_ns for r in ranges), default=0)
    return Want(int(steps[0]) - reach - 1, int(steps[-1]) + 1, [r.selector.matchers for r in ranges])


class Querier:
    def __init__(self, store: Store, limits: Limits | TenantLimits, writers: Writers | None = None) -> None:
        self.store = store
        self.limits = limits if isinstance(limits, TenantLimits) else TenantLimits(limits)
        self.writers = writers

    def snapshot(self, tenant: str, want: Want) -> Snapshot:
        """The tenant's data for a query: the store's snapshot, and on a reader what the writers
        hold of `want` (exec/writers.py)."""
        local = self.store.snapshot(tenant)
        return local if self.writers is None else self.writers.snapshot(local, tenant, want)

    def query_range(self, tenant: str, req: RangeRequest) -> dict[str, Any]:
        began = time.perf_counter()
        expr = parse_expr(req.query)
        if not isinstance(expr, LogExpr):
            return self._metric_range(tenant, expr, req, began)
        if multitenant.is_multi(tenant):
            return multitenant.log_query(lambda one, text: self.query_range(one, replace(req, query=text)),
                                         tenant, expr, req.limit, req.backward)
        max_limit = self.limits(tenant).max_entries_limit_per_query
        if max_limit and req.limit > max_limit:
            raise BadRequest(f"max entries limit per query exceeded, limit > max_entries_limit "
                             f"({req.limit} > {max_limit})")
        filters, rest = pipeline.split(expr.stages)
        snapshot = self.snapshot(tenant, Want(req.start, req.end + 1, [expr.matchers]))
        ids = snapshot.index.streams.match(expr.matchers)
        stats = ScanStats()
        stream_names = {name for sid in ids for name in snapshot.index.streams.labels[sid]}
        q = LogQuery(expr.matchers, filters, req.start, req.end, req.limit, req.backward, rest,
                     prefilters(rest, stream_names), field_filter(rest, stream_names))
        rows = select_logs(snapshot, ids, q, stats) if ids else None
        check_deadline()
        result = streams_result(rows, snapshot.index.streams.labels) if rows is not None else []
        return {"resultType": "streams", "result": result,
                "stats": stats_block(stats, time.perf_counter() - began)}

    def query_instant(self, tenant: str, query: str, at: int) -> dict[str, Any]:
        began = time.perf_counter()
        expr = parse_expr(query)
        if isinstance(expr, LogExpr):
            raise BadRequest("log queries are not supported as an instant query type, "
                             "please change your query to a range query type")
        stats = ScanStats()
        steps = np.array([at], dtype=np.int64)
        value = evaluate(expr, self._context(tenant, steps, 0, stats, metric_want(expr, steps)))
        check_deadline()
        if isinstance(value, Scalar):
            return {"resultType": "scalar", "result": answers.scalar(value, at),
                    "stats": stats_block(stats, time.perf_counter() - began)}
        self._check_series(tenant, value)
        return {"resultType": "vector", "result": answers.vector(value, _sort_order(expr)),
                "stats": stats_block(stats, time.perf_counter() - began)}

    def _metric_range(self, tenant: str, expr: Expr, req: RangeRequest, began: float) -> dict[str, Any]:
        stats = ScanStats()
        steps = np.arange(req.start, req.end + 1, req.step_ns, dtype=np.int64)
        value = evaluate(expr, self._context(tenant, steps, req.step_ns, stats, metric_want(expr, steps)))
        check_deadline()
        if isinstance(value, Matrix):
            self._check_series(tenant, value)
        return {"resultType": "matrix", "result": answers.matrix(value, steps),
                "stats": stats_block(stats, time.perf_counter() - began)}

    def _context(self, tenant: str, steps: np.ndarray, step_ns: int, stats: ScanStats, want: Want) -> Context:
        if multitenant.is_multi(tenant):
            return Context(None, steps, step_ns, stats,
                           tuple((one, self.snapshot(one, want)) for one in multitenant.tenant_ids(tenant)))
        return Context(self.snapshot(tenant, want), steps, step_ns, stats)

    def _check_series(self, tenant: str, value: Matrix) -> None:
        limit = self.limits(tenant).max_query_series
        if limit and value.series_count() > limit:
            raise BadRequest(f"maximum number of series ({limit}) reached for a single query; "
                             "consider reducing query cardinality by adding more filters")

    def _selector(self, query: str | None) -> tuple[Matcher, ...] | None:
        if not query:
            return None
        expr = parse_expr(query)
        if not isinstance(expr, LogExpr):
            raise BadRequest("only stream selectors are allowed here")
        return expr.matchers

    def labels(self, tenant: str, start: int, end: int, query: str | None = None) -> list[str]:
        if multitenant.is_multi(tenant):
            return multitenant.label_names(lambda one, q: self.labels(one, start, end, q), tenant, query)
        selector = self._selector(query)
        snapshot = self.snapshot(tenant, Want(start, end + 1, None if selector is None else [selector], rows=False))
        labels = snapshot.index.streams.labels
        names = {n for sid in streams_in_range(snapshot, start, end, selector) for n in labels[sid]}
        return sorted(names)

    def label_values(self, tenant: str, name: str, start: int, end: int, query: str | None = None) -> list[str]:
        if multitenant.is_multi(tenant):
            return multitenant.label_values(lambda one, q: self.label_values(one, name, start, end, q),
                                            tenant, name, query)
        selector = self._selector(query)
        snapshot = self.snapshot(tenant, Want(start, end + 1, None if selector is None else [selector], rows=False))
        labels = snapshot.index.streams.labels
        ids = streams_in_range(snapshot, start, end, selector)
        return sorted({labels[sid][name] for sid in ids if name in labels[sid]})

    def series(self, tenant: str, selectors: list[str], start: int, end: int) -> list[dict[str, str]]:
        if multitenant.is_multi(tenant):
            return multitenant.series(lambda one, groups: self.series(one, groups, start, end), tenant, selectors)
        groups = []
        for text in selectors:
            matchers = parse_matchers(text, validate=False)  # Loki allows {a=~".*"} here
            if not matchers:
                raise BadRequest("0 matchers in group: {}")
            groups.append(matchers)
        snapshot = self.snapshot(tenant, Want(start, end + 1, groups or None, rows=False))
        labels = snapshot.index.streams.labels
        ids: set[int] = set()
        if not groups:
            ids = streams_in_range(snapshot, start, end, None)
        for matchers in groups:
            ids |= streams_in_range(snapshot, start, end, matchers)
        limit = self.limits(tenant).max_query_series
        result = [dict(labels[sid]) for sid in sorted(ids, key=lambda s: snapshot.index.streams.text[s])]
        if limit and len(result) > limit:
            raise BadRequest(f"the query hit the max number of series limit (limit: {limit} series)")
        return result
