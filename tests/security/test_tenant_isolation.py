"""Hostile tenant ids against every endpoint of a real server (HTTP, WebSocket tail, gRPC), with
`auth_enabled`: an id Loki refuses answers 400 (401 when missing) in Loki's words, never 500; a
valid one, however odd (`...`, `*`, `'`), touches only `<root>/<tenant>/`; and no tenant reads
another's entries, flushed or not, by a path-like or pattern-like variant of its id.

Loki's rules (dskit's ValidTenantID): the characters `a-zA-Z0-9!-_.*'()`, at most 150 bytes, not
`.` or `..`; several ids joined by `|` only for queries with `querier.multi_tenant_queries_enabled`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import tests.conftest
from tests.conftest import PERMISSIVE, Server, free_port
from tests.security.endpoints import ENDPOINTS, READS, TENANTLESS, raw_status, tail_url
from tests.server.grpc_client import LokiGrpc
from tests.server.pushing import BASE_NS, push

CONFIG = PERMISSIVE + "auth_enabled: true\ncompactor:\n  retention_enabled: true\n"
MULTI = CONFIG + "querier:\n  multi_tenant_queries_enabled: true\n"
SECRET = "s3cr3t-of-team-a"

# (id, Loki's refusal); sent as the header's UTF-8 bytes
REFUSED = [
    ("../../etc", "tenant ID '../../etc' contains unsupported character '/'"),
    ("..", "tenant ID is '.' or '..'"),
    (".", "tenant ID is '.' or '..'"),
    ("a/b", "tenant ID 'a/b' contains unsupported character '/'"),
    ("a\\b", "tenant ID 'a\\b' contains unsupported character '\\'"),
    ("..\\..\\etc", "tenant ID '..\\..\\etc' contains unsupported character '\\'"),
    ("%2e%2e", "tenant ID '%2e%2e' contains unsupported character '%'"),
    ("a\tb", "tenant ID 'a\tb' contains unsupported character '\t'"),
    ("a b", "tenant ID 'a b' contains unsupported character ' '"),
    ("x" * 151, "tenant ID is too long: max 150 characters"),
    ("y" * 4096, "tenant ID is too long: max 150 characters"),
    ("zoë", "tenant ID 'zoë' contains unsupported character 'ë'"),
    ("日本", "tenant ID '日本' contains unsupported character '日'"),
    ("team-a|team-b", "tenant ID 'team-a|team-b' contains unsupported character '|'"),
    ("a?", "tenant ID 'a?' contains unsupported character '?'"),
    ("[a]", "tenant ID '[a]' contains unsupported character '['"),
    ("a:b", "tenant ID 'a:b' contains unsupported character ':'"),
    ("~", "tenant ID '~' contains unsupported character '~'"),
]
# bytes no HTTP client sends in a header: the server's HTTP parser refuses the request (400)
CONTROL = [b"\x00", b"a\x00b", b"..\x00/etc", b"\x01", b"\x1b[2J", b"\x7f", b"a\rb", b"a\nX-Scope-OrgID: b"]
# valid ids that look like paths or patterns: each must stay in its own folder
ODD = ["...", "*", "team-*", "'", "(x)", "!", ".hidden", "dot.", "-", "_", "z" * 150]
# what a tenant that is not team-a might try to read team-a's entries with
VARIANTS = ["team-b", "TEAM-A", "team-*", "*", "team-a.", ".team-a", "team-a'", "(team-a)", "team-a|team-b",
            "team-a/", "./team-a", "team-a/..", "../team-a", "team-a%2F", "team-a\\", "team-?"]


def _start(folder: Path, config: str) -> Server:
    """A server whose working directory is its own empty folder, to see what it writes there."""
    workdir = folder / "cwd"
    workdir.mkdir()
    data = folder / "data"
    data.mkdir()
    server = Server(data, config, [f"-server.grpc-listen-port={free_port()}"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tests.conftest, "ROOT", workdir)
        server.start()
    return server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _start(tmp_path_factory.mktemp("isolation"), CONFIG)
    with server.client() as http:
        http.headers["X-Scope-OrgID"] = "team-a"
        push(http, {"app": SECRET}, [[BASE_NS, f"flushed {SECRET}"]])
        assert http.post("/flush").status_code == 204
        push(http, {"app": SECRET}, [[BASE_NS + 10**9, f"unflushed {SECRET}"]])
    yield server
    server.kill()


def _org(org: str) -> dict[str, bytes]:
    return {"X-Scope-OrgID": org.encode()}


def _ws_org(org: str) -> dict[str, str]:
    """The header for websockets, which writes values as Latin-1: the UTF-8 bytes of the id."""
    return {"X-Scope-OrgID": org.encode().decode("latin-1")}


def _grpc(server: Server, org: str | None) -> LokiGrpc:
    port = next(a.split("=", 1)[1] for a in server.extra_args if a.startswith("-server.grpc-listen-port="))
    return LokiGrpc(f"127.0.0.1:{port}", org)


@pytest.mark.parametrize(("org", "message"), REFUSED, ids=[f"refused{i}" for i in range(len(REFUSED))])
def test_refused_ids_answer_lokis_400_on_every_endpoint(served: Server, org: str, message: str) -> None:
    with served.client() as http:
        for name, call in ENDPOINTS.items():
            r = call(http, _org(org))
            assert (r.status_code, r.text.strip()) == (400, message), name
        for name, call in TENANTLESS.items():
            assert call(http, _org(org)).status_code in (200, 204), name
    with pytest.raises(InvalidStatus) as refused:
        connect(tail_url(served.url), additional_headers=_ws_org(org), open_timeout=10)
    assert refused.value.response.status_code == 400
    assert refused.value.response.body is not None and refused.value.response.body.decode().strip() == message


def test_no_id_answers_401_on_every_endpoint(served: Server) -> None:
    with served.client() as http:
        for name, call in ENDPOINTS.items():
            r = call(http, {})
            assert (r.status_code, r.text.strip()) == (401, "no org id"), name
            r = call(http, _org(""))
            assert (r.status_code, r.text.strip()) == (401, "no org id"), name


@pytest.mark.parametrize("org", CONTROL, ids=[f"control{i}" for i in range(len(CONTROL))])
def test_control_characters_are_refused_by_the_http_parser(served: Server, org: bytes) -> None:
    for path in ("/loki/api/v1/labels", "/loki/api/v1/query_range?query=%7Bapp%3D~%22.%2B%22%7D", "/loki/api/v1/tail"):
        assert raw_status(served.port, org, path) == 400


def test_refused_ids_over_grpc(served: Server) -> None:
    span = (BASE_NS - 10**9, BASE_NS + 10**12)
    for org, message in REFUSED:
        if not org.isascii() or "\t" in org:   # gRPC metadata values are printable ASCII
            continue
        client = _grpc(served, org)
        calls = [lambda c=client: c.push({'{app="probe"}': [(BASE_NS, "x")]}),
                 lambda c=client: c.query('{app=~".+"}', *span), lambda c=client: c.label(*span),
                 lambda c=client: c.series(['{app=~".+"}'], *span)]
        for call in calls:
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert (err.value.code(), err.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
        client.channel.close()


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_odd_valid_ids_stay_in_their_folders(served: Server) -> None:
    with served.client() as http:
        for org in ODD:
            for name, call in ENDPOINTS.items():
                r = call(http, _org(org))   # (no such delete request to cancel: Loki's 404)
                assert r.status_code in ((404,) if name == "delete cancel" else (200, 204)), (org, name, r.text)
        assert http.post("/flush", headers=_org("team-a")).status_code == 204
        for org in ODD:   # each reads back its own pushes only (4 push endpoints, one entry each)
            r = http.get("/loki/api/v1/query_range", params={"query": '{app="probe"}', "start": BASE_NS - 10**12,
                                                            "end": BASE_NS + 10**12}, headers=_org(org))
            found = [v for s in r.json()["data"]["result"] for v in s["values"]]
            assert r.status_code == 200 and len(found) == 1 and SECRET not in r.text, org
    tenants = {"team-a", *ODD}
    for path in _tree(served.data_dir):
        top, _, rest = path.partition("/")
        assert top in tenants or not rest and top.startswith("."), path   # or the store's lock file
    assert {p.name for p in served.data_dir.iterdir() if p.is_dir()} == tenants
    assert _tree(served.data_dir.parent / "cwd") == []
    beside = {p.name for p in served.data_dir.parent.iterdir()}
    assert beside == {"cwd", "data", served.config_path.name, served.log_path.name}


def _leaks(http: httpx.Client, org: str) -> list[str]:
    """The endpoints whose answer to `org` holds anything of team-a's."""
    found = []
    for name in READS:
        r = ENDPOINTS[name](http, _org(org))
        assert r.status_code in (200, 204, 400), (org, name, r.status_code, r.text)
        if SECRET.encode() in r.content:
            found.append(name)
    return found


def test_no_variant_of_a_tenant_reads_its_entries(served: Server) -> None:
    with served.client() as http:
        own = _leaks(http, "team-a")   # the check sees team-a's entries where they are
        assert {"query_range", "label values", "series", "unflushed"} <= set(own), own
        for org in VARIANTS:
            assert _leaks(http, org) == [], org
    for org in VARIANTS:
        try:
            with connect(tail_url(served.url, start=str(BASE_NS - 10**9)), additional_headers=_ws_org(org),
                         open_timeout=10) as ws:
                while True:   # until 2 s pass with nothing more (its own entries may come)
                    assert SECRET not in str(ws.recv(timeout=2)), org
        except InvalidStatus as refused:
            assert refused.response.status_code == 400
        except TimeoutError:
            pass
    span = (BASE_NS - 10**9, BASE_NS + 10**12)
    for org in VARIANTS:
        if not org.isascii():
            continue
        client = _grpc(served, org)
        try:
            answers: list[Any] = [client.query(f'{{app="{SECRET}"}}', *span), client.label(*span),
                                  client.label(*span, name="app"), client.series(['{app=~".+"}'], *span)]
            assert SECRET not in repr(answers), org
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, org
        finally:
            client.channel.close()


def test_a_tenant_that_only_reads_leaves_nothing_on_disk(served: Server) -> None:
    """Reads of ids that never pushed (any number of them) cost no folder, file or WAL."""
    ghosts = [f"ghost-{i}" for i in range(5)]
    with served.client() as http:
        for org in ghosts:
            for name in [*READS, "delete list"]:
                r = ENDPOINTS[name](http, _org(org))
                assert r.status_code in (200, 204), (org, name, r.status_code, r.text)
    for org in ghosts[:2]:
        with connect(tail_url(served.url, start=str(BASE_NS - 10**9)), additional_headers=_ws_org(org),
                     open_timeout=10) as ws, contextlib.suppress(TimeoutError):
            ws.recv(timeout=1)
        client = _grpc(served, org)
        try:
            client.query('{app="x"}', BASE_NS - 10**9, BASE_NS + 10**12)
        finally:
            client.channel.close()
    assert not [path for path in _tree(served.data_dir) if path.startswith("ghost-")]


def test_multi_tenant_queries_read_only_the_named_tenants(tmp_path: Path) -> None:
    server = _start(tmp_path, MULTI)
    try:
        with server.client() as http:
            http.headers["X-Scope-OrgID"] = "team-a"
            push(http, {"app": SECRET}, [[BASE_NS, f"line {SECRET}"]])
            http.headers["X-Scope-OrgID"] = "team-b"
            push(http, {"app": "b"}, [[BASE_NS, "line of b"]])
            assert http.post("/flush").status_code == 204
            for org in ("team-b|*", "*|team-*", "team-b|team-?"):
                if "?" in org:
                    r = ENDPOINTS["query_range"](http, _org(org))
                    assert (r.status_code, r.text.strip()) == (400, "tenant ID 'team-?' contains unsupported character '?'")
                    continue
                assert _leaks(http, org) == [], org
            assert _leaks(http, "team-a|team-b") != []   # the test can see a leak
            for org, message in (("team-b|../team-a", "tenant ID '../team-a' contains unsupported character '/'"),
                                 ("team-b|..", "tenant ID is '.' or '..'")):
                single = f"tenant ID '{org}' contains unsupported character '|'"   # endpoints of one tenant
                for name in READS:
                    r = ENDPOINTS[name](http, _org(org))
                    assert r.status_code == 400 and r.text.strip() in (message, single), (org, name, r.text)
            r = ENDPOINTS["push json"](http, _org("team-a|team-b"))   # writes stay single-tenant
            assert (r.status_code, r.text.strip()) == (400, "tenant ID 'team-a|team-b' contains unsupported character '|'")
        # a read opens the WAL folder of each tenant it names (a valid id's own): nothing else
        for path in _tree(server.data_dir):
            top, _, rest = path.partition("/")
            assert top in ("team-a", "team-b") or top in ("*", "team-*") and rest.startswith("wal/") \
                or not rest and top.startswith("."), path
        assert {p.name for p in server.data_dir.iterdir() if p.is_dir()} <= {"team-a", "team-b", "*", "team-*"}
        assert os.listdir(server.data_dir.parent / "cwd") == []
    finally:
        server.kill()
