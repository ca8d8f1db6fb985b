"""Operational endpoints: readiness, metrics, build info, flush."""

from __future__ import annotations

import platform

import orjson
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from lokiarrow import __version__
from lokiarrow.errors import LokiError
from lokiarrow.server.deps import ServicesDep

router = APIRouter()


@router.get("/ready")
async def ready() -> PlainTextResponse:
    return PlainTextResponse("ready\n")


@router.get("/metrics")
async def metrics(svc: ServicesDep) -> Response:
    """The server's request metrics, then the process-wide ones (the process itself, the object
    storage cache)."""
    text = generate_latest(svc.telemetry.registry) + generate_latest(REGISTRY)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


# the Loki release whose API this one serves (clients such as Grafana gate features on it); the
# build metadata after `+` names lokiarrow's own version and leaves semver comparisons alone
LOKI_VERSION = f"3.5.0+lokiarrow.{__version__}"


@router.get("/loki/api/v1/status/buildinfo")
async def buildinfo() -> Response:
    """Loki answers its build info as the object itself, not in a status/data envelope."""
    return Response(orjson.dumps({
        "version": LOKI_VERSION, "revision": f"lokiarrow-{__version__}",
        "branch": "", "buildUser": "", "buildDate": "", "goVersion": f"python{platform.python_version()}"}),
        media_type="application/json")


@router.post("/flush")
async def flush(svc: ServicesDep) -> Response:
    """Flush every tenant's head to chunk files now (Loki's ingester `/flush`). When the storage
    refuses (a full disk, object storage away), 500 with the reason: the entries stay in the head
    and the WAL, and the next flush tries again."""
    try:
        await run_in_threadpool(svc.store.flush_all)
    except OSError as exc:
        raise LokiError(f"cannot flush: {exc}") from None
    return Response(status_code=204)


@router.post("/refresh")
async def refresh(svc: ServicesDep) -> Response:
    """Read the index files other processes wrote since the last look now (a reader or the backend
    of a scaled-out deployment does so every `querier.index_refresh_interval` on its own)."""
    try:
        await run_in_threadpool(svc.store.refresh)
    except OSError as exc:
        raise LokiError(f"cannot refresh the index: {exc}") from None
    return Response(status_code=204)
