"""`lokiarrow agent …` run as a subprocess (exit codes and messages), and its /ready and /metrics
over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from lokiarrow.agent.http import AgentHTTP
from tests.conftest import ROOT, free_port

GOOD = """
server:
  http_listen_port: ${AGENT_PORT}
  http_listen_address: 127.0.0.1
positions:
  filename: ${POSITIONS:-/tmp/positions.yaml}
clients:
  - url: http://127.0.0.1:3100/loki/api/v1/push
scrape_configs:
  - job_name: system
    static_configs:
      - targets: [localhost]
        labels:
          job: varlogs
          __path__: /var/log/*.log
    pipeline_stages:
      - json:
          expressions:
            level:
      - labels:
          level:
"""


def agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "lokiarrow.cli", "agent", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "promtail.yaml"
    path.write_text(text)
    return str(path)


def test_check_syntax_accepts_a_good_config(tmp_path: Path) -> None:
    done = agent(f"-config.file={write(tmp_path, GOOD)}", "-config.expand-env=true", "-check-syntax",
                 env={"AGENT_PORT": "9080"})
    assert (done.returncode, done.stdout.strip()) == (0, "Valid config file! No syntax issues found"), done.stderr


@pytest.mark.parametrize(("text", "flags", "message"), [
    (GOOD.replace("job_name", "job_nam"), ["-config.expand-env"], "scrape_configs[0].job_nam: unknown field"),
    (GOOD, [], "server.http_listen_port: must be an integer, not '${AGENT_PORT}'"),  # no -config.expand-env
    (GOOD.replace("- json:", "- jsn:"), ["-config.expand-env=true"], "scrape_configs[0].pipeline_stages[0].jsn: unknown stage"),
    ("server:\n  log_level: loud\n", [], "server.log_level: unrecognized log level 'loud'"),
])
def test_a_bad_config_exits_1_with_the_path(tmp_path: Path, text: str, flags: list[str], message: str) -> None:
    path = write(tmp_path, text)
    for extra in ([], ["-check-syntax"], ["-dry-run"]):
        done = agent("-config.file", path, *flags, *extra, env={"AGENT_PORT": "9080"})
        assert done.returncode == 1
        assert done.stderr.strip() == f"Invalid config file {path}: {message}"
        assert done.stdout == ""


def test_a_missing_config_file_exits_1(tmp_path: Path) -> None:
    done = agent()
    assert (done.returncode, done.stderr.strip()) == (1, "Invalid config file: -config.file must be set")
    done = agent(f"-config.file={tmp_path}/nope.yaml")
    assert done.returncode == 1
    assert "cannot read config file" in done.stderr and "nope.yaml" in done.stderr


def test_a_port_in_use_exits_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = agent(f"-config.file={write(tmp_path, GOOD)}", "-config.expand-env", env={"AGENT_PORT": str(port)})
    assert done.returncode == 1
    assert done.stderr.startswith(f"cannot listen on port {port}")


def _wait_ready(url: str, proc: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            return httpx.get(f"{url}/ready", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the agent did not answer /ready")


@pytest.mark.parametrize("port_from", ["config", "flag"])
def test_the_agent_serves_ready_and_metrics_until_sigterm(tmp_path: Path, port_from: str) -> None:
    port = free_port()
    # the agent really runs: it tails this test's folder and keeps its positions there
    config = GOOD.replace("/var/log/*.log", f"{tmp_path}/logs/*.log")
    args = [f"-config.file={write(tmp_path, config)}", "-config.expand-env"]
    env = {**os.environ, "AGENT_PORT": str(port), "POSITIONS": str(tmp_path / "positions.yaml")}
    if port_from == "flag":
        env["AGENT_PORT"] = "1"  # the flag wins over the file, as Promtail's -server.http-listen-port
        args.append(f"-server.http-listen-port={port}")
    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "lokiarrow.cli", "agent", *args, "-dry-run"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        ready = _wait_ready(url, proc)
        assert (ready.status_code, ready.text) == (200, "Ready\n")
        metrics = httpx.get(f"{url}/metrics", timeout=2)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain; version=")
        assert httpx.get(f"{url}/nope", timeout=2).status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_agent_http_serves_the_registry_it_is_given() -> None:
    registry = CollectorRegistry()
    lines = Counter("promtail_read_lines", "Lines read", ["path"], registry=registry)
    lines.labels(path="/var/log/a.log").inc(3)
    state = {"ready": False}
    http = AgentHTTP("127.0.0.1", 0, registry, ready=lambda: state["ready"]).start()
    try:
        url = f"http://127.0.0.1:{http.port}"
        assert (httpx.get(f"{url}/ready").status_code, httpx.get(f"{url}/ready").text) == (503, "Not ready\n")
        state["ready"] = True
        assert httpx.get(f"{url}/ready?verbose=1").status_code == 200
        body = httpx.get(f"{url}/metrics").text
        assert 'promtail_read_lines_total{path="/var/log/a.log"} 3.0' in body
        lines.labels(path="/var/log/a.log").inc()
        assert 'promtail_read_lines_total{path="/var/log/a.log"} 4.0' in httpx.get(f"{url}/metrics").text
    finally:
        http.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/ready", timeout=1)
