"""Fixtures that run the real thing: `lokiarrow serve` as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent

# The limits Loki ran with for the conformance answers (shared/conformance/README.md); tests push
# data from the past, so they need the same.
PERMISSIVE = """
limits_config:
  reject_old_samples: false
  creation_grace_period: 87600h
  max_entries_limit_per_query: 100000
  max_query_series: 100000
  max_query_length: 0
  max_line_size: 0
  ingestion_rate_mb: 1000
  ingestion_burst_size_mb: 2000
  allow_structured_metadata: true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `lokiarrow serve` process; stop, kill and start it again over the same data."""

    def __init__(self, data_dir: Path, config: str, extra_args: list[str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = data_dir.parent / f"config-{self.port}.yaml"
        self.config_path.write_text(config)
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    def start(self) -> Server:
        args = [sys.executable, "-m", "lokiarrow.cli", "serve", f"-config.file={self.config_path}",
                f"-common.path-prefix={self.data_dir}", f"-server.http-listen-port={self.port}",
                "-server.http-listen-address=127.0.0.1", "-server.grpc-listen-port=0", "-log.level=warn",
                *self.extra_args]
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def client(self, tenant: str | None = None) -> httpx.Client:
        """A client of this server; with `tenant`, every request names it (X-Scope-OrgID)."""
        return httpx.Client(base_url=self.url, timeout=60, headers={"X-Scope-OrgID": tenant} if tenant else None)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers on demand (default: permissive limits); all are stopped after the test."""
    started: list[Server] = []

    def start(config: str = PERMISSIVE, data_dir: Path | None = None, args: list[str] | None = None) -> Server:
        folder = data_dir or tmp_path / f"data{len(started)}"
        folder.mkdir(exist_ok=True)
        server = Server(folder, config, args or []).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by a module's tests."""
    folder = tmp_path_factory.mktemp("server") / "data"
    folder.mkdir()
    srv = Server(folder, PERMISSIVE, []).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
