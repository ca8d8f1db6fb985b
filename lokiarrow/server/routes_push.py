"""Loki's write endpoints: `/loki/api/v1/push` and the legacy `/api/prom/push`.

Contract: 204 means every entry of the request is durable (WAL) and queryable. When some streams
are invalid, the valid ones are still stored and the answer is 400 naming the problems, as Loki does.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lokiarrow.errors import BadRequest
from lokiarrow.ingest.distributor import prepare_push
from lokiarrow.server.deps import Services, ServicesDep, TenantDep

router = APIRouter()


def _ingest(svc: Services, tenant: str, body: bytes, content_type: str | None,
            content_encoding: str | None, legacy: bool) -> None:
    prepared = prepare_push(tenant, body, content_type, content_encoding, svc.limits(tenant),
                            time.time_ns(), legacy=legacy)
    batch = prepared.batch
    if batch.num_rows:
        store = svc.store.tenant(tenant)
        store.push(batch)
        if store.needs_flush():
            svc.store.wake_flusher()
    svc.telemetry.lines_received.labels(tenant).inc(prepared.lines)
    svc.telemetry.bytes_received.labels(tenant).inc(prepared.bytes)
    if prepared.error:
        raise BadRequest(prepared.error)


async def _push(request: Request, svc: Services, tenant: str, legacy: bool) -> Response:
    body = await request.body()
    await run_in_threadpool(_ingest, svc, tenant, body, request.headers.get("content-type"),
                            request.headers.get("content-encoding"), legacy)
    return Response(status_code=204)


@router.post("/loki/api/v1/push")
async def push(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    return await _push(request, svc, tenant, legacy=False)


@router.post("/api/prom/push")
async def push_legacy(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    return await _push(request, svc, tenant, legacy=True)
