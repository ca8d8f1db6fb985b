"""The FastAPI application: services wired at start-up, routers, one error shape.

Errors: any LokiError answers with its status and its message as plain text, as Loki's
`http.Error` does; anything unexpected is logged and answers 500 without losing accepted data.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response

from lokiarrow.config import Config
from lokiarrow.errors import LokiError
from lokiarrow.exec.engine import Querier
from lokiarrow.exec.writers import Writers
from lokiarrow.overrides import TenantLimits
from lokiarrow.server import (
    routes_admin,
    routes_delete,
    routes_drilldown,
    routes_index,
    routes_push,
    routes_query,
    routes_tail,
    routes_ui,
    routes_unflushed,
)
from lokiarrow.server.deps import Services
from lokiarrow.server.grpc_api import serve_grpc
from lokiarrow.server.telemetry import RequestTimer, Telemetry
from lokiarrow.store.fs import Root
from lokiarrow.store.retention import retention_of
from lokiarrow.store.store import Store

log = logging.getLogger(__name__)
GRPC_GRACE_S = 5.0   # at shutdown, calls under way get this long to finish


def error_response(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers={"X-Content-Type-Options": "nosniff"})


# what each target (`-target`) serves: Loki's split of the single binary into write, read and backend
_READ = (routes_query, routes_index, routes_drilldown, routes_tail, routes_ui)   # the explorer page reads
ROUTES = {"all": (routes_push, *_READ, routes_delete, routes_unflushed, routes_admin),
          "write": (routes_push, routes_unflushed, routes_tail, routes_admin),   # tails: readers relay them
          "read": (*_READ, routes_admin),
          "backend": (routes_delete, routes_admin)}


def create_app(config: Config) -> FastAPI:
    target = config.target
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.compactor.retention_enabled:
            retention_of(config.limits)           # a rule Loki would refuse stops the start
        # one process per store in the single binary (before the WAL is read); scaled-out targets
        # share the store: every file they write has a name of its own
        lock = Root(config.path_prefix, config.storage).lock() if target == "all" else None
        limits = TenantLimits(config.limits, config.runtime_config_file, config.runtime_config_period)
        ingester = config.ingester
        if target == "write" and not ingester.wal_dir:
            ingester = replace(ingester, wal_dir="wal")     # its own, not beside the shared files
        elif target in ("read", "backend"):
            ingester = replace(ingester, wal_enabled=False)
        store = Store(config.path_prefix, ingester, config.compactor, limits, config.storage,
                      load_index=target != "write")
        refresh = config.querier.index_refresh_interval if target in ("read", "backend") else 0
        store.start(flush=target in ("all", "write"), compact=target in ("all", "backend"), refresh_ns=refresh)
        writers = Writers(config.querier.writers) if target == "read" else None
        services = app.state.services = Services(config, store, Querier(store, limits, writers), Telemetry(), limits)
        grpc_server, _ = serve_grpc(services, config.grpc_listen_address, config.grpc_listen_port,
                                    push=target in ("all", "write"), query=target in ("all", "read"))
        try:
            yield
        finally:
            grpc_server.stop(GRPC_GRACE_S).wait()
            store.close()
            if writers is not None:
                writers.close()
            if lock is not None:
                lock.close()

    app = FastAPI(title="lokiarrow", lifespan=lifespan, docs_url=None, redoc_url=None)
    for module in ROUTES[target]:
        app.include_router(module.router)

    @app.exception_handler(LokiError)
    async def loki_error(request: Request, exc: LokiError) -> Response:
        return error_response(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, f"invalid request: {exc.errors()}")

    app.add_middleware(Unexpected)
    app.add_middleware(RequestTimer)
    return app


class Unexpected:
    """ASGI middleware: an unexpected error answers 500 naming it, and is logged. Unlike an
    exception handler (Starlette raises the error again after answering, and the server then drops
    the connection), the connection stays usable: keep-alive clients' next request is answered."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except Exception as exc:
            log.exception("unexpected error on %s", scope["path"])
            if started:
                raise
            await error_response(500, f"internal error: {type(exc).__name__}: {exc}")(scope, receive, send)
