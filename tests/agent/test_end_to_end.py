"""`lokiarrow agent` as a process, tailing real CRI log files into a real `lokiarrow serve`: every
line arrives with its labels and its own time, also across a SIGKILL and a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Server, free_port

T0 = 1_768_860_000_000_000_000  # 2026-01-19T22:00:00Z: the lines carry their own times

CONFIG = """
server: {{http_listen_port: {port}, http_listen_address: 127.0.0.1}}
positions: {{filename: {positions}, sync_period: 200ms}}
clients:
  - url: {url}/loki/api/v1/push
    batchwait: 100ms
target_config: {{sync_period: 500ms}}
scrape_configs:
  - job_name: pods
    static_configs:
      - targets: [localhost]
        labels: {{job: pods, __path__: "{logs}/*.log"}}
    relabel_configs:
      - source_labels: [job]
        target_label: team
        replacement: t-$1
    pipeline_stages:
      - cri: {{}}
      - json: {{expressions: {{level: level}}}}
      - labels: {{level: }}
"""


def _cri(i: int) -> str:
    ts = datetime.fromtimestamp((T0 + i * 10**6) / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    level = "error" if i % 5 == 0 else "info"
    return f'{ts} stdout F {{"level":"{level}","n":{i}}}\n'


@pytest.fixture
def setup(tmp_path: Path, start_server: Callable[..., Server]) -> Iterator[tuple[Server, Callable[[], subprocess.Popen[bytes]], Path]]:
    server = start_server()
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "promtail.yaml"
    config.write_text(CONFIG.format(port=free_port(), positions=tmp_path / "positions.yaml", url=server.url,
                                    logs=logs))
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"agent{len(procs)}.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "agent", f"-config.file={config}"],
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        return procs[-1]

    yield server, start, logs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def _lines(server: Server) -> dict[int, tuple[str, str, str, str]]:
    """n -> (level, team, file, time) of every line the server holds (a repeat would fail)."""
    r = httpx.get(f"{server.url}/loki/api/v1/query_range", timeout=30, params={
        "query": '{job="pods"}', "limit": 100000, "start": T0 - 10**9, "end": T0 + 10**12})
    assert r.status_code == 200, r.text
    found: dict[int, tuple[str, str, str, str]] = {}
    for stream in r.json()["data"]["result"]:
        for ts, line in stream["values"]:
            n = int(line.split('"n":')[1].rstrip("}"))
            assert n not in found, f"line {n} arrived twice"
            labels = stream["stream"]
            found[n] = (labels["level"], labels["team"], labels["filename"], ts)
    return found


def _wait_for(server: Server, count: int, timeout: float = 30.0) -> dict[int, tuple[str, str, str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        found = _lines(server)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_lines_arrive_once_with_their_labels_and_times(setup: tuple[Server, Callable[..., subprocess.Popen[bytes]], Path]) -> None:
    server, start, logs = setup
    with open(logs / "web.log", "w") as f:
        f.writelines(_cri(i) for i in range(500))
    agent = start()
    found = _wait_for(server, 500)
    assert sorted(found) == list(range(500))
    for n, (level, team, filename, ts) in found.items():
        assert level == ("error" if n % 5 == 0 else "info") and team == "t-pods"
        assert filename == str(logs / "web.log")
        assert int(ts) == T0 + n * 10**6  # the CRI time, not the time it was read
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(15) == 0


def test_a_killed_agent_restarts_from_its_positions(setup: tuple[Server, Callable[..., subprocess.Popen[bytes]], Path]) -> None:
    server, start, logs = setup
    total = 6000
    agent = start()
    with open(logs / "api.log", "w") as f:
        for i in range(total):
            f.write(_cri(i))
            if i % 500 == 499:
                f.flush()
                os.fsync(f.fileno())
                time.sleep(0.05)
            if i == total // 2:  # mid-stream
                f.flush()
                time.sleep(0.5)
                agent.send_signal(signal.SIGKILL)
                agent.wait(10)
                agent = start()
    found = _wait_for(server, total)
    assert sorted(found) == list(range(total))  # nothing lost, nothing twice
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(15) == 0
