"""Queries over several tenants (`X-Scope-OrgID: a|b`) with `querier.multi_tenant_queries_enabled`,
on a real server: streams and series carry `__tenant_id__`, a selector can choose tenants with it,
aggregations add tenants up or keep them apart, and writes stay single-tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS, push, query

MULTI = PERMISSIVE + "auth_enabled: true\nquerier:\n  multi_tenant_queries_enabled: true\n"
HOUR = 3600 * 10**9


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = Server(tmp_path_factory.mktemp("multi"), MULTI, []).start()
    with server.client() as http:
        for tenant, n in (("team-a", 3), ("team-b", 2)):
            http.headers["X-Scope-OrgID"] = tenant
            push(http, {"app": "shop", "level": "info"},
                 [[BASE_NS + i * 10**9, f'{{"tenant":"{tenant}","n":{i + 1}}}'] for i in range(n)])
        http.headers["X-Scope-OrgID"] = "team-c"
        push(http, {"app": "other"}, [[BASE_NS, "c only"]])
    yield server
    server.kill()


def _as(server: Server, org: str) -> httpx.Client:
    client = server.client()
    client.headers["X-Scope-OrgID"] = org
    return client


def _metric(client: httpx.Client, q: str) -> dict[tuple[tuple[str, str], ...], float]:
    r = client.get("/loki/api/v1/query", params={"query": q, "time": BASE_NS + HOUR // 2})
    assert r.status_code == 200, r.text
    return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in r.json()["data"]["result"]}


def test_log_queries_merge_tenants_with_their_label(multi: Server) -> None:
    with _as(multi, "team-b|team-a") as both:
        answer = query(both, '{app="shop"}', limit=3)
        got = sorted((s["stream"]["__tenant_id__"], int(ts)) for s in answer["data"]["result"] for ts, _ in s["values"])
        # the newest three of both tenants: a's entries at +2 s, +1 s and b's at +1 s (ties: tenant order)
        assert got == [("team-a", BASE_NS + 10**9), ("team-a", BASE_NS + 2 * 10**9), ("team-b", BASE_NS + 10**9)]
        assert {s["stream"]["app"] for s in answer["data"]["result"]} == {"shop"}
        only_b = query(both, '{app="shop", __tenant_id__="team-b"}', limit=100)
        assert {s["stream"]["__tenant_id__"] for s in only_b["data"]["result"]} == {"team-b"}
        assert sum(len(s["values"]) for s in only_b["data"]["result"]) == 2
        assert query(both, '{app="shop", __tenant_id__=~"nobody"}')["data"]["result"] == []
        # Grafana's categorized form merges alike
        r = both.get("/loki/api/v1/query_range", params={"query": '{app="shop"}', "limit": 3, "start": BASE_NS - HOUR,
                                                         "end": BASE_NS + HOUR},
                     headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"})
        assert r.status_code == 200, r.text
        streams = r.json()["data"]["result"]
        assert sorted((s["stream"]["__tenant_id__"], int(v[0])) for s in streams for v in s["values"]) == got


def test_metric_queries_add_tenants_up_or_keep_them_apart(multi: Server) -> None:
    with _as(multi, "team-a|team-b") as both:
        assert _metric(both, 'sum(count_over_time({app="shop"}[1h]))') == {(): 5.0}
        assert _metric(both, 'sum by (__tenant_id__) (count_over_time({app="shop"}[1h]))') == {
            (("__tenant_id__", "team-a"),): 3.0, (("__tenant_id__", "team-b"),): 2.0}
        per_stream = _metric(both, 'count_over_time({app="shop"}[1h])')
        assert sorted(dict(k)["__tenant_id__"] for k in per_stream) == ["team-a", "team-b"]
        merged = _metric(both, 'max_over_time({app="shop"} | json | unwrap n [1h]) by (app)')
        assert merged == {(("app", "shop"),): 3.0}
        least = _metric(both, 'min_over_time({app="shop"} | json | unwrap n [1h]) by (app)')
        assert least == {(("app", "shop"),): 1.0}
        apart = _metric(both, 'avg_over_time({app="shop"} | json | unwrap n [1h]) by (app, __tenant_id__)')
        assert apart == {(("__tenant_id__", "team-a"), ("app", "shop")): 2.0,
                         (("__tenant_id__", "team-b"), ("app", "shop")): 1.5}
        r = both.get("/loki/api/v1/query", params={
            "query": 'avg_over_time({app="shop"} | json | unwrap n [1h]) by (app)', "time": BASE_NS + HOUR})
        assert r.status_code == 400 and "add __tenant_id__ to its grouping" in r.text


def test_labels_values_and_series_carry_the_tenant(multi: Server) -> None:
    window = {"start": BASE_NS - HOUR, "end": BASE_NS + HOUR}
    with _as(multi, "team-a|team-c") as both:
        names = both.get("/loki/api/v1/labels", params=window).json()["data"]
        assert "__tenant_id__" in names and {"app", "level"} <= set(names)
        tenants = both.get("/loki/api/v1/label/__tenant_id__/values", params=window).json()["data"]
        assert tenants == ["team-a", "team-c"]
        assert both.get("/loki/api/v1/label/app/values", params=window).json()["data"] == ["other", "shop"]
        series = both.get("/loki/api/v1/series", params={"match[]": '{app=~".+"}', **window}).json()["data"]
        assert sorted((s["__tenant_id__"], s["app"]) for s in series) == [("team-a", "shop"), ("team-c", "other")]


def test_writes_stay_single_tenant(multi: Server) -> None:
    with _as(multi, "team-a|team-b") as both:
        r = both.post("/loki/api/v1/push", json={"streams": [{"stream": {"app": "x"}, "values": [["1", "x"]]}]})
        assert r.status_code == 400 and "unsupported character '|'" in r.text


def test_off_by_default(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE + "auth_enabled: true\n")
    with _as(server, "team-a|team-b") as both:
        r = both.get("/loki/api/v1/query_range", params={"query": '{app="shop"}'})
        assert r.status_code == 400 and r.text.strip() == "tenant ID 'team-a|team-b' contains unsupported character '|'"
