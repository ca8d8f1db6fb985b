"""Loki's `max_query_bytes_read`: a query whose selectors hold more bytes (the index's estimate,
what index/stats answers) than the tenant's limit is refused up front with Loki's 400; log queries
without filters are not bounded; metric queries count each selector over its range."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lokiarrow.units import humanized_bytes
from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS, push

HOUR = 3600 * 10**9
SPAN = {"start": BASE_NS - HOUR, "end": BASE_NS + HOUR}
LIMIT = 10 << 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("bytes")
    overrides = folder / "overrides.yaml"
    overrides.write_text("overrides:\n  unbounded:\n    max_query_bytes_read: 0\n")
    (folder / "data").mkdir()
    config = PERMISSIVE + f"  max_query_bytes_read: 10KB\nruntime_config:\n  file: {overrides}\n"
    srv = Server(folder / "data", config, ["-auth.enabled=true"]).start()
    for tenant in ("bounded", "unbounded"):
        with srv.client(tenant) as c:
            push(c, {"app": "big"}, [[BASE_NS + i, f"line {i:04d} " + "x" * 90] for i in range(200)])   # ~20 KiB
            push(c, {"app": "small"}, [[BASE_NS + i, f"small {i}"] for i in range(5)])
    yield srv
    srv.kill()



def _refusal(c: httpx.Client, query: str) -> str:
    stats = c.get("/loki/api/v1/index/stats", params={"query": query.split("}")[0].split("(")[-1] + "}", **SPAN})
    return (f"the query would read too many bytes (query: {humanized_bytes(stats.json()['bytes'])}, "
            f"limit: {humanized_bytes(LIMIT)}); consider adding more specific stream selectors or reduce the "
            "time range of the query")


@pytest.mark.parametrize("query", ['{app="big"} |= "line"', '{app="big"} | level="info"',
                                   'sum(count_over_time({app="big"}[1h]))', 'rate({app="big"} |= "x" [5m])'])
def test_a_query_over_the_limit_is_refused_with_lokis_words(server: Server, query: str) -> None:
    with server.client("bounded") as c:
        r = c.get("/loki/api/v1/query_range", params={"query": query, "step": "60s", **SPAN})
        assert r.status_code == 400
        assert r.text.strip() == _refusal(c, query)
        if not query.startswith("{"):     # Loki has no instant log queries
            r = c.get("/loki/api/v1/query", params={"query": query, "time": BASE_NS + 10**9})
            assert r.status_code == 400 and r.text.strip() == _refusal(c, query)


@pytest.mark.parametrize("query", ['{app="big"}', '{app="small"} |= "small"', 'count_over_time({app="small"}[1h])',
                                   'sum(count_over_time({app="big"}[1h] offset 3h))'])
def test_queries_under_the_limit_or_without_filters_run(server: Server, query: str) -> None:
    with server.client("bounded") as c:
        r = c.get("/loki/api/v1/query_range", params={"query": query, "step": "60s", **SPAN})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["result"] or "offset" in query


def test_a_tenant_without_a_limit_reads_everything(server: Server) -> None:
    with server.client("unbounded") as c:
        r = c.get("/loki/api/v1/query_range", params={"query": '{app="big"} |= "line"', "limit": 1000, **SPAN})
        assert r.status_code == 200 and len(r.json()["data"]["result"][0]["values"]) == 200
