"""The query API over a real server: log queries, limits, directions, time formats, label endpoints."""

from __future__ import annotations

import httpx
import pytest

from tests.server.pushing import BASE_NS, lines, push, query

APP = {"app": "api", "env": "prod"}
OTHER = {"app": "other", "env": "dev", "service_name": "explicit"}


@pytest.fixture(scope="module", autouse=True)
def data(client: httpx.Client) -> None:
    push(client, APP, [[BASE_NS + i * 10**9, f"line {i} {'error' if i % 3 == 0 else 'ok'}"] for i in range(10)])
    push(client, OTHER, [[BASE_NS + 5 * 10**9 + 1, "other line", {"trace_id": "t1"}]])


def test_answer_shape_is_lokis(client: httpx.Client) -> None:
    doc = query(client, '{app="api"}', limit=2)
    assert doc["status"] == "success"
    assert doc["data"]["resultType"] == "streams"
    # one stored stream answers as two: detected_level differs per line
    by_level = {s["stream"]["detected_level"]: s for s in doc["data"]["result"]}
    assert by_level["error"]["values"] == [[str(BASE_NS + 9 * 10**9), "line 9 error"]]
    assert by_level["unknown"]["values"] == [[str(BASE_NS + 8 * 10**9), "line 8 ok"]]
    for stream in by_level.values():
        assert stream["stream"]["app"] == "api" and stream["stream"]["service_name"] == "api"
    summary = doc["data"]["stats"]["summary"]
    assert summary["totalEntriesReturned"] == 2 and "execTime" in summary


def test_forward_direction_returns_oldest_first(client: httpx.Client) -> None:
    doc = query(client, '{app="api"}', limit=3, direction="forward")
    assert sorted(lines(doc)) == ["line 0 error", "line 1 ok", "line 2 ok"]


def test_line_filters_chain(client: httpx.Client) -> None:
    assert lines(query(client, '{app="api"} |= "error" != "line 9"')) == ["line 6 error", "line 3 error", "line 0 error"]
    assert lines(query(client, '{app="api"} |~ "line [12] "')) == ["line 2 ok", "line 1 ok"]
    assert len(lines(query(client, '{app="api"} !~ "ok$"'))) == 4


def test_structured_metadata_is_part_of_the_stream_labels(client: httpx.Client) -> None:
    [stream] = query(client, '{app="other"}')["data"]["result"]
    assert stream["stream"]["trace_id"] == "t1"
    assert stream["stream"]["service_name"] == "explicit"
    assert "detected_level" in stream["stream"]


@pytest.mark.parametrize("fmt", ["ns", "seconds", "float", "rfc3339"])
def test_time_parameters_in_every_format(client: httpx.Client, fmt: str) -> None:
    start_ns, end_ns = BASE_NS + 2 * 10**9, BASE_NS + 4 * 10**9  # [start, end): lines 2 and 3
    if fmt == "ns":
        start, end = str(start_ns), str(end_ns)
    elif fmt == "seconds":
        start, end = str(start_ns // 10**9), str(end_ns // 10**9)
    elif fmt == "float":
        start, end = f"{start_ns / 1e9:.3f}", f"{end_ns / 1e9:.3f}"
    else:
        start, end = "2026-01-19T22:00:02Z", "2026-01-19T22:00:04.000Z"
    r = client.get("/loki/api/v1/query_range", params={"query": '{app="api"}', "start": start, "end": end})
    assert lines(r.json()) == ["line 3 error", "line 2 ok"]


def test_post_form_query(client: httpx.Client) -> None:
    r = client.post("/loki/api/v1/query_range", data={"query": '{app="api"} |= "line 4"',
                                                       "start": str(BASE_NS), "end": str(BASE_NS + 10**11)})
    assert r.status_code == 200 and lines(r.json()) == ["line 4 ok"]


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"query": '{app="api"'}, 400, "parse error at line 1, col 11"),
    ({"query": "{}"}, 400, "queries require at least one regexp or equality matcher"),
    ({"query": '{app="api"}', "start": "yesterday"}, 400, 'cannot parse "yesterday"'),
    ({"query": '{app="api"}', "limit": "x"}, 400, "invalid syntax"),
    ({"query": '{app="api"}', "direction": "sideways"}, 400, "invalid direction"),
    ({"query": '{app="api"}', "limit": "100001"}, 400, "max entries limit per query exceeded"),
    ({}, 400, "query"),
])
def test_bad_parameters_answer_400(client: httpx.Client, params: dict[str, str], status: int, text: str) -> None:
    params = {"start": str(BASE_NS), "end": str(BASE_NS + 10**11), **params}
    r = client.get("/loki/api/v1/query_range", params=params)
    assert r.status_code == status
    assert text in r.text


def test_instant_log_query_is_refused_as_loki_does(client: httpx.Client) -> None:
    r = client.get("/loki/api/v1/query", params={"query": '{app="api"}', "time": str(BASE_NS)})
    assert r.status_code == 400 and "log queries are not supported as an instant query type" in r.text


def test_labels_values_series(client: httpx.Client) -> None:
    window = {"start": str(BASE_NS), "end": str(BASE_NS + 10**11)}
    assert client.get("/loki/api/v1/labels", params=window).json()["data"] == ["app", "env", "service_name"]
    assert client.get("/loki/api/v1/label/app/values", params=window).json()["data"] == ["api", "other"]
    values = client.get("/loki/api/v1/label/app/values", params={**window, "query": '{env="dev"}'}).json()
    assert values["data"] == ["other"]
    series = client.get("/loki/api/v1/series", params={**window, "match[]": ['{env="prod"}', '{app="other"}']})
    assert sorted(s["app"] for s in series.json()["data"]) == ["api", "other"]
    # outside the time range: nothing
    empty = {"start": str(BASE_NS - 10**12), "end": str(BASE_NS - 10**11)}
    assert client.get("/loki/api/v1/labels", params=empty).json()["data"] == []


def test_ready_buildinfo_metrics(client: httpx.Client) -> None:
    assert client.get("/ready").text.strip() == "ready"
    info = client.get("/loki/api/v1/status/buildinfo").json()  # the object itself, as Loki answers
    assert info["version"].startswith("3.") and "lokiarrow" in info["version"]
    metrics = client.get("/metrics").text
    assert 'loki_distributor_lines_received_total{tenant="fake"}' in metrics
    assert "loki_request_duration_seconds_bucket" in metrics


def test_format_query_prints_the_canonical_form(client: httpx.Client) -> None:
    r = client.get("/loki/api/v1/format_query", params={"query": '{app="api",env=~"p.*"}|="x"|json|status>=500'})
    assert r.status_code == 200
    assert r.json() == {"status": "success", "data": '{app="api", env=~"p.*"} |= "x" | json | status>=500'}
    bad = client.get("/loki/api/v1/format_query", params={"query": "{app="})
    assert bad.status_code == 400 and bad.text.startswith("parse error at line 1")


def test_pipeline_stages_over_a_real_server(client: httpx.Client) -> None:
    push(client, {"app": "pipe"}, [[BASE_NS + 1, '{"level":"error","status":503,"msg":"down"}'],
                                   [BASE_NS + 2, '{"level":"info","status":200,"msg":"fine"}'],
                                   [BASE_NS + 3, "not json"]])
    doc = query(client, '{app="pipe"} | json | status >= 500 | line_format "{{.msg}} ({{.level}})"')
    [stream] = doc["data"]["result"]
    assert stream["values"] == [[str(BASE_NS + 1), "down (error)"]]
    assert stream["stream"]["status"] == "503"
    errors = query(client, '{app="pipe"} | json | __error__ != ""')["data"]["result"]
    assert [s["stream"]["__error__"] for s in errors] == ["JSONParserErr"]
    dropped = query(client, '{app="pipe"} | json | drop __error__, __error_details__ | keep app, level')
    assert sorted(tuple(sorted(s["stream"].items())) for s in dropped["data"]["result"]) == [
        (("app", "pipe"),), (("app", "pipe"), ("level", "error")), (("app", "pipe"), ("level", "info"))]
