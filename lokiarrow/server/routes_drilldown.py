"""What Grafana's Logs Drilldown calls: detected labels, fields and field values, patterns, limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lokiarrow.config import Limits
from lokiarrow.errors import BadRequest
from lokiarrow.exec import drilldown, patterns
from lokiarrow.exec.writers import Want
from lokiarrow.logql.ast import LogExpr
from lokiarrow.logql.parser import parse_expr, parse_matchers
from lokiarrow.model import Matcher
from lokiarrow.server.deps import ParamsDep, Services, ServicesDep, TenantDep
from lokiarrow.server.params import parse_bounds, parse_count, parse_step
from lokiarrow.server.routes_admin import LOKI_VERSION
from lokiarrow.server.routes_query import success
from lokiarrow.wire.otlp import DEFAULT_INDEX_ATTRIBUTES

router = APIRouter()

DEFAULT_LINE_LIMIT = 100     # Loki's `line_limit` default (its query limit)
DEFAULT_FIELD_LIMIT = 1000   # Loki's `limit` default for detected fields and values
LOG_LEVEL_FIELDS = ("level", "LEVEL", "Level", "log.level", "severity", "SEVERITY", "Severity", "SeverityText",
                    "lvl", "LVL", "Lvl", "severity_text", "Severity_Text", "SEVERITY_TEXT")


def _json(doc: Any) -> Response:
    return Response(orjson.dumps(doc) + b"\n", media_type="application/json")


def _selector(query: str | None) -> tuple[Matcher, ...] | None:
    return parse_matchers(query) if query else None


def _log_query(params: Mapping[str, str]) -> LogExpr:
    expr = parse_expr(params.get("query") or "")
    if not isinstance(expr, LogExpr):
        raise BadRequest("only log selector is supported")
    return expr


def _sample_params(svc: Services, tenant: str, p: Mapping[str, str]) -> tuple[LogExpr, int, int, int, int]:
    """The query, bounds, line limit and field limit of a detected-fields request."""
    start, end = parse_bounds(p)
    line_limit = parse_count(p, "line_limit", DEFAULT_LINE_LIMIT)
    limit = parse_count({"limit": p.get("limit") or p.get("field_limit") or ""}, "limit", DEFAULT_FIELD_LIMIT)
    parse_step(p, start, end)
    expr = _log_query(p)
    max_limit = svc.limits(tenant).max_entries_limit_per_query
    if max_limit and line_limit > max_limit:
        raise BadRequest(f"max entries limit per query exceeded, limit > max_entries_limit "
                         f"({line_limit} > {max_limit})")
    return expr, start, end, line_limit, limit


@router.api_route("/loki/api/v1/detected_labels", methods=["GET", "POST"])
async def detected_labels(svc: ServicesDep, tenant: TenantDep, p: ParamsDep) -> Response:
    start, end = parse_bounds(p)
    matchers = _selector(p.get("query"))
    snapshot = svc.querier.snapshot(tenant, Want(start, end + 1))
    labels = await run_in_threadpool(drilldown.detected_labels, snapshot, start, end, matchers)
    return _json({"detectedLabels": labels} if labels else {})


@router.api_route("/loki/api/v1/detected_fields", methods=["GET", "POST"])
async def detected_fields(svc: ServicesDep, tenant: TenantDep, p: ParamsDep) -> Response:
    expr, start, end, line_limit, limit = _sample_params(svc, tenant, p)
    snapshot = svc.querier.snapshot(tenant, Want(start, end + 1))
    return _json(await run_in_threadpool(drilldown.detected_fields, snapshot, expr, start, end, line_limit, limit))


@router.api_route("/loki/api/v1/detected_field/{name}/values", methods=["GET", "POST"])
async def detected_field_values(name: str, svc: ServicesDep, tenant: TenantDep, p: ParamsDep) -> Response:
    expr, start, end, line_limit, limit = _sample_params(svc, tenant, p)
    snapshot = svc.querier.snapshot(tenant, Want(start, end + 1))
    return _json(await run_in_threadpool(drilldown.detected_field_values, snapshot, expr, name, start, end,
                                         line_limit, limit))


@router.api_route("/loki/api/v1/patterns", methods=["GET", "POST"])
async def query_patterns(svc: ServicesDep, tenant: TenantDep, p: ParamsDep) -> Response:
    start, end = parse_bounds(p)
    step = parse_step(p, start, end)
    matchers = parse_matchers(p.get("query") or "")
    snapshot = svc.querier.snapshot(tenant, Want(start, end + 1))
    return success(await run_in_threadpool(patterns.patterns, snapshot, matchers, start, end, step))


def go_duration(ns: int) -> str:
    """A duration as Prometheus' model.Duration prints it (`0s`, `1m`, `4w2d1h`, `30d`)."""
    ms = ns // 10**6
    if ms == 0:
        return "0s"
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    out = ""
    for unit, size, exact in (("y", 365 * 86_400_000, True), ("w", 7 * 86_400_000, True), ("d", 86_400_000, False),
                              ("h", 3_600_000, False), ("m", 60_000, False), ("s", 1000, False), ("ms", 1, False)):
        if exact and ms % size:
            continue
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms -= ms // size * size
    return sign + out


def drilldown_limits(limits: Limits) -> dict[str, Any]:
    """The limits Loki publishes to Logs Drilldown (its default allowlist), as Loki encodes them."""
    return {
        "discover_log_levels": limits.discover_log_levels,
        "discover_service_name": list(limits.discover_service_name),
        "log_level_fields": list(LOG_LEVEL_FIELDS),
        "max_entries_limit_per_query": limits.max_entries_limit_per_query,
        "max_line_size_truncate": limits.max_line_size_truncate,
        "max_query_bytes_read": "0B",
        "max_query_length": go_duration(limits.max_query_length),
        "max_query_lookback": "0s",
        "max_query_range": "0s",
        "max_query_series": limits.max_query_series,
        "metric_aggregation_enabled": False,
        "otlp_config": {"resource_attributes": {"attributes_config": [
            {"action": "index_label", "attributes": list(DEFAULT_INDEX_ATTRIBUTES)}]}},
        "pattern_persistence_enabled": False,
        "query_timeout": "1m",
        "retention_period": go_duration(limits.retention_period),
        "volume_enabled": True,
        "volume_max_series": 1000,
    }


@router.get("/loki/api/v1/drilldown-limits")
async def limits(svc: ServicesDep, tenant: TenantDep) -> Response:
    doc = {"limits": drilldown_limits(svc.limits(tenant)), "pattern_ingester_enabled": True,
           "version": LOKI_VERSION}
    return Response(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n", media_type="application/json")

