"""Loki's write endpoints: `/loki/api/v1/push`, the legacy `/api/prom/push` and OpenTelemetry's
`/otlp/v1/logs`.

Contract: 204 means every entry of the request is durable (WAL) and queryable. When some streams
are invalid, the valid ones are still stored and the answer is 400 naming the problems, as Loki does.
The OTLP endpoint answers its errors as Loki does there: the status, and a protobuf `google.rpc.Status`
holding the message (500 becomes 503, which OTLP clients retry).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lokiarrow.errors import BodyTooLarge, LokiError
from lokiarrow.ingest.distributor import PreparedPush, prepare_push, prepare_streams
from lokiarrow.server.deps import Services, ServicesDep, TenantDep
from lokiarrow.wire.otlp import decode_otlp, encode_status
from lokiarrow.wire.push import MAX_RECV_MSG_SIZE

router = APIRouter()


def _ingest(svc: Services, tenant: str, body: bytes, content_type: str | None,
            content_encoding: str | None, legacy: bool) -> None:
    prepared = prepare_push(tenant, body, content_type, content_encoding, svc.limits(tenant),
                            time.time_ns(), legacy=legacy)
    store_prepared(svc, tenant, prepared)


def store_prepared(svc: Services, tenant: str, prepared: PreparedPush) -> None:
    """Store the accepted part of a push (durable when this returns), count it, then raise the
    error naming the refused part, if any (429 when a stream was over its rate, else 400)."""
    batch = prepared.batch
    if batch.num_rows:
        store = svc.store.tenant(tenant)
        store.push(batch)
        if store.needs_flush():
            svc.store.wake_flusher()
    svc.telemetry.lines_received.labels(tenant).inc(prepared.lines)
    svc.telemetry.bytes_received.labels(tenant).inc(prepared.bytes)
    failure = prepared.failure()
    if failure is not None:
        raise failure


async def read_body(request: Request, limit: int = MAX_RECV_MSG_SIZE) -> bytes:
    """The body as it arrives, refused (413, Loki's words) as soon as it is over Loki's receive
    limit: an oversized push costs the limit in memory at most, and a declared one nothing."""
    declared = request.headers.get("content-length", "")
    too_large = BodyTooLarge(f"request body too large: message size too large than max ({limit + 1} vs {limit})")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise too_large
        parts.append(part)
    return b"".join(parts)


async def _push(request: Request, svc: Services, tenant: str, legacy: bool) -> Response:
    body = await read_body(request)
    await run_in_threadpool(_ingest, svc, tenant, body, request.headers.get("content-type"),
                            request.headers.get("content-encoding"), legacy)
    return Response(status_code=204)


@router.post("/loki/api/v1/push")
async def push(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    return await _push(request, svc, tenant, legacy=False)


@router.post("/api/prom/push")
async def push_legacy(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    return await _push(request, svc, tenant, legacy=True)


def _ingest_otlp(svc: Services, tenant: str, body: bytes, content_type: str | None,
                 content_encoding: str | None) -> None:
    limits = svc.limits(tenant)
    now_ns = time.time_ns()
    streams = decode_otlp(body, content_type, content_encoding, now_ns,
                          discover_service_name=limits.discover_service_name)
    store_prepared(svc, tenant, prepare_streams(tenant, streams, limits, now_ns))


@router.post("/otlp/v1/logs")
async def push_otlp(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    try:
        body = await read_body(request)
        await run_in_threadpool(_ingest_otlp, svc, tenant, body, request.headers.get("content-type"),
                                request.headers.get("content-encoding"))
    except LokiError as exc:
        status = 503 if exc.status == 500 else exc.status
        return Response(encode_status(exc.message), status_code=status, media_type="application/octet-stream")
    return Response(status_code=204)
