"""The gateway in front of replica pools (the simple scalable deployment): pushes spread over the
writers, queries go to the readers, delete requests to the backend, and a replica that is down
costs no request while another of its pool is up. The replicas are ordinary `lokiarrow serve`
servers with `auth_enabled` (the gateway sets X-Scope-OrgID), each holding only what reached it,
so asking each one directly shows where the gateway sent what."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import PERMISSIVE, Server, free_port
from tests.gateway.gateway import Gateway
from tests.server.grpc_client import LokiGrpc, entries
from tests.server.pushing import BASE_NS

USERS = {"alice": "alice-pw"}
TENANT = "team-a"
WINDOW = {"start": BASE_NS - 10**12, "end": BASE_NS + 10**13}
SPAN = (BASE_NS - 10**9, BASE_NS + 10**12)
RETENTION = PERMISSIVE + "compactor:\n  retention_enabled: true\n"   # the delete API needs it


@dataclass
class Replica:
    server: Server
    grpc: str   # HOST:PORT of its gRPC listener


@dataclass
class Cluster:
    writers: list[Replica]
    readers: list[Replica]
    backend: Replica
    gateway: Gateway


@pytest.fixture
def cluster(tmp_path: Path, start_server: Callable[..., Server]) -> Iterator[Cluster]:
    def replica(config: str = PERMISSIVE) -> Replica:
        port = free_port()
        server = start_server(config, args=["-auth.enabled=true", f"-server.grpc-listen-port={port}"])
        return Replica(server, f"127.0.0.1:{port}")

    writers, readers, backend = [replica(), replica()], [replica(), replica()], replica(RETENTION)
    gateway = Gateway(tmp_path / "gw", backend.server.url, USERS, {"alice": TENANT},
                      writers=[w.server.url for w in writers], readers=[r.server.url for r in readers],
                      backend=[backend.server.url], grpc_writers=[w.grpc for w in writers],
                      grpc_readers=[r.grpc for r in readers]).start()
    yield Cluster(writers, readers, backend, gateway)
    gateway.stop()


def _alice(gateway: Gateway) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, auth=("alice", USERS["alice"]), timeout=30)


def _push(client: httpx.Client, line: str, ts: int = BASE_NS) -> httpx.Response:
    body = {"streams": [{"stream": {"app": "pool"}, "values": [[str(ts), line]]}]}
    return client.post("/loki/api/v1/push", content=orjson.dumps(body), headers={"Content-Type": "application/json"})


def _lines(client: httpx.Client, **headers: str) -> list[str]:
    r = client.get("/loki/api/v1/query_range", params={"query": '{app="pool"}', "limit": 5000, **WINDOW},
                   headers=headers)
    assert r.status_code == 200, r.text
    return sorted(v[1] for s in r.json()["data"]["result"] for v in s["values"])


def _held(replica: Replica) -> list[str]:
    """The lines a replica holds for the tenant, asked directly."""
    with replica.server.client() as direct:
        return _lines(direct, **{"X-Scope-OrgID": TENANT})


def _push_directly(replica: Replica, line: str) -> None:
    with replica.server.client() as direct:
        direct.headers["X-Scope-OrgID"] = TENANT
        r = _push(direct, line, ts=BASE_NS + 10**9)
        assert r.status_code == 204, r.text


def test_pushes_spread_over_the_writers_and_queries_go_to_the_readers(cluster: Cluster) -> None:
    for i, reader in enumerate(cluster.readers):
        _push_directly(reader, f"held by reader {i}")
    sent = [f"line {i:02d}" for i in range(10)]
    with _alice(cluster.gateway) as alice:
        for i, line in enumerate(sent):
            assert _push(alice, line, ts=BASE_NS + i).status_code == 204
        held = [_held(w) for w in cluster.writers]
        assert all(held), f"a writer got no push: {held}"
        assert sorted(held[0] + held[1]) == sent   # each line on one writer, none lost
        assert all(_held(r) == [f"held by reader {i}"] for i, r in enumerate(cluster.readers))
        assert _held(cluster.backend) == []
        # queries: answered by the readers (their lines, never the writers'), both taking turns
        answers = {tuple(_lines(alice)) for _ in range(6)}
        assert answers == {("held by reader 0",), ("held by reader 1",)}


def test_delete_requests_reach_the_backend(cluster: Cluster) -> None:
    with _alice(cluster.gateway) as alice:
        added = alice.post("/loki/api/v1/delete", params={"query": '{app="pool"}', "start": "1700000000"})
        assert added.status_code == 204, added.text   # readers and writers answer 400: no retention there
        listed = alice.get("/loki/api/v1/delete")
        assert listed.status_code == 200, listed.text
        [request] = listed.json()
        assert request["query"] == '{app="pool"}' and request["request_id"] == added.headers["X-Delete-Request-ID"]
        with cluster.backend.server.client() as direct:
            assert direct.get("/loki/api/v1/delete", headers={"X-Scope-OrgID": TENANT}).json() == [request]
        cancelled = alice.delete("/loki/api/v1/delete", params={"request_id": request["request_id"]})
        assert cancelled.status_code == 204, cancelled.text
        assert alice.get("/loki/api/v1/delete").json() == []
    with cluster.readers[0].server.client() as reader:   # what a reader would have answered
        refused = reader.get("/loki/api/v1/delete", headers={"X-Scope-OrgID": TENANT})
        assert (refused.status_code, refused.text) == (400, "Retention is not enabled\n")


def test_a_killed_writer_costs_no_push(cluster: Cluster) -> None:
    down, up = cluster.writers
    down.server.kill()
    sent = [f"line {i:02d}" for i in range(8)]
    with _alice(cluster.gateway) as alice:
        assert [_push(alice, line, ts=BASE_NS + i).status_code for i, line in enumerate(sent)] == [204] * 8
    assert _held(up) == sent


def test_a_killed_reader_costs_no_query(cluster: Cluster) -> None:
    for i, reader in enumerate(cluster.readers):
        _push_directly(reader, f"held by reader {i}")
    cluster.readers[0].server.kill()
    with _alice(cluster.gateway) as alice:
        assert [_lines(alice) for _ in range(6)] == [["held by reader 1"]] * 6
        assert alice.get("/ready").status_code == 200


def test_grpc_pushes_go_to_the_writers_and_queries_to_the_readers(cluster: Cluster) -> None:
    _push_directly(cluster.readers[1], "held by reader 1")
    cluster.readers[0].server.kill()
    client = LokiGrpc(cluster.gateway.grpc_target)
    client.metadata = [("authorization", "Basic YWxpY2U6YWxpY2UtcHc=")]   # alice:alice-pw
    try:
        for i in range(6):
            client.push({'{app="pool"}': [(BASE_NS + i, f"grpc {i}")]})
        held = [_held(w) for w in cluster.writers]
        assert all(held) and sorted(held[0] + held[1]) == [f"grpc {i}" for i in range(6)]
        cluster.writers[0].server.kill()
        for i in range(6, 10):
            client.push({'{app="pool"}': [(BASE_NS + i, f"grpc {i}")]})
        assert _held(cluster.writers[1]) == sorted(held[1] + [f"grpc {i}" for i in range(6, 10)])
        for _ in range(4):   # the live reader answers, whichever reader's turn it was
            assert [line for _, _, line in entries(client.query('{app="pool"}', *SPAN))] == ["held by reader 1"]
    finally:
        client.close()
