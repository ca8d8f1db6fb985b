"""The compactor in its processes: inside `serve` on its timer while queries go on, and
`lokiarrow compact` killed at each of its steps, after which the store answers as before and the
next run finishes the work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PERMISSIVE, ROOT, Server
from tests.server.pushing import BASE_NS, push, query

HOUR = 3600 * 10**9
LATE = BASE_NS + 10 * HOUR   # where the pushes during compaction go: an hour of its own
QUERIES = ['{app=~".+"}', '{app="web"} |= "error"', 'sum by (app) (count_over_time({app=~".+"}[10m]))',
           'sum by (level) (count_over_time({app=~".+"} | json [1h]))']


def _fill(server: Server, flushes: int = 12) -> None:
    with server.client() as http:
        for f in range(flushes):
            for app in ("web", "db"):
                push(http, {"app": app}, [[BASE_NS + (f * 40 + i) * 10**9 * 30,
                                            json.dumps({"level": ("info", "error")[i % 2], "n": i})]
                                           for i in range(40)])
            assert http.post("/flush").status_code == 204


def _answers(server: Server) -> list[Any]:
    out = []
    with server.client() as http:
        for q in QUERIES:
            answer = query(http, q, start=BASE_NS - HOUR, end=BASE_NS + 6 * HOUR, limit=5000, step="60s")
            out.append(sorted(json.dumps(s, sort_keys=True) for s in answer["data"]["result"]))
    return out


def _chunks(data: Path) -> list[Path]:
    return sorted((data / "fake" / "chunks").glob("day=*/*.parquet"))


def _one_per_hour(data: Path, but: int | None = None) -> bool:
    """Is there one chunk file per hour of data (leaving out the hour of `but`, in ns)?"""
    skip = f"-h{but // HOUR % 24:02d}.parquet" if but is not None else None
    files = [p for p in _chunks(data) if skip is None or not p.name.endswith(skip)]
    return len(files) == len({p.name.split("-h")[-1] for p in files})


def _compact(data: Path, config: Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOKIARROW_FAILPOINT"}
    if failpoint:
        env["LOKIARROW_FAILPOINT"] = f"compactor:{failpoint}"
    return subprocess.run([sys.executable, "-m", "lokiarrow.cli", "compact", f"-config.file={config}",
                           f"-common.path-prefix={data}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_serve_compacts_on_its_timer_while_queries_go_on(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE + "compactor:\n  compaction_interval: 1s\n  retention_delete_delay: 3s\n")
    _fill(server)
    before = _answers(server)
    seen: list[Any] = []
    stop = threading.Event()

    pushed: list[int] = []

    def ask() -> None:
        while not stop.is_set():
            seen.append(_answers(server))

    def write() -> None:   # pushes and flushes go on too, into other streams
        with server.client() as http:
            while not stop.is_set():
                n = len(pushed)
                push(http, {"job": "late"}, [[LATE + n * 10**9, f"late {n}"]])
                pushed.append(n)
                if n % 5 == 0:
                    assert http.post("/flush").status_code == 204

    workers = [threading.Thread(target=ask), threading.Thread(target=write)]
    for w in workers:
        w.start()
    try:
        deadline = time.monotonic() + 30
        while not (merged := _one_per_hour(server.data_dir, but=LATE)) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)    # and a run more, with the writes
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert merged                                                  # one file per hour at some point
    assert seen and all(answer == before for answer in seen)       # every answer during the runs
    assert _answers(server) == before
    with server.client() as http:
        late = query(http, '{job="late"}', start=LATE - HOUR, end=LATE + 6 * HOUR, limit=5000)
        assert sorted(int(line.split()[1]) for s in late["data"]["result"] for _, line in s["values"]) == pushed


@pytest.mark.parametrize("step", ["written", "published", "swapped", "collecting"])
def test_a_run_killed_at_any_step_leaves_a_correct_store(step: str, start_server: Callable[..., Server],
                                                          tmp_path: Path) -> None:
    config = tmp_path / "compact.yaml"
    config.write_text("compactor:\n  retention_delete_delay: 0s\n")
    data = tmp_path / "store"
    server = start_server(data_dir=data)
    _fill(server, flushes=6)
    before = _answers(server)
    server.stop()
    if step == "collecting":   # something to collect: the files a finished run replaced
        assert _compact(data, config).returncode == 0
    killed = _compact(data, config, failpoint=step)
    assert killed.returncode == 137, killed.stderr
    server.start()
    assert _answers(server) == before
    server.stop()
    finished = _compact(data, config)
    assert finished.returncode == 0, finished.stderr
    again = _compact(data, config)                        # collects what the finished run replaced
    assert again.returncode == 0 and "0 chunk files merged" in again.stdout
    server.start()
    assert _answers(server) == before
    assert _one_per_hour(data)
    assert len(list((data / "fake" / "index").glob("day=*/*.parquet"))) == 1


def test_compact_refuses_a_store_a_server_holds(start_server: Callable[..., Server], tmp_path: Path) -> None:
    server = start_server()
    config = tmp_path / "compact.yaml"
    config.write_text("{}\n")
    refused = _compact(server.data_dir, config)
    assert refused.returncode == 1 and "is in use by lokiarrow process" in refused.stderr


RETAINING = PERMISSIVE + """  retention_period: 7d
compactor:
  retention_enabled: true
  compaction_interval: 1s
  retention_delete_delay: 0s
"""


def test_serve_applies_retention_per_tenant_rules(start_server: Callable[..., Server], tmp_path: Path) -> None:
    now = time.time_ns()
    day = 24 * HOUR
    server = start_server(RETAINING.replace("  retention_period: 7d\n", "  retention_period: 7d\n"
                                            "  retention_stream:\n"
                                            "    - {selector: '{app=\"keep\"}', priority: 1, period: 30d}\n"))
    with server.client() as http:
        for app in ("keep", "drop"):
            push(http, {"app": app}, [[now - 10 * day, f"{app} old"], [now - HOUR, f"{app} new"]])
        assert http.post("/flush").status_code == 204

    def lines() -> list[str]:
        with server.client() as http:
            answer = query(http, '{app=~".+"}', start=now - 20 * day, end=now, limit=100)
        return sorted(line for s in answer["data"]["result"] for _, line in s["values"])

    deadline = time.monotonic() + 30
    while "drop old" in lines() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lines() == ["drop new", "keep new", "keep old"]   # the 30-day rule keeps its stream
    old_day = time.strftime("day=%Y-%m-%d", time.gmtime((now - 10 * day) // 10**9))
    deadline = time.monotonic() + 30
    while len(list((server.data_dir / "fake" / "chunks" / old_day).glob("*.parquet"))) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(list((server.data_dir / "fake" / "chunks" / old_day).glob("*.parquet"))) == 1   # keep's alone


def test_a_retention_rule_loki_refuses_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    bad = RETAINING.replace("  retention_period: 7d\n", "  retention_period: 7d\n  retention_stream:\n"
                            "    - {selector: '{app=\"x\"}', period: 1h}\n")
    config.write_text(bad)
    run = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "serve", f"-config.file={config}",
                          f"-common.path-prefix={tmp_path / 'data'}", "-server.http-listen-port=0",
                          "-server.grpc-listen-port=0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "retention period must be >= 24h" in run.stderr
