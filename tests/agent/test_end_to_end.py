"""`lokiarrow agent` as a process, tailing real CRI log files into a real `lokiarrow serve`: every
line arrives with its labels and its own time, also across a SIGKILL and a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import PERMISSIVE, ROOT, Server, free_port

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


@dataclass
class Setup:
    server: Server
    start: Callable[[], subprocess.Popen[bytes]]   # an agent process on the config
    logs: Path                                      # the folder its job tails (`*.log`)
    metrics_url: str


@pytest.fixture
def setup(tmp_path: Path, start_server: Callable[..., Server]) -> Iterator[Setup]:
    server = start_server()
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "promtail.yaml"
    port = free_port()
    config.write_text(CONFIG.format(port=port, positions=tmp_path / "positions.yaml", url=server.url, logs=logs))
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"agent{len(procs)}.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "agent", f"-config.file={config}"],
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        return procs[-1]

    yield Setup(server, start, logs, f"http://127.0.0.1:{port}/metrics")
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


def _metrics(url: str, until: Callable[[dict[str, float]], bool], timeout: float = 15.0) -> dict[str, float]:
    """The agent's samples (name{labels} -> value) once `until` holds of them (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(url, timeout=5).text
        pairs = (ln.rpartition(" ") for ln in text.splitlines() if ln and not ln.startswith("#"))
        samples = {k: float(v) for k, _, v in pairs}
        if until(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def test_lines_arrive_once_with_their_labels_and_times(setup: Setup) -> None:
    server, start, logs = setup.server, setup.start, setup.logs
    with open(logs / "web.log", "w") as f:
        f.writelines(_cri(i) for i in range(500))
    agent = start()
    found = _wait_for(server, 500)
    assert sorted(found) == list(range(500))
    for n, (level, team, filename, ts) in found.items():
        assert level == ("error" if n % 5 == 0 else "info") and team == "t-pods"
        assert filename == str(logs / "web.log")
        assert int(ts) == T0 + n * 10**6  # the CRI time, not the time it was read
    metrics = _metrics(setup.metrics_url, until=lambda m: m.get("promtail_files_active_total") == 1
                       and not any(v for k, v in m.items() if k.startswith("lokiarrow_agent_file_lag_bytes")))
    size = float((logs / "web.log").stat().st_size)
    path = f'path="{logs / "web.log"}"'
    assert metrics[f"promtail_read_lines_total{{{path}}}"] == 500
    assert metrics[f"promtail_read_bytes_total{{{path}}}"] == metrics[f"promtail_file_bytes_total{{{path}}}"] == size
    assert metrics[f"lokiarrow_agent_file_position_bytes{{{path}}}"] == size
    assert metrics[f"lokiarrow_agent_file_lag_bytes{{{path}}}"] == 0
    assert metrics["promtail_files_active_total"] == 1
    assert sum(v for k, v in metrics.items() if k.startswith("promtail_sent_entries_total")) == 500
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(15) == 0


def test_a_killed_agent_restarts_from_its_positions(setup: Setup) -> None:
    server, start, logs = setup.server, setup.start, setup.logs
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


def test_files_rotated_under_load_lose_nothing(setup: Setup) -> None:
    """A writer appends ~2,000 lines/s while its file is renamed away and recreated three times,
    right after a burst the agent has not read yet (it reads the old file to its end), then copied
    and truncated once the agent caught up. Each generation lives longer than a poll (250 ms): one
    created and renamed away between two polls is never seen, as with a polling Promtail."""
    server, logs = setup.server, setup.logs
    agent = setup.start()
    log = logs / "busy.log"
    total, written = 8000, 1
    out = open(log, "w")  # noqa: SIM115
    out.write(_cri(0))
    out.flush()
    assert len(_wait_for(server, 1)) == 1     # the agent follows the file: the load starts
    try:
        for i in range(1, total):
            out.write(_cri(i))
            written += 1
            if i % 100 == 99:
                out.flush()
                time.sleep(0.05)
            if i in (1500, 3000, 4500):          # rename + create, as logrotate's default
                out.close()
                log.rename(logs / f"busy.log.{i}")
                out = open(log, "w")  # noqa: SIM115
            if i == 6000:                        # copytruncate, once the agent caught up
                out.flush()
                assert len(_wait_for(server, written)) == written
                (logs / "busy.log.copy").write_bytes(log.read_bytes())
                out.truncate(0)
                out.seek(0)
    finally:
        out.close()
    found = _wait_for(server, total)
    assert sorted(found) == list(range(total))   # nothing lost, nothing twice
    assert {filename for _, _, filename, _ in found.values()} == {str(log)}
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(15) == 0



PODS_CONFIG = """
server: {{http_listen_port: {port}, http_listen_address: 127.0.0.1}}
positions: {{filename: {positions}}}
clients: [{{url: "{url}/loki/api/v1/push", batchwait: 100ms}}]
target_config: {{sync_period: 300ms}}
scrape_configs:
  - job_name: pods
    pods_dir_sd_configs: [{{path: "{pods}"}}]
    relabel_configs:
      - {{source_labels: [__meta_kubernetes_namespace], target_label: namespace}}
      - {{source_labels: [__meta_kubernetes_pod_name], target_label: pod}}
      - {{source_labels: [__meta_kubernetes_pod_container_name], target_label: container}}
      - {{target_label: __path_exclude__, replacement: "{pods}/*/*/*.gz"}}
      - {{target_label: job, replacement: pods}}
    pipeline_stages: [{{cri: {{}}}}]
"""


def test_pods_found_in_the_kubelet_folder_without_an_api(tmp_path: Path, start_server: Callable[..., Server]) -> None:
    """`pods_dir_sd_configs`: pods from folder names alone, including one that appears later;
    `__path_exclude__` leaves rotated, compressed files out."""
    server = start_server()
    pods = tmp_path / "pods"
    web = pods / "shop_web-0_0b5e" / "nginx"
    web.mkdir(parents=True)
    (web / "0.log").write_text(_cri(0) + _cri(1))
    (web / "0.log.20261203.gz").write_text(_cri(99))
    config = tmp_path / "promtail.yaml"
    config.write_text(PODS_CONFIG.format(port=free_port(), positions=tmp_path / "positions.yaml", url=server.url,
                                         pods=pods))
    with open(tmp_path / "agent.log", "wb") as log:
        agent = subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "agent", f"-config.file={config}"],
                                 cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert sorted(_pods_lines(server, 2)) == [("shop", "web-0", "nginx", 0), ("shop", "web-0", "nginx", 1)]
        later = pods / "jobs_batch-1_77aa" / "worker"
        later.mkdir(parents=True)
        (later / "0.log").write_text(_cri(2))
        time.sleep(0.5)   # time enough for an excluded file to show up, were it read
        assert sorted(_pods_lines(server, 3)) == [("jobs", "batch-1", "worker", 2), ("shop", "web-0", "nginx", 0),
                                                  ("shop", "web-0", "nginx", 1)]
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0


def _pods_lines(server: Server, count: int) -> list[tuple[str, str, str, int]]:
    deadline = time.monotonic() + 20
    while True:
        r = httpx.get(f"{server.url}/loki/api/v1/query_range", timeout=30, params={
            "query": '{job="pods"}', "limit": 1000, "start": T0 - 10**9, "end": T0 + 10**12})
        assert r.status_code == 200, r.text
        found = [(s["stream"]["namespace"], s["stream"]["pod"], s["stream"]["container"],
                  int(line.split('"n":')[1].rstrip("}"))) for s in r.json()["data"]["result"] for _, line in s["values"]]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


MULTILINE_CONFIG = """
server: {{http_listen_port: {port}, http_listen_address: 127.0.0.1}}
positions: {{filename: {positions}, sync_period: 100ms}}
clients: [{{url: "{url}/loki/api/v1/push", batchwait: 100ms}}]
scrape_configs:
  - job_name: blocks
    static_configs: [{{targets: [localhost], labels: {{job: blocks, __path__: "{logs}/*.log"}}}}]
    pipeline_stages:
      - cri: {{}}
      - multiline: {{firstline: '^\\[', max_wait_time: 1h}}
"""


def _block(n: int) -> str:
    """Three CRI lines: a block's first line and two continuations, a millisecond apart."""
    stamp = datetime.fromtimestamp(T0 / 1e9 + n, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return "".join(f"{stamp}.{k:03d}000000Z stdout F {text}\n"
                   for k, text in enumerate([f"[{n}] start", f"  more {n}.1", f"  more {n}.2"]))


def test_a_block_held_by_multiline_survives_a_kill(tmp_path: Path, start_server: Callable[..., Server]) -> None:
    """The position stops before the lines a stage holds: a block still open when the agent is
    killed is read again after the restart and arrives whole, once (lines already shipped and
    read again carry their CRI times, so the server keeps them once)."""
    server = start_server()
    logs = tmp_path / "logs"
    logs.mkdir()
    positions = tmp_path / "positions.yaml"
    config = tmp_path / "promtail.yaml"
    config.write_text(MULTILINE_CONFIG.format(port=free_port(), positions=positions, url=server.url, logs=logs))
    log = logs / "app.log"

    def start() -> subprocess.Popen[bytes]:
        with open(tmp_path / "agent.log", "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "agent", f"-config.file={config}"],
                                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def blocks(count: int) -> list[str]:
        deadline = time.monotonic() + 20
        while True:
            r = httpx.get(f"{server.url}/loki/api/v1/query_range", timeout=30, params={
                "query": '{job="blocks"}', "limit": 1000, "start": T0 - 10**9, "end": T0 + 10**12,
                "direction": "forward"})
            found = [line for s in r.json()["data"]["result"] for _, line in s["values"]]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    agent = start()
    try:
        log.write_text("".join(_block(n) for n in range(3)))
        assert len(blocks(2)) == 2                        # block 2 is held: no first line after it yet
        time.sleep(0.5)
        held_from = log.stat().st_size
        with open(log, "a") as f:
            f.write(_block(3))                            # releases block 2, holds block 3
        assert len(blocks(3)) == 3
        deadline = time.monotonic() + 10
        while f"{held_from}" not in (positions.read_text() if positions.exists() else ""):
            assert time.monotonic() < deadline, positions.read_text()
            time.sleep(0.05)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        assert f"{held_from}" in positions.read_text()    # not past the held block
        agent = start()
        with open(log, "a") as f:
            f.write(_block(4))                            # releases block 3 (read again), holds block 4
        assert len(blocks(4)) == 4
    finally:
        agent.send_signal(signal.SIGTERM)                 # a stop releases what is held
        assert agent.wait(15) == 0
    assert blocks(5) == [f"[{n}] start\n  more {n}.1\n  more {n}.2" for n in range(5)]


LIMITED_CONFIG = """
server: {{http_listen_port: {port}, http_listen_address: 127.0.0.1}}
positions: {{filename: {positions}}}
clients:
  - url: "{url}/loki/api/v1/push"
    batchwait: 100ms
    batchsize: 8KB
    backoff_config: {{min_period: 100ms, max_period: 400ms, max_retries: 0}}
scrape_configs:
  - job_name: pods
    static_configs: [{{targets: [localhost], labels: {{job: pods, __path__: "{logs}/*.log"}}}}]
    relabel_configs: [{{source_labels: [job], target_label: team, replacement: t-$1}}]
    pipeline_stages: [{{cri: {{}}}}, {{json: {{expressions: {{level: level}}}}}}, {{labels: {{level: }}}}]
"""


def test_the_agent_backs_off_a_rate_limit_and_delivers_everything(tmp_path: Path,
                                                                  start_server: Callable[..., Server]) -> None:
    """A server whose tenant may ingest 10 KiB/s (bursts of 20 KiB) answers 429 to most of a
    60 KiB backlog; the agent retries with backoff until every line is in, each once."""
    server = start_server(PERMISSIVE.replace("ingestion_rate_mb: 1000", "ingestion_rate_mb: 0.01")
                          .replace("ingestion_burst_size_mb: 2000", "ingestion_burst_size_mb: 0.02"))
    logs = tmp_path / "logs"
    logs.mkdir()
    total = 1500
    (logs / "busy.log").write_text("".join(_cri(i) for i in range(total)))   # ~40 bytes of line each
    port = free_port()
    config = tmp_path / "promtail.yaml"
    config.write_text(LIMITED_CONFIG.format(port=port, positions=tmp_path / "positions.yaml", url=server.url,
                                            logs=logs))
    with open(tmp_path / "agent.log", "wb") as log:
        agent = subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "agent", f"-config.file={config}"],
                                 cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        found = _wait_for(server, total, timeout=60)
        assert sorted(found) == list(range(total))
        metrics = _metrics(f"http://127.0.0.1:{port}/metrics", until=lambda m: True)
        host = server.url.removeprefix("http://")
        assert metrics[f'promtail_request_duration_seconds_count{{host="{host}",status_code="429"}}'] > 0  # refused
        assert sum(v for k, v in metrics.items() if k.startswith("promtail_dropped_entries_total")) == 0
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0
