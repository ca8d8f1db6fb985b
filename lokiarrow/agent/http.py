"""The agent's own HTTP server: `/ready` for the DaemonSet's probe, `/metrics` for Prometheus.

A standard-library server on a daemon thread: the agent's hot path never waits on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class AgentHTTP:
    """Serves `registry` on `/metrics` and `ready()` on `/ready` (200 `Ready`, else 503)."""

    def __init__(self, address: str, port: int, registry: CollectorRegistry,
                 ready: Callable[[], bool] = lambda: True) -> None:
        handler = _handler(registry, ready)
        self.server = ThreadingHTTPServer((address or "0.0.0.0", port), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="agent-http", daemon=True)

    def start(self) -> AgentHTTP:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(registry: CollectorRegistry, ready: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/ready":
                ok = ready()
                self._send(200 if ok else 503, b"Ready\n" if ok else b"Not ready\n")
            else:
                self._send(404, b"404 page not found\n")

        def _send(self, status: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # no access log, as Promtail

    return Handler
