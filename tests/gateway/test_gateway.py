"""Writers and readers through the real gateway (NGINX from Debian) in front of a real server
with `auth_enabled`: tenants come from the login alone, bad logins are refused, floods get 429s
and lose nothing accepted, tails pass the WebSocket upgrade, and gRPC (Loki's Pusher and Querier)
goes through the HTTP/2 listener with the same logins and tenants."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
import websockets

from tests.conftest import Server, free_port
from tests.gateway.gateway import Gateway
from tests.server.grpc_client import LokiGrpc, entries
from tests.server.pushing import BASE_NS

USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
TENANTS = {"alice": "team-a", "carol": "team-a"}  # bob is his own tenant
WINDOW = {"start": BASE_NS - 10**12, "end": BASE_NS + 10**13}


GRPC_PORT = free_port()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server(args=["-auth.enabled=true", f"-server.grpc-listen-port={GRPC_PORT}"])


@pytest.fixture
def gateway(tmp_path: Path, server: Server) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "gw", server.url, USERS, TENANTS, grpc_upstream=f"127.0.0.1:{GRPC_PORT}").start()
    yield gw
    gw.stop()


def _push(client: httpx.Client, line: str, ts: int = BASE_NS, **headers: str) -> httpx.Response:
    body = {"streams": [{"stream": {"app": "gw"}, "values": [[str(ts), line]]}]}
    return client.post("/loki/api/v1/push", content=orjson.dumps(body),
                       headers={"Content-Type": "application/json", **headers})


def _lines(client: httpx.Client, **headers: str) -> list[str]:
    r = client.get("/loki/api/v1/query_range", params={"query": '{app="gw"}', "limit": 5000, **WINDOW},
                   headers=headers)
    assert r.status_code == 200, r.text
    return sorted(v[1] for s in r.json()["data"]["result"] for v in s["values"])


def _as(gateway: Gateway, user: str, password: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, auth=(user, password or USERS[user]), timeout=30)


def test_tenants_come_from_the_login_alone(gateway: Gateway, server: Server) -> None:
    with _as(gateway, "alice") as alice, _as(gateway, "carol") as carol, _as(gateway, "bob") as bob:
        # alice claims team-b: the gateway replaces the header with her tenant
        assert _push(alice, "from alice", **{"X-Scope-OrgID": "team-b"}).status_code == 204
        assert _push(bob, "from bob", ts=BASE_NS + 1).status_code == 204
        assert _lines(alice) == _lines(carol) == ["from alice"]  # carol shares team-a
        assert _lines(bob, **{"X-Scope-OrgID": "team-a"}) == ["from bob"]
    with server.client() as direct:  # behind the gateway, each line sits in its tenant alone
        assert _lines(direct, **{"X-Scope-OrgID": "team-a"}) == ["from alice"]
        assert _lines(direct, **{"X-Scope-OrgID": "bob"}) == ["from bob"]
        assert _lines(direct, **{"X-Scope-OrgID": "team-b"}) == []


def test_bad_logins_are_refused(gateway: Gateway) -> None:
    with _as(gateway, "alice", "wrong") as wrong:
        assert _push(wrong, "nope").status_code == 401
        assert wrong.get("/loki/api/v1/labels").status_code == 401
    with httpx.Client(base_url=gateway.url, timeout=30) as anonymous:
        assert anonymous.get("/loki/api/v1/labels", headers={"X-Scope-OrgID": "team-a"}).status_code == 401
    with _as(gateway, "alice") as alice:
        assert _lines(alice) == []


def test_a_flood_gets_429_and_loses_nothing_accepted(tmp_path: Path, server: Server) -> None:
    gw = Gateway(tmp_path / "slow", server.url, USERS, TENANTS, tenant_rate="5r/s", tenant_burst=5).start()
    try:
        accepted, statuses = [], []
        with _as(gw, "alice") as alice:
            for i in range(40):
                r = _push(alice, f"line {i:02d}", ts=BASE_NS + i)
                statuses.append(r.status_code)
                if r.status_code == 204:
                    accepted.append(f"line {i:02d}")
            assert set(statuses) == {204, 429}
            assert 5 <= len(accepted) < 40
            # the limit is per tenant: bob is not slowed by alice's flood
            with _as(gw, "bob") as bob:
                assert _push(bob, "bob meanwhile").status_code == 204
            time.sleep(1.0)
            assert _lines(alice) == accepted
    finally:
        gw.stop()


def test_bad_logins_spend_the_client_budget(tmp_path: Path, server: Server) -> None:
    """limit_req runs before auth_basic: a password-guessing flood is slowed like any other."""
    gw = Gateway(tmp_path / "guess", server.url, USERS, TENANTS, client_rate="5r/s", client_burst=5).start()
    try:
        with _as(gw, "alice", "guess") as guesser:
            statuses = {guesser.get("/loki/api/v1/labels").status_code for _ in range(30)}
        assert statuses == {401, 429}
    finally:
        gw.stop()


def test_tail_passes_through_the_gateway(gateway: Gateway) -> None:
    async def tail() -> list[Any]:
        token = base64.b64encode(b"alice:alice-pw").decode()
        url = gateway.url.replace("http://", "ws://") + '/loki/api/v1/tail?query={app="gw"}'
        async with websockets.connect(url, additional_headers={"Authorization": f"Basic {token}"}) as ws:
            await asyncio.sleep(0.3)
            with _as(gateway, "alice") as alice:
                assert _push(alice, "live line", ts=time.time_ns()).status_code == 204
            frame = orjson.loads(await asyncio.wait_for(ws.recv(), timeout=5))
            return [v[1] for s in frame["streams"] for v in s["values"]]

    assert asyncio.run(tail()) == ["live line"]


class _GrpcAs(LokiGrpc):
    """A gRPC client logged in at the gateway (basic auth in the call metadata), claiming a tenant."""

    def __init__(self, gateway: Gateway, user: str, password: str, claimed: str | None = None) -> None:
        super().__init__(gateway.grpc_target, claimed)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.metadata = [*self.metadata, ("authorization", f"Basic {token}")]


def test_grpc_through_the_gateway_with_logins_and_tenants(gateway: Gateway, server: Server) -> None:
    span = (BASE_NS - 10**9, BASE_NS + 10**12)
    alice = _GrpcAs(gateway, "alice", USERS["alice"], claimed="team-b")   # the claim is replaced
    bob = _GrpcAs(gateway, "bob", USERS["bob"])
    wrong = _GrpcAs(gateway, "alice", "wrong")
    try:
        alice.push({'{app="gw"}': [(BASE_NS, "grpc from alice")]})
        bob.push({'{app="gw"}': [(BASE_NS + 1, "grpc from bob")]})
        assert [line for _, _, line in entries(alice.query('{app="gw"}', *span))] == ["grpc from alice"]
        assert [line for _, _, line in entries(bob.query('{app="gw"}', *span))] == ["grpc from bob"]
        assert alice.label(*span, name="app") == ["gw"]
        with pytest.raises(grpc.RpcError) as refused:
            wrong.push({'{app="gw"}': [(BASE_NS + 2, "never")]})
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        for client in (alice, bob, wrong):
            client.close()
    with server.client() as direct:   # behind the gateway: alice's line in team-a, none in team-b
        assert _lines(direct, **{"X-Scope-OrgID": "team-a"}) == ["grpc from alice"]
        assert _lines(direct, **{"X-Scope-OrgID": "team-b"}) == []
