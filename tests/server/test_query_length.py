"""Loki's `max_query_length`: a query_range longer than the tenant's limit answers 400 in Loki's
words (the length as Go prints a duration, the limit as Prometheus does), the limit itself passes."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS, push

HOUR = 3600 * 10**9


def test_a_query_longer_than_the_limit_is_refused(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE.replace("max_query_length: 0", "max_query_length: 1d"))
    with server.client() as c:
        push(c, {"app": "a"}, [[BASE_NS, "x"]])
        for query in ('{app="a"}', 'count_over_time({app="a"}[1h])'):
            refused = c.get("/loki/api/v1/query_range", params={"query": query, "start": BASE_NS - 48 * HOUR,
                                                                "end": BASE_NS, "step": "1h"})
            assert refused.status_code == 400
            assert refused.text.strip() == "the query time range exceeds the limit (query length: 48h0m0s, limit: 1d)"
            fits = c.get("/loki/api/v1/query_range", params={"query": query, "start": BASE_NS - 24 * HOUR,
                                                             "end": BASE_NS, "step": "1h"})
            assert fits.status_code == 200, fits.text


def test_the_default_limit_is_lokis_721h(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE.replace("  max_query_length: 0\n", ""))
    with server.client() as c:
        refused = c.get("/loki/api/v1/query_range", params={"query": '{app="a"}', "start": BASE_NS - 745 * HOUR,
                                                            "end": BASE_NS})
    assert refused.status_code == 400
    assert refused.text.strip() == "the query time range exceeds the limit (query length: 745h0m0s, limit: 4w2d1h)"


def test_labels_series_and_index_stats_keep_to_the_limit_as_lokis_querier_does(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE.replace("max_query_length: 0", "max_query_length: 1d"))
    calls = [("/loki/api/v1/labels", {}), ("/loki/api/v1/label/app/values", {}),
             ("/loki/api/v1/series", {"match[]": '{app="a"}'}), ("/loki/api/v1/index/stats", {"query": '{app="a"}'})]
    with server.client() as c:
        push(c, {"app": "a"}, [[BASE_NS, "x"]])
        for path, params in calls:
            refused = c.get(path, params={**params, "start": BASE_NS - 48 * HOUR, "end": BASE_NS})
            assert refused.status_code == 400, path
            assert refused.text.strip() == "the query time range exceeds the limit (query length: 48h0m0s, limit: 1d)"
            fits = c.get(path, params={**params, "start": BASE_NS - 24 * HOUR, "end": BASE_NS + 1})
            assert fits.status_code == 200, (path, fits.text)
            assert "a" in fits.text
