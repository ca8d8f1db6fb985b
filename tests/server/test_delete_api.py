"""Loki's log deletion API on a real server: requests are added, listed and cancelled with Loki's
parameters and messages, and once processed by the compactor the deleted lines are gone from the
chunk files, from query answers and from index/stats, and nothing else is."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS, lines, push, query

DELETING = PERMISSIVE + """compactor:
  retention_enabled: true
  compaction_interval: {interval}
  retention_delete_delay: 0s
  delete_request_cancel_period: {cancel}
"""
START, END = str(BASE_NS // 10**9 - 60), str(BASE_NS // 10**9 + 3600)


def _delete(http: httpx.Client, **params: str) -> httpx.Response:
    return http.post("/loki/api/v1/delete", params=params)


def _stats(http: httpx.Client, q: str) -> dict[str, int]:
    r = http.get("/loki/api/v1/index/stats", params={"query": q, "start": BASE_NS - 10**12, "end": BASE_NS + 10**13})
    assert r.status_code == 200, r.text
    return r.json()


def test_without_retention_the_api_is_off(server: Server) -> None:
    with server.client() as http:
        r = _delete(http, query='{app="x"}', start=START)
        assert (r.status_code, r.text.strip()) == (400, "Retention is not enabled")
        assert http.get("/loki/api/v1/delete").status_code == 400


@pytest.mark.parametrize(("params", "message"), [
    ({"start": START}, "query not set"),
    ({"query": '{app="x"', "start": START}, "invalid query expression"),
    ({"query": '{app="x"}'}, "start time not set"),
    ({"query": '{app="x"}', "start": "yesterday"}, "invalid start time: require unix seconds or RFC3339 format"),
    ({"query": '{app="x"}', "start": "12345"}, "invalid start time: require unix seconds or RFC3339 format"),
    ({"query": '{app="x"}', "start": START, "end": "nope"}, "invalid end time: require unix seconds or RFC3339 format"),
    ({"query": '{app="x"}', "start": START, "end": str(int(time.time()) + 3600)}, "deletes in the future are not allowed"),
    ({"query": '{app="x"}', "start": END, "end": START}, "start time can't be greater than or equal to end time"),
])
def test_bad_requests_get_lokis_messages(params: dict[str, str], message: str,
                                         start_server: Callable[..., Server]) -> None:
    server = start_server(DELETING.format(interval="1h", cancel="24h"))
    with server.client() as http:
        r = _delete(http, **params)
        assert (r.status_code, r.text.strip()) == (400, message)


def test_requests_are_listed_and_cancelled_as_lokis(start_server: Callable[..., Server]) -> None:
    server = start_server(DELETING.format(interval="1h", cancel="1s"))
    with server.client() as http:
        first = _delete(http, query='{app="x"} |= "secret"', start=START, end=END)
        assert first.status_code == 204
        second = _delete(http, query='{app="y"}', start="2026-01-19T21:00:00Z")
        assert second.status_code == 204
        listed = http.get("/loki/api/v1/delete").json()
        assert [(r["request_id"], r["query"], r["status"], r["start_time"], r["user_id"]) for r in listed] == [
            (first.headers["X-Delete-Request-ID"], '{app="x"} |= "secret"', "received", float(START), ""),
            (second.headers["X-Delete-Request-ID"], '{app="y"}', "received", 1768856400.0, "")]
        assert listed[0]["end_time"] == float(END) and listed[0]["created_at"] <= time.time()
        overlapping = http.get("/loki/api/v1/delete", params={"start": str(BASE_NS // 10**9 + 7200),
                                                               "end": str(BASE_NS // 10**9 + 7300)}).json()
        assert [r["query"] for r in overlapping] == ['{app="y"}']
        r = http.delete("/loki/api/v1/delete", params={"request_id": "nosuchid"})
        assert (r.status_code, r.text.strip()) == (404, "could not find delete request with given id")
        assert http.delete("/loki/api/v1/delete", params={"request_id": first.headers["X-Delete-Request-ID"]}
                           ).status_code == 204
        time.sleep(1.2)                                   # past the cancel period: force needed
        late = http.delete("/loki/api/v1/delete", params={"request_id": second.headers["X-Delete-Request-ID"]})
        assert (late.status_code, late.text.strip()) == (400, (
            "Cancellation of partially completed delete request or delete request past the deadline of 1s since its "
            "creation is not allowed. To force, use the ?force query parameter"))
        assert http.delete("/loki/api/v1/delete", params={"request_id": second.headers["X-Delete-Request-ID"],
                                                          "force": "true"}).status_code == 204
        assert http.get("/loki/api/v1/delete").json() == []


def test_processed_requests_remove_exactly_their_lines(start_server: Callable[..., Server]) -> None:
    server = start_server(DELETING.format(interval="1s", cancel="0s"))
    with server.client() as http:
        for app in ("x", "y"):
            push(http, {"app": app}, [[BASE_NS + i * 10**9, f"{app} {'secret' if i % 3 == 0 else 'plain'} {i}"]
                                      for i in range(30)])
        before_x, before_y = _stats(http, '{app="x"}'), _stats(http, '{app="y"}')
        added = _delete(http, query='{app="x"} |= "secret"', start=START, end=END)
        assert added.status_code == 204
        deadline = time.monotonic() + 30
        while http.get("/loki/api/v1/delete").json()[0]["status"] != "processed":
            assert time.monotonic() < deadline, "the request was never processed"
            time.sleep(0.2)
        x = lines(query(http, '{app="x"}', limit=1000))
        assert len(x) == 20 and not [line for line in x if "secret" in line]
        y = lines(query(http, '{app="y"}', limit=1000))
        assert len(y) == 30 and len([line for line in y if "secret" in line]) == 10
        assert _stats(http, '{app="x"}')["entries"] == before_x["entries"] - 10
        assert _stats(http, '{app="y"}') == before_y
    deadline = time.monotonic() + 30                       # the replaced files go at the next run
    while [line for line in _lines_on_disk(server.data_dir) if line.startswith("x secret")]:
        assert time.monotonic() < deadline, "the deleted lines stay on disk"
        time.sleep(0.2)
    assert len(_lines_on_disk(server.data_dir)) == 50


def _lines_on_disk(data: Path) -> list[str]:
    """Every line in the chunk files (one the compactor removes meanwhile is skipped)."""
    found = []
    for path in (data / "fake" / "chunks").glob("day=*/*.parquet"):
        try:
            found += pq.read_table(path, columns=["line"]).column("line").to_pylist()
        except FileNotFoundError:
            continue
    return found
