"""Loki's log deletion API on `/loki/api/v1/delete`: POST (or PUT) adds a request, GET lists the
tenant's, DELETE cancels one. The compactor applies a request once `delete_request_cancel_period`
has passed (store/deletes.py, store/compactor.py). As in Loki, the API needs
`compactor.retention_enabled`; parameters, statuses and messages are Loki's. `max_interval`
(Loki's sharding of a request by time) is accepted and not needed: a request is applied whole.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lokiarrow.errors import BadRequest, LokiError, NotFound
from lokiarrow.logql.parser import parse_log_selector
from lokiarrow.logql.printer import go_duration
from lokiarrow.server.deps import Services, ServicesDep, TenantDep
from lokiarrow.store.deletes import PROCESSED, RECEIVED, DeleteRequests

router = APIRouter()
PATH = "/loki/api/v1/delete"
_UNIX_SECONDS = re.compile(r"-?\d{10}")


def _requests(svc: Services, tenant: str) -> DeleteRequests:
    if not svc.config.compactor.retention_enabled:
        raise BadRequest("Retention is not enabled")
    return DeleteRequests(svc.store.root, tenant)


def _ms(value: str, which: str) -> int:
    """Loki's delete-time parameter: RFC3339, or unix seconds written with ten digits; in ms."""
    try:
        if _UNIX_SECONDS.fullmatch(value):
            return int(value) * 1000
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        pass
    raise BadRequest(f"invalid {which} time: require unix seconds or RFC3339 format")


@router.api_route(PATH, methods=["POST", "PUT"])
async def add(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    requests = _requests(svc, tenant)
    params = request.query_params
    query = params.get("query", "")
    if not query:
        raise BadRequest("query not set")
    try:
        parse_log_selector(query, validate=False)
    except LokiError:
        raise BadRequest("invalid query expression") from None
    if not params.get("start"):
        raise BadRequest("start time not set")
    start = _ms(params["start"], "start")
    now_ms = time.time_ns() // 10**6
    end = _ms(params["end"], "end") if params.get("end") else now_ms
    if end > now_ms:
        raise BadRequest("deletes in the future are not allowed")
    if start >= end:
        raise BadRequest("start time can't be greater than or equal to end time")
    added = await run_in_threadpool(requests.add, query, start, end, now_ms)
    return Response(status_code=204, headers={"X-Delete-Request-ID": added.request_id})


@router.get(PATH)
async def listed(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    requests = _requests(svc, tenant)
    params = request.query_params
    found = await run_in_threadpool(requests.all)
    if params.get("start") or params.get("end"):
        if not (params.get("start") and params.get("end")):
            raise BadRequest("both start and end must be set")
        start, end = _ms(params["start"], "start"), _ms(params["end"], "end")
        found = [r for r in found if r.start_time <= end and start <= r.end_time]
    return Response(orjson.dumps([r.answer() for r in found]), media_type="application/json")


@router.delete(PATH)
async def cancel(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    requests = _requests(svc, tenant)
    params = request.query_params
    request_id = params.get("request_id", "")
    found = next((r for r in await run_in_threadpool(requests.all) if r.request_id == request_id), None)
    if found is None:
        raise NotFound("could not find delete request with given id")
    if found.status == PROCESSED:
        raise BadRequest("deletion of request which is in process or already processed is not allowed")
    period = svc.config.compactor.delete_request_cancel_period
    late = found.created_at * 10**6 + period < time.time_ns()
    if (found.status != RECEIVED or late) and params.get("force") != "true":
        raise BadRequest(f"Cancellation of partially completed delete request or delete request past the deadline "
                         f"of {go_duration(period)} since its creation is not allowed. To force, use the ?force "
                         f"query parameter")
    await run_in_threadpool(requests.remove, request_id)
    return Response(status_code=204)
