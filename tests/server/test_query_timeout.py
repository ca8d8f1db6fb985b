"""`query_timeout`: a query past its tenant's timeout answers 504 with Loki's words, and its work stops."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from lokiarrow.exec.duck import DEADLINE_EXCEEDED, Deadline, QueryTimeout, check_deadline, cursor
from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS

DAY_NS = 86_400 * 10**9
ROWS = 90_000            # under the head's flush threshold: no flush runs while CPU time is measured
# untimed, this takes seconds: 8640 steps of a 24h window over every row
HEAVY = {"query": 'sum(count_over_time({app="heavy"} [24h]))', "start": BASE_NS, "end": BASE_NS + DAY_NS,
         "step": "10s"}
AROUND = {"start": BASE_NS - 10**9, "end": BASE_NS + DAY_NS}
# every endpoint Loki bounds by query_timeout, with parameters that succeed in time
ENDPOINTS = [
    ("/loki/api/v1/query_range", {"query": '{app="small"}', **AROUND}),
    ("/loki/api/v1/query", {"query": 'count_over_time({app="small"}[1h])', "time": BASE_NS + 10**9}),
    ("/loki/api/v1/labels", AROUND),
    ("/loki/api/v1/label/app/values", AROUND),
    ("/loki/api/v1/series", {"match[]": '{app="small"}', **AROUND}),
    ("/loki/api/v1/index/stats", {"query": '{app="small"}', **AROUND}),
    ("/loki/api/v1/index/volume", {"query": '{app="small"}', **AROUND}),
    ("/loki/api/v1/index/volume_range", {"query": '{app="small"}', "step": "1h", **AROUND}),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """limits_config's query_timeout is 300ms (time to start the heavy query's DuckDB work, not to
    end it); `hasty` has 1ns, `patient` Loki's 1m and `deserted` none."""
    folder = tmp_path_factory.mktemp("timeout")
    overrides = folder / "overrides.yaml"
    overrides.write_text("overrides:\n  hasty:\n    query_timeout: 1ns\n  patient:\n    query_timeout: 1m\n"
                         "  deserted:\n    query_timeout: 0\n")
    (folder / "data").mkdir()
    config = PERMISSIVE + f"  query_timeout: 300ms\nruntime_config:\n  file: {overrides}\n"
    srv = Server(folder / "data", config, ["-auth.enabled=true"]).start()
    for tenant in ("hasty", "patient", "slow"):
        _push(srv, tenant, "small", [(BASE_NS + i * 10**9, f"line {i}") for i in range(10)])
    step = DAY_NS // ROWS
    for tenant in ("slow", "deserted"):
        for first in range(0, ROWS, 30_000):
            _push(srv, tenant, "heavy", [(BASE_NS + i * step, f"user={i % 977} msg=hello{i}")
                                         for i in range(first, first + 30_000)])
    yield srv
    srv.kill()



def _push(server: Server, tenant: str, app: str, entries: list[tuple[int, str]]) -> None:
    body = {"streams": [{"stream": {"app": app}, "values": [[str(ts), line] for ts, line in entries]}]}
    with server.client(tenant) as client:
        r = client.post("/loki/api/v1/push", content=orjson.dumps(body), headers={"Content-Type": "application/json"})
        assert r.status_code == 204, r.text


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _assert_timed_out(r: httpx.Response) -> None:
    assert r.status_code == 504, r.text
    assert r.text.strip() == DEADLINE_EXCEEDED
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(("path", "params"), ENDPOINTS)
def test_every_query_endpoint_keeps_to_the_tenants_timeout(server: Server, path: str, params: dict[str, Any]) -> None:
    with server.client("hasty") as hasty, server.client("patient") as patient:
        _assert_timed_out(hasty.get(path, params=params))
        r = patient.get(path, params=params)
        assert r.status_code == 200, r.text


def test_a_query_past_its_timeout_is_stopped_and_the_server_answers_at_once(server: Server) -> None:
    assert server.proc is not None
    with server.client("slow") as slow, server.client("patient") as patient:
        _assert_timed_out(slow.get("/loki/api/v1/query_range", params=HEAVY))
        # the next request is answered, by a server whose worker is not still running the query
        r = patient.get("/loki/api/v1/query_range", params={"query": '{app="small"}', "limit": 3, **AROUND})
        assert r.status_code == 200 and len(r.json()["data"]["result"][0]["values"]) == 3
        time.sleep(0.5)
        used = _cpu_seconds(server.proc.pid)
        time.sleep(2)
        assert _cpu_seconds(server.proc.pid) - used < 1.0, "the abandoned query kept the server busy"


def _stopped(server: Server, reason: str) -> float:
    with server.client() as client:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(f'lokiarrow_query_work_stopped_total{{reason="{reason}"}}'):
                return float(line.split()[-1])
    return 0.0


def test_a_query_whose_client_goes_away_is_stopped(server: Server) -> None:
    """`deserted` has no timeout: only the client's leaving can stop its heavy query."""
    assert server.proc is not None
    before = _stopped(server, "client disconnected")
    with server.client("deserted") as deserted, pytest.raises(httpx.ReadTimeout):
        deserted.get("/loki/api/v1/query_range", params=HEAVY, timeout=0.3)
    deadline = time.monotonic() + 30
    while _stopped(server, "client disconnected") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stopped(server, "client disconnected") == before + 1
    used = _cpu_seconds(server.proc.pid)
    time.sleep(2)
    assert _cpu_seconds(server.proc.pid) - used < 1.0, "the deserted query kept the server busy"
    with server.client("deserted") as deserted:     # the same query, waited for, answers
        r = deserted.get("/loki/api/v1/query_range", params=HEAVY)
        assert r.status_code == 200 and r.json()["data"]["result"]
    assert _stopped(server, "client disconnected") == before + 1


# the Deadline itself, on DuckDB work in a thread, as the server runs it

LONG_SQL = "SELECT count(*) FROM range(100000000000) t(x) WHERE x % 7 = 3"   # minutes of work


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_expiring_a_deadline_interrupts_duckdb_and_leaves_the_cursor_usable() -> None:
    deadline = Deadline(60 * 10**9)
    results: list[object] = []

    def work() -> object:
        results.append(deadline.run(lambda: cursor().sql(LONG_SQL).fetchall()))
        return cursor().sql("SELECT 42").fetchall()     # the same thread's cursor, after the deadline

    thread, out = _in_thread(work)
    time.sleep(0.3)
    deadline.expire()
    thread.join(60)
    assert not thread.is_alive(), "the DuckDB query was not interrupted"
    assert isinstance(out.get("error"), QueryTimeout) and results == []
    late = Deadline(60 * 10**9)
    thread, out = _in_thread(lambda: late.run(lambda: cursor().sql("SELECT 1").fetchall()))
    thread.join(60)
    late.expire()                                        # after the work: changes nothing
    assert out == {"value": [(1,)]}


def test_a_deadline_that_has_passed_stops_work_at_its_next_step() -> None:
    steps: list[int] = []

    def work() -> None:
        for i in range(1000):
            check_deadline()
            steps.append(i)
            time.sleep(0.001)

    with pytest.raises(QueryTimeout):
        Deadline(20 * 10**6).run(work)
    assert 0 < len(steps) < 1000
    with pytest.raises(QueryTimeout):
        Deadline(0).run(steps.clear)                      # nothing runs once it has passed
    assert steps
    check_deadline()                                      # outside a deadline: no-op
