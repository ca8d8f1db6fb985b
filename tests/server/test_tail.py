"""Live tailing over a real server with a real WebSocket client (the `websockets` library)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from lokiarrow.exec.tail import MAX_HELD, Run, Tail, TailRequest
from lokiarrow.logql.ast import LogExpr
from lokiarrow.logql.parser import parse_expr
from tests.conftest import Server
from tests.server.pushing import push


def tail_url(server: Server, **params: Any) -> str:
    return f"ws://127.0.0.1:{server.port}/loki/api/v1/tail?{urlencode(params)}"


@contextmanager
def tailing(server: Server, query: str, **params: Any) -> Iterator[ClientConnection]:
    with connect(tail_url(server, query=query, **params), open_timeout=10) as ws:
        yield ws


def frame(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(ws.recv(timeout=timeout))
    return doc


def entries(doc: dict[str, Any]) -> list[tuple[dict[str, str], str, str]]:
    """A frame's entries as (labels, ts, line); Loki sends one stream object per entry."""
    out = []
    for stream in doc["streams"]:
        [[ts, line]] = stream["values"]
        out.append((stream["stream"], ts, line))
    return out


def receive_lines(ws: ClientConnection, count: int, timeout: float = 3.0) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < count:
        lines += [line for _, _, line in entries(frame(ws, max(deadline - time.monotonic(), 0.01)))]
    return lines


def assert_silent(ws: ClientConnection, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        ws.recv(timeout=seconds)


def now_ns() -> int:
    return time.time_ns()


def test_history_on_connect_is_the_last_limit_entries_oldest_first(client: httpx.Client, server: Server) -> None:
    base = now_ns() - 60 * 10**9
    push(client, {"app": "hist"}, [[base + i * 10**9, f"old {i}"] for i in range(5)])
    with tailing(server, '{app="hist"}', limit=3) as ws:
        doc = frame(ws)
        assert set(doc) == {"streams"}  # `dropped_entries` only when something was dropped
        got = entries(doc)
        assert [(ts, line) for _, ts, line in got] == [(str(base + i * 10**9), f"old {i}") for i in (2, 3, 4)]
        # history carries structured metadata as query_range does (Loki 3's detected_level)
        assert got[0][0] == {"app": "hist", "service_name": "hist", "detected_level": "unknown"}
        assert_silent(ws, 0.5)


def test_start_bounds_the_history(client: httpx.Client, server: Server) -> None:
    base = now_ns() - 120 * 10**9
    push(client, {"app": "since"}, [[base + i * 10**9, f"s {i}"] for i in range(4)])
    with tailing(server, '{app="since"}', start=str(base + 2 * 10**9)) as ws:
        assert receive_lines(ws, 2) == ["s 2", "s 3"]
        assert_silent(ws, 0.3)
    with tailing(server, '{app="since"}', start=str(base + 10 * 10**9)) as ws:
        assert_silent(ws, 0.5)
    with tailing(server, '{app="since"}', since="5m") as ws:
        assert receive_lines(ws, 4) == ["s 0", "s 1", "s 2", "s 3"]
    with tailing(server, '{app="since"}', since="1m") as ws:  # all four are two minutes old
        assert_silent(ws, 0.5)


def test_new_lines_arrive_within_a_second(client: httpx.Client, server: Server) -> None:
    with tailing(server, '{app="live"}') as ws:
        assert_silent(ws, 0.3)
        for i in range(3):
            ts = now_ns()
            sent = time.monotonic()
            push(client, {"app": "live"}, [[ts, f"new {i}"]])
            [(labels, got_ts, line)] = entries(frame(ws, timeout=1.0))
            assert time.monotonic() - sent < 1.0
            assert (got_ts, line) == (str(ts), f"new {i}")
            # without stages, Loki sends a pushed stream as it is: its labels, no metadata
            assert labels == {"app": "live", "service_name": "live"}


def test_history_then_live_without_repeats(client: httpx.Client, server: Server) -> None:
    base = now_ns() - 30 * 10**9
    push(client, {"app": "both"}, [[base + i, f"before {i}"] for i in range(3)])
    with tailing(server, '{app="both"}') as ws:
        assert receive_lines(ws, 3) == ["before 0", "before 1", "before 2"]
        push(client, {"app": "both"}, [[now_ns(), "after"]])
        assert receive_lines(ws, 1) == ["after"]
        assert_silent(ws, 0.5)


def test_pipeline_filters_and_labels_after_it(client: httpx.Client, server: Server) -> None:
    query = '{app="pipe"} |= "req" | json | level="error" | line_format "{{.msg}}"'
    with tailing(server, query) as ws:
        ts = now_ns()
        push(client, {"app": "pipe"}, [
            [ts, '{"level":"info","msg":"req fine"}'],
            [ts + 1, '{"level":"error","msg":"req failed"}'],
            [ts + 2, '{"level":"error","msg":"no match"}'],
            [ts + 3, 'req not json'],
        ])
        [(labels, got_ts, line)] = entries(frame(ws))
        assert (got_ts, line) == (str(ts + 1), "req failed")
        assert labels == {"app": "pipe", "service_name": "pipe", "level": "error", "msg": "req failed",
                          "detected_level": "error"}
        assert_silent(ws, 0.5)
    with tailing(server, query) as ws:  # the same entry as history: the same labels and line
        assert entries(frame(ws)) == [(labels, str(ts + 1), "req failed")]


def test_parse_errors_show_as_error_labels(client: httpx.Client, server: Server) -> None:
    with tailing(server, '{app="errs"} | json') as ws:
        ts = now_ns()
        push(client, {"app": "errs"}, [[ts, "not json"]])
        [(labels, _, line)] = entries(frame(ws))
        assert line == "not json"
        assert labels["__error__"] == "JSONParserErr"


def test_several_tails_at_once_each_get_their_own(client: httpx.Client, server: Server) -> None:
    with tailing(server, '{app="multi"}') as every, tailing(server, '{app="multi"} |= "odd"') as odd, \
            tailing(server, '{app="multi", team="b"}') as team_b:
        ts = now_ns()
        for i in range(6):
            push(client, {"app": "multi", "team": "a" if i < 3 else "b"}, [[ts + i, f"line {i} {'odd' if i % 2 else 'even'}"]])
        assert sorted(receive_lines(every, 6)) == [f"line {i} {'odd' if i % 2 else 'even'}" for i in range(6)]
        assert sorted(receive_lines(odd, 3)) == ["line 1 odd", "line 3 odd", "line 5 odd"]
        assert sorted(receive_lines(team_b, 3)) == ["line 3 odd", "line 4 even", "line 5 odd"]
        for ws in (every, odd, team_b):
            assert_silent(ws, 0.3)


def test_frames_hold_at_most_100_entries_in_time_order(client: httpx.Client, server: Server) -> None:
    base = now_ns() - 10 * 10**9
    push(client, {"app": "many"}, [[base + i, f"m {i:03d}"] for i in range(250)])
    with tailing(server, '{app="many"}', limit=1000) as ws:
        sizes, lines = [], []
        while len(lines) < 250:
            got = entries(frame(ws))
            sizes.append(len(got))
            lines += [line for _, _, line in got]
        assert sizes == [100, 100, 50]
        assert lines == [f"m {i:03d}" for i in range(250)]


def test_tailing_goes_on_across_a_flush(client: httpx.Client, server: Server) -> None:
    with tailing(server, '{app="flushed"}') as ws:
        push(client, {"app": "flushed"}, [[now_ns(), "before flush"]])
        assert receive_lines(ws, 1) == ["before flush"]
        assert client.post("/flush").status_code == 204
        push(client, {"app": "flushed"}, [[now_ns(), "after flush"]])
        assert receive_lines(ws, 1) == ["after flush"]
        assert_silent(ws, 0.3)


def test_delay_for_holds_entries_until_their_time_plus_delay(client: httpx.Client, server: Server) -> None:
    with tailing(server, '{app="late"}', delay_for=2) as ws:
        ts = now_ns()
        push(client, {"app": "late"}, [[ts, "delayed"]])
        assert_silent(ws, 1.2)
        assert receive_lines(ws, 1, timeout=2.0) == ["delayed"]
        assert now_ns() - ts >= 2 * 10**9


def test_closed_clients_free_their_slot_and_the_limit_is_lokis(client: httpx.Client, server: Server) -> None:
    def refused() -> str:
        with tailing(server, '{app="slots"}') as extra, pytest.raises(ConnectionClosedError) as closed:
            extra.recv(timeout=3)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        return closed.value.rcvd.reason

    with ExitStack() as stack:
        sockets = [stack.enter_context(tailing(server, '{app="slots"}')) for _ in range(10)]
        assert refused() == "max concurrent tail requests limit exceeded, count > limit (11 > 10)"
        sockets[0].close()
        sockets[1].socket.close()  # gone without a close frame
        time.sleep(0.3)
        sockets[:2] = [stack.enter_context(tailing(server, '{app="slots"}')) for _ in range(2)]
        assert refused() == "max concurrent tail requests limit exceeded, count > limit (11 > 10)"
        push(client, {"app": "slots"}, [[now_ns(), "still served"]])
        for ws in sockets:
            assert receive_lines(ws, 1) == ["still served"]


def test_metric_query_is_refused_after_the_upgrade_as_loki_does(server: Server) -> None:
    with tailing(server, 'count_over_time({app="x"}[1m])') as ws, pytest.raises(ConnectionClosedError) as closed:
        ws.recv(timeout=3)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "only log selector is supported")


@pytest.mark.parametrize(("params", "text"), [
    ({"query": '{app="x"'}, "parse error at line 1, col 9: syntax error: unexpected $end, expecting } or ,"),
    ({"query": ""}, "parse error : syntax error: unexpected $end"),
    ({"query": "{}"}, "parse error : queries require at least one regexp or equality matcher that does not have "
                      "an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but "
                      "app=~\".+\" will"),
    ({"query": '{app="x"}', "limit": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
    ({"query": '{app="x"}', "limit": "0"}, "limit must be a positive value"),
    ({"query": '{app="x"}', "delay_for": "6"}, "delay_for can't be greater than 5"),
    ({"query": '{app="x"}', "delay_for": "-1"}, "delay_for value -1 is out of range [0, 4294967295]"),
    ({"query": '{app="x"}', "delay_for": "soon"}, 'strconv.Atoi: parsing "soon": invalid syntax'),
    ({"query": '{app="x"}', "since": "a while"}, 'could not parse \'since\' parameter: not a valid duration string: "a while"'),
    ({"query": '{app="x"}', "start": "yesterday"},
     "could not parse 'start' parameter: strconv.ParseInt: parsing \"yesterday\": invalid syntax"),
])
def test_bad_parameters_answer_400_before_the_upgrade(server: Server, params: dict[str, str], text: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(tail_url(server, **params), open_timeout=10)
    response = refused.value.response
    assert response.status_code == 400
    assert response.body is not None and response.body.decode().strip() == text


def test_entries_beyond_what_a_tail_holds_are_dropped_and_reported() -> None:
    """The tail's own buffer, without a server: uvicorn buffers a slow client's frames itself (its
    WebSocket send does not wait for the socket), so a slow client cannot be made over loopback."""
    expr = parse_expr('{app="slow"}')
    assert isinstance(expr, LogExpr)
    labels = {"app": "slow"}

    async def run() -> list[dict[str, Any]]:
        tail = Tail(expr, TailRequest(start=0, limit=100))
        tail.hold(Run.of([(i, labels, "history") for i in range(150)]), history=True)
        tail.hold(Run.of([(10**6 + i, labels, f"live {i}") for i in range(MAX_HELD + 5)]))
        docs: list[dict[str, Any]] = []
        async for text in tail.frames():
            docs.append(orjson.loads(text))
            if sum(len(d["streams"]) for d in docs) == MAX_HELD + 100:
                tail.close()
        return docs

    docs = asyncio.run(run())
    assert len(docs[0]["streams"]) == 100 and docs[0]["streams"][0]["values"] == [["0", "history"]]
    # 150 history entries and the live ones up to MAX_HELD + limit are held; 55 live ones are not
    assert [d["timestamp"] for d in docs[0]["dropped_entries"]] == [str(10**6 + i) for i in range(MAX_HELD - 50, MAX_HELD + 5)]
    assert docs[0]["dropped_entries"][0]["labels"] == labels
    assert all("dropped_entries" not in d for d in docs[1:])


def test_each_tenant_tails_its_own_entries(start_server: Callable[..., Server]) -> None:
    srv = start_server(args=["-auth.enabled=true"])
    with pytest.raises(InvalidStatus) as refused:
        connect(tail_url(srv, query='{app="t"}'), open_timeout=10)
    assert refused.value.response.status_code == 401
    url = tail_url(srv, query='{app="t"}')
    with connect(url, additional_headers={"X-Scope-OrgID": "alpha"}) as alpha, \
            connect(url, additional_headers={"X-Scope-OrgID": "beta"}) as beta, srv.client() as http:
        body = {"streams": [{"stream": {"app": "t"}, "values": [[str(now_ns()), "for alpha"]]}]}
        r = http.post("/loki/api/v1/push", content=orjson.dumps(body),
                      headers={"Content-Type": "application/json", "X-Scope-OrgID": "alpha"})
        assert r.status_code == 204
        assert receive_lines(alpha, 1) == ["for alpha"]
        assert_silent(beta, 0.5)
