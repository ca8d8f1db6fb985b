"""The server's Prometheus metrics, named as Loki names the same things."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.lines_received = Counter(
            "loki_distributor_lines_received", "Log lines received, by tenant.", ["tenant"],
            registry=self.registry)
        self.bytes_received = Counter(
            "loki_distributor_bytes_received", "Bytes of log lines received, by tenant.", ["tenant"],
            registry=self.registry)
        self.requests = Histogram(
            "loki_request_duration_seconds", "Time spent serving HTTP requests.",
            ["method", "route", "status_code"], registry=self.registry)


class RequestTimer:
    """ASGI middleware: every HTTP request's duration, by route and status (no per-request task)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            services = getattr(scope["app"].state, "services", None)
            if services is not None:
                route = getattr(scope.get("route"), "path", "other")
                services.telemetry.requests.labels(scope["method"], route, str(status)).observe(
                    time.perf_counter() - began)
