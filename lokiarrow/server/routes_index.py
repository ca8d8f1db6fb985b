"""Loki's index endpoints: `index/stats`, `index/volume`, `index/volume_range`, answered from the index.

Parameters are checked as Loki's loghttp does (stats takes a range query's parameters; volume an
instant or range query's, plus `limit`, `targetLabels` and `aggregateBy`). Stats answers the bare
IndexStatsResponse object; volumes answer Prometheus-shaped vectors and matrices.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from lokiarrow.errors import BadRequest
from lokiarrow.exec import index_queries
from lokiarrow.exec.index_queries import VolumeRequest
from lokiarrow.exec.writers import Want
from lokiarrow.server.deps import ParamsDep, ServicesDep, TenantDep
from lokiarrow.server.params import (
    parse_backward,
    parse_bounds,
    parse_count,
    parse_limit,
    parse_step,
    parse_time,
)
from lokiarrow.server.routes_query import check_query_length, run_query, success

router = APIRouter()

DEFAULT_VOLUME_LIMIT = 100


@router.api_route("/loki/api/v1/index/stats", methods=["GET", "POST"])
async def index_stats(request: Request, svc: ServicesDep, tenant: TenantDep, p: ParamsDep) -> Response:
    start, end = parse_bounds(p)
    check_query_length(svc, tenant, start, end)
    parse_limit(p)
    parse_backward(p)
    parse_step(p, start, end)
    query = p.get("query", "")

    def run() -> dict[str, int]:
        return index_queries.index_stats(svc.querier.snapshot(tenant, Want(start, end + 1)), query, start, end)

    stats = await run_query(request, svc, tenant, run)
    return Response(orjson.dumps(stats) + b"\n", media_type="application/json")


@router.api_route("/loki/api/v1/index/volume", methods=["GET", "POST"])
async def volume(request: Request, svc: ServicesDep, tenant: TenantDep, p: ParamsDep) -> Response:
    limit = parse_count(p, "limit", DEFAULT_VOLUME_LIMIT, zero_is_default=True)  # Loki: 0 is 100
    parse_time(p.get("time"), 0)
    parse_backward(p)
    start, end = parse_bounds(p)
    return await _volume(request, svc, tenant, VolumeRequest(p.get("query", ""), start, end, limit, 0,
                                                    _target_labels(p), _aggregate_by(p)))


@router.api_route("/loki/api/v1/index/volume_range", methods=["GET", "POST"])
async def volume_range(request: Request, svc: ServicesDep, tenant: TenantDep, p: ParamsDep) -> Response:
    limit = parse_count(p, "limit", DEFAULT_VOLUME_LIMIT, zero_is_default=True)  # Loki: 0 is 100
    start, end = parse_bounds(p)
    parse_backward(p)
    step = parse_step(p, start, end)
    return await _volume(request, svc, tenant, VolumeRequest(p.get("query", ""), start, end, limit, step,
                                                    _target_labels(p), _aggregate_by(p)))


async def _volume(request: Request, svc: ServicesDep, tenant: str, req: VolumeRequest) -> Response:
    def run() -> object:
        return index_queries.volume(svc.querier.snapshot(tenant, Want(req.start, req.end + 1)), req)

    return success(await run_query(request, svc, tenant, run))


def _target_labels(p: Mapping[str, str]) -> tuple[str, ...]:
    value = p.get("targetLabels") or ""
    return tuple(value.split(",")) if value else ()


def _aggregate_by(p: Mapping[str, str]) -> str:
    value = p.get("aggregateBy") or index_queries.SERIES
    if value not in (index_queries.SERIES, index_queries.LABELS):
        raise BadRequest("invalid aggregation option")
    return value
