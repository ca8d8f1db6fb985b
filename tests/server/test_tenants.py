"""Tenants over a real server with `auth_enabled`: each reads and writes its own tree only, and
tenant ids are checked as Loki checks them (dskit's ValidTenantID), before anything is touched."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Server
from tests.server.pushing import BASE_NS, push, query

BAD = [
    ("..", "tenant ID is '.' or '..'"),
    (".", "tenant ID is '.' or '..'"),
    ("a/b", "tenant ID 'a/b' contains unsupported character '/'"),
    ("..%2F..", "tenant ID '..%2F..' contains unsupported character '%'"),
    ("a|b", "tenant ID 'a|b' contains unsupported character '|'"),
    ("x" * 151, "tenant ID is too long: max 150 characters"),
]


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server(args=["-auth.enabled=true"])


def test_each_tenant_sees_its_own_data(server: Server) -> None:
    with server.client() as a, server.client() as b:
        a.headers["X-Scope-OrgID"] = "team-a"
        b.headers["X-Scope-OrgID"] = "team-b"
        push(a, {"app": "t"}, [[BASE_NS, "for a"]])
        push(b, {"app": "t"}, [[BASE_NS, "for b"]])
        assert a.post("/flush").status_code == 204
        for client, line in ((a, "for a"), (b, "for b")):
            [stream] = query(client, '{app="t"}')["data"]["result"]
            assert [v[1] for v in stream["values"]] == [line]
            labels = client.get("/loki/api/v1/label/app/values", params={"start": BASE_NS - 10**9,
                                                                          "end": BASE_NS + 10**9})
            assert labels.json()["data"] == ["t"]
        tenants = sorted(p.name for p in server.data_dir.iterdir() if p.is_dir())
        assert tenants == ["team-a", "team-b"]


def test_no_org_id_is_401(server: Server) -> None:
    with server.client() as anonymous:
        r = anonymous.get("/loki/api/v1/labels")
        assert (r.status_code, r.text.strip()) == (401, "no org id")
        assert push(anonymous, {"app": "t"}, [[BASE_NS, "x"]], expect=401).text.strip() == "no org id"


@pytest.mark.parametrize(("org", "message"), BAD, ids=["dotdot", "dot", "slash", "percent", "pipe", "long"])
def test_bad_tenant_ids_are_refused_before_anything_is_touched(server: Server, org: str, message: str) -> None:
    with server.client() as client:
        client.headers["X-Scope-OrgID"] = org
        assert push(client, {"app": "t"}, [[BASE_NS, "x"]], expect=400).text.strip() == message
        r = client.get("/loki/api/v1/query_range", params={"query": '{app="t"}'})
        assert (r.status_code, r.text.strip()) == (400, message)
    assert not [p for p in server.data_dir.parent.iterdir() if p.name not in (server.data_dir.name,)
                and p.is_dir()], "a tenant id wrote outside the data dir"
    assert not any(p.is_dir() for p in server.data_dir.iterdir())


def test_the_longest_id_and_every_allowed_character_work(server: Server) -> None:
    for org in ("x" * 150, "a-Z_0.9!*'()"):
        with server.client() as client:
            client.headers["X-Scope-OrgID"] = org
            push(client, {"app": "t"}, [[BASE_NS, org]])
            [stream] = query(client, '{app="t"}')["data"]["result"]
            assert stream["values"][0][1] == org
