"""Operational endpoints: readiness, metrics, build info, flush."""

from __future__ import annotations

import platform

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lokiarrow import __version__
from lokiarrow.server.deps import ServicesDep
from lokiarrow.server.routes_query import success

router = APIRouter()


@router.get("/ready")
async def ready() -> PlainTextResponse:
    return PlainTextResponse("ready\n")


@router.get("/metrics")
async def metrics(svc: ServicesDep) -> Response:
    return Response(generate_latest(svc.telemetry.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/loki/api/v1/status/buildinfo")
async def buildinfo() -> Response:
    return success({"version": __version__, "revision": "", "branch": "", "buildUser": "", "buildDate": "",
                    "goVersion": "", "pythonVersion": platform.python_version()})


@router.post("/flush")
async def flush(svc: ServicesDep) -> Response:
    """Flush every tenant's head to chunk files now (Loki's ingester `/flush`)."""
    await run_in_threadpool(svc.store.flush_all)
    return Response(status_code=204)
