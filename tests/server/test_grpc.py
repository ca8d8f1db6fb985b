"""Loki's gRPC API on a real `lokiarrow serve`, called with grpcio: pushes through the same
validation and WAL as HTTP, queries answer what HTTP answers, tenants stay apart, refusals are
statuses with Loki's messages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from tests.conftest import PERMISSIVE, Server, free_port
from tests.server.grpc_client import LokiGrpc, entries
from tests.server.pushing import BASE_NS, query


@pytest.fixture
def served(start_server: Callable[..., Server]) -> Iterator[tuple[Server, str]]:
    port = free_port()
    server = start_server(PERMISSIVE + "auth_enabled: true\n", args=[f"-server.grpc-listen-port={port}"])
    yield server, f"127.0.0.1:{port}"


def _client(target: str, tenant: str | None, clients: list[LokiGrpc]) -> LokiGrpc:
    clients.append(LokiGrpc(target, tenant))
    return clients[-1]


@pytest.fixture
def grpc_client(served: tuple[Server, str]) -> Iterator[Callable[[str | None], LokiGrpc]]:
    clients: list[LokiGrpc] = []
    yield lambda tenant: _client(served[1], tenant, clients)
    for c in clients:
        c.close()


def test_pushed_over_grpc_answers_alike_over_http_and_grpc(served: tuple[Server, str],
                                                          grpc_client: Callable[[str | None], Any]) -> None:
    server, _ = served
    a = grpc_client("team-a")
    a.push({'{app="web", env="prod"}': [(BASE_NS + i, f"web {i}") for i in range(2500)],
            '{app="db"}': [(BASE_NS + 5, "db one"), (BASE_NS + 6, "db two")]})
    with server.client() as http:
        http.headers["X-Scope-OrgID"] = "team-a"
        answer = query(http, '{app="web"} |= "web 1"', limit=5000)
    over_http = sorted((int(ts), line) for s in answer["data"]["result"] for ts, line in s["values"])
    got = a.query('{app="web"} |= "web 1"', BASE_NS - 1, BASE_NS + 10**12, limit=5000)
    assert sorted((ts, line) for _, ts, line in entries(got)) == over_http and len(over_http) == 1111
    labels = {text for text, _, _ in entries(got)}
    assert labels == {'{app="web", detected_level="unknown", env="prod", service_name="web"}'}

    backward = entries(a.query('{app="web"}', BASE_NS - 1, BASE_NS + 10**12, limit=2500))
    assert [ts for _, ts, _ in backward] == [BASE_NS + i for i in reversed(range(2500))]
    assert len(a.query('{app="web"}', BASE_NS - 1, BASE_NS + 10**12, limit=2500)) == 3   # batches of 1000
    forward = entries(a.query('{app="db"}', BASE_NS - 1, BASE_NS + 10**12, backward=False))
    assert [line for _, _, line in forward] == ["db one", "db two"]

    span = (BASE_NS - 10**9, BASE_NS + 10**12)
    assert a.label(*span) == ["app", "env", "service_name"]
    assert a.label(*span, name="app") == ["db", "web"]
    assert a.label(*span, name="app", query='{env="prod"}') == ["web"]
    assert a.series(['{app=~".+"}'], *span) == [{"app": "db", "service_name": "db"},
                                                 {"app": "web", "env": "prod", "service_name": "web"}]


def test_tenants_stay_apart(grpc_client: Callable[[str | None], Any]) -> None:
    grpc_client("team-a").push({'{app="secret"}': [(BASE_NS, "for a only")]})
    b = grpc_client("team-b")
    span = (BASE_NS - 10**9, BASE_NS + 10**12)
    assert b.query('{app="secret"}', *span) == [] and b.label(*span) == []
    assert [line for _, _, line in entries(grpc_client("team-a").query('{app="secret"}', *span))] == ["for a only"]


def _refusal(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


def test_refusals_are_statuses_with_lokis_messages(served: tuple[Server, str],
                                                   grpc_client: Callable[[str | None], Any]) -> None:
    anonymous, a = grpc_client(None), grpc_client("team-a")
    span = (BASE_NS - 10**9, BASE_NS + 10**12)
    assert _refusal(lambda: anonymous.push({'{app="x"}': [(BASE_NS, "x")]})) == \
        (grpc.StatusCode.UNAUTHENTICATED, "no org id")
    assert _refusal(lambda: grpc_client("../etc").label(*span)) == \
        (grpc.StatusCode.INVALID_ARGUMENT, "tenant ID '../etc' contains unsupported character '/'")
    code, message = _refusal(lambda: a.push({'{app=x}': [(BASE_NS, "x")]}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "parse error" in message
    code, message = _refusal(lambda: a.push_raw(b"\xff\xff\xff"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "logproto.PushRequest" in message
    code, message = _refusal(lambda: a.query('rate({app="x"}[1m])', *span))
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, "only log queries are answered by Query")
    code, message = _refusal(lambda: a.query('{app="x"', *span))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("parse error")
    code, message = _refusal(lambda: a.label(BASE_NS, BASE_NS - 1))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "end is before start" in message
    # a push with one bad stream keeps the good one, as over HTTP, and says why
    crowded = "{" + ", ".join(f'l{i:02}="v"' for i in range(16)) + "}"   # max_label_names_per_series: 15
    code, message = _refusal(lambda: a.push({'{app="ok"}': [(BASE_NS, "kept")], crowded: [(BASE_NS, "refused")]}))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "has 16 label names; limit 15" in message
    assert [line for _, _, line in entries(a.query('{app="ok"}', *span))] == ["kept"]
    server, _ = served
    with server.client() as http:
        assert http.get("/ready").status_code == 200   # nothing of that hurt the server
