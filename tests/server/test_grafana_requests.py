"""The requests Grafana's Loki data source sends, as it sends them, against a real server: every
field Grafana's parsers read (pkg/promlib/converter, pkg/tsdb/loki), Loki 3's `categorize-labels`
encoding and Loki's Parquet answers."""

from __future__ import annotations

import io
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.server.pushing import BASE_NS, push

SHOP = {"app": "shop", "env": "prod"}
PLAIN = {"app": "plain", "env": "dev"}
CLASH = {"app": "clash", "env": "qa"}
WINDOW = {"start": str(BASE_NS - 10**12), "end": str(BASE_NS + 10**12)}
CATEGORIZE = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
PARQUET = {"Accept": "application/vnd.apache.parquet"}


@pytest.fixture(scope="module", autouse=True)
def data(client: httpx.Client) -> None:
    push(client, SHOP, [
        [BASE_NS + 1 * 10**9, '{"level":"error","msg":"pay failed","env":"stage","trace_id":"line-t"}',
         {"trace_id": "t1"}],
        [BASE_NS + 2 * 10**9, '{"level":"info","msg":"paid"}', {"trace_id": "t2"}],
        [BASE_NS + 3 * 10**9, "not json at all"],
    ])
    push(client, PLAIN, [[BASE_NS + 4 * 10**9, "plain line"]])
    push(client, CLASH, [[BASE_NS + 5 * 10**9, "clash line", {"env": "from-metadata"}]])


def grafana_range(client: httpx.Client, query: str, headers: dict[str, str] | None = None, limit: int = 1000,
                  step_ms: int = 2000, direction: str = "backward") -> httpx.Response:
    """Explore's query_range as Grafana's backend builds it (pkg/tsdb/loki/api.go makeDataRequest)."""
    params = {"query": query, "direction": direction, "limit": str(limit), "start": WINDOW["start"],
              "end": WINDOW["end"], "step": f"{step_ms}ms"}
    return client.get("/loki/api/v1/query_range", params=params, headers={**CATEGORIZE, **(headers or {})})


def body(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return orjson.loads(r.content)


def entries(doc: Any) -> list[tuple[str, str]]:
    return sorted((v[0], v[1]) for s in doc["data"]["result"] for v in s["values"])


# Grafana's health check and build info


def test_health_check_instant_query_answers_two(client: httpx.Client) -> None:
    # pkg/tsdb/loki/healthcheck.go: instant query over [1 s, 4 s]; time is the end in ns, which Loki
    # (ten digits or fewer) reads as seconds
    r = client.get("/loki/api/v1/query", params={"query": "vector(1)+vector(1)", "time": "4000000000",
                                                 "direction": "backward"}, headers=CATEGORIZE)
    doc = body(r)
    assert doc["status"] == "success"
    data = doc["data"]
    assert list(data) == ["resultType", "result", "stats"]  # no encodingFlags on a metric answer
    assert data["resultType"] == "vector"
    assert data["result"] == [{"metric": {}, "value": [4000000000, "2"]}]
    assert r.headers["content-type"].startswith("application/json")
    assert set(data["stats"]) >= {"summary", "querier", "ingester"}
    assert data["stats"]["summary"]["execTime"] >= 0


def test_buildinfo_answers_json_with_a_version(client: httpx.Client) -> None:
    r = client.get("/loki/api/v1/status/buildinfo")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    info = r.json()  # Loki answers the object itself
    assert set(info) >= {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}
    major, minor = info["version"].split(".")[:2]
    assert (int(major), int(minor)) >= (3, 0)  # Grafana offers Loki 3 features


# Explore's log and metric queries


def test_explore_log_query_as_grafana_sends_it(client: httpx.Client) -> None:
    r = grafana_range(client, '{app="shop"}', {"X-Query-Tags": "Source=logsample"}, limit=2)
    doc = body(r)
    data = doc["data"]
    assert list(data) == ["resultType", "encodingFlags", "result", "stats"]  # flags before result
    assert data["encodingFlags"] == ["categorize-labels"]
    assert data["resultType"] == "streams"
    # backward, limit 2: the two newest entries
    assert entries(doc) == [(str(BASE_NS + 2 * 10**9), '{"level":"info","msg":"paid"}'),
                            (str(BASE_NS + 3 * 10**9), "not json at all")]
    assert data["stats"]["summary"]["totalEntriesReturned"] == 2


def test_explore_forward_direction_and_limit(client: httpx.Client) -> None:
    doc = body(grafana_range(client, '{app=~"shop|plain"}', limit=2, direction="forward"))
    assert [ts for ts, _ in entries(doc)] == [str(BASE_NS + 1 * 10**9), str(BASE_NS + 2 * 10**9)]


def test_logs_volume_query_as_grafana_sends_it(client: httpx.Client) -> None:
    query = 'sum by (level, detected_level) (count_over_time({app="shop"} | drop __error__[1m]))'
    doc = body(grafana_range(client, query, {"X-Query-Tags": "Source=logvolhist"}, step_ms=60_000))
    data = doc["data"]
    assert list(data) == ["resultType", "result", "stats"]
    assert data["resultType"] == "matrix"
    counts = {s["metric"]["detected_level"]: sum(int(v) for _, v in s["values"]) for s in data["result"]}
    assert counts == {"error": 1, "info": 1, "unknown": 1}
    for series in data["result"]:
        for t, v in series["values"]:  # Grafana reads a float time in seconds and a string value
            assert isinstance(t, (int, float)) and isinstance(v, str)
            assert (int(t * 1000) - (BASE_NS - 10**12) // 10**6) % 60_000 == 0


@pytest.mark.parametrize(("step", "status", "text"), [
    ("2000ms", 200, ""),
    ("0ms", 400, "zero or negative query resolution step widths are not accepted"),
    ("1ms", 400, "exceeded maximum resolution of 11,000 points per timeseries"),
    ("inf", 400, 'cannot parse "inf" to a valid duration. It overflows int64'),
    ("1e30", 400, "It overflows int64"),
    ("nan", 400, "zero or negative query resolution step widths are not accepted"),
    ("1_0", 400, 'invalid parameter "step"; cannot parse "1_0" to a valid duration'),
])
def test_step_in_milliseconds(client: httpx.Client, step: str, status: int, text: str) -> None:
    r = client.get("/loki/api/v1/query_range", params={"query": 'count_over_time({app="shop"}[1m])', **WINDOW,
                                                       "step": step})
    assert r.status_code == status, r.text
    assert text in r.text


@pytest.mark.parametrize(("params", "text"), [
    ({"limit": "4294967296"}, "limit value 4294967296 is out of range [0, 4294967295]"),
    ({"limit": " 5"}, 'strconv.Atoi: parsing " 5": invalid syntax'),
    ({"start": "1" * 30 + ".0"}, "to a valid timestamp"),
    ({"end": "9" * 25}, "to a valid timestamp"),
])
def test_out_of_range_parameters_answer_400(client: httpx.Client, params: dict[str, str], text: str) -> None:
    r = client.get("/loki/api/v1/query_range", params={"query": '{app="shop"}', **WINDOW, **params})
    assert r.status_code == 400 and text in r.text


# categorize-labels


def test_without_the_header_the_answer_is_unchanged(client: httpx.Client) -> None:
    r = client.get("/loki/api/v1/query_range", params={"query": '{app="shop"}', **WINDOW})
    data = body(r)["data"]
    assert "encodingFlags" not in data
    for stream in data["result"]:
        assert stream["stream"]["app"] == "shop" and "detected_level" in stream["stream"]
        assert all(len(v) == 2 for v in stream["values"])
    with_trace = [s["stream"]["trace_id"] for s in data["result"] if "trace_id" in s["stream"]]
    assert sorted(with_trace) == ["t1", "t2"]


def test_categorized_streams_carry_only_stream_labels(client: httpx.Client) -> None:
    plain = body(client.get("/loki/api/v1/query_range", params={"query": '{app="shop"}', **WINDOW}))
    doc = body(grafana_range(client, '{app="shop"}'))
    [stream] = doc["data"]["result"]  # one stored stream answers as one stream again
    assert stream["stream"] == {"app": "shop", "env": "prod", "service_name": "shop"}
    assert stream["values"] == [
        [str(BASE_NS + 3 * 10**9), "not json at all", {"structuredMetadata": {"detected_level": "unknown"}}],
        [str(BASE_NS + 2 * 10**9), '{"level":"info","msg":"paid"}',
         {"structuredMetadata": {"detected_level": "info", "trace_id": "t2"}}],
        [str(BASE_NS + 1 * 10**9), '{"level":"error","msg":"pay failed","env":"stage","trace_id":"line-t"}',
         {"structuredMetadata": {"detected_level": "error", "trace_id": "t1"}}],
    ]
    assert entries(doc) == entries(plain)


def test_parsed_labels_and_errors_are_parsed(client: httpx.Client) -> None:
    doc = body(grafana_range(client, '{app="shop"} | json'))
    [stream] = doc["data"]["result"]
    assert stream["stream"] == {"app": "shop", "env": "prod", "service_name": "shop"}
    by_ts = {v[0]: v[2] for v in stream["values"]}
    # a field named as a stream label or as metadata is `<name>_extracted`, and parsed
    assert by_ts[str(BASE_NS + 1 * 10**9)] == {
        "structuredMetadata": {"detected_level": "error", "trace_id": "t1"},
        "parsed": {"env_extracted": "stage", "level": "error", "msg": "pay failed", "trace_id_extracted": "line-t"}}
    assert by_ts[str(BASE_NS + 3 * 10**9)] == {
        "structuredMetadata": {"detected_level": "unknown"},
        "parsed": {"__error__": "JSONParserErr",
                   "__error_details__": by_ts[str(BASE_NS + 3 * 10**9)]["parsed"]["__error_details__"]}}
    assert by_ts[str(BASE_NS + 3 * 10**9)]["parsed"]["__error_details__"]


def test_label_format_and_drop_change_the_stream_group(client: httpx.Client) -> None:
    doc = body(grafana_range(client, '{app="shop"} | label_format env="{{.env}}" | drop service_name'))
    [stream] = doc["data"]["result"]
    assert stream["stream"] == {"app": "shop"}  # env is set by label_format: parsed, even unchanged
    assert {v[2]["parsed"]["env"] for v in stream["values"]} == {"prod"}


def test_an_entry_without_metadata_or_parsed_labels_has_an_empty_object(client: httpx.Client) -> None:
    doc = body(grafana_range(client, '{app="plain"} | drop detected_level'))
    assert doc["data"]["result"] == [{"stream": {"app": "plain", "env": "dev", "service_name": "plain"},
                                      "values": [[str(BASE_NS + 4 * 10**9), "plain line", {}]]}]


@pytest.mark.parametrize("query", ['{app="clash"}', '{app="clash"} | drop detected_level'])
def test_metadata_named_as_a_stream_label_is_extracted_metadata(client: httpx.Client, query: str) -> None:
    [stream] = body(grafana_range(client, query))["data"]["result"]
    assert stream["stream"] == {"app": "clash", "env": "qa", "service_name": "clash"}
    [[_, line, entry]] = stream["values"]
    assert line == "clash line"
    assert entry["structuredMetadata"]["env_extracted"] == "from-metadata" and "parsed" not in entry


def test_no_entries_answer_an_empty_result_with_the_flags(client: httpx.Client) -> None:
    data = body(grafana_range(client, '{app="nothing"}'))["data"]
    assert data["encodingFlags"] == ["categorize-labels"] and data["result"] == []


@pytest.mark.parametrize(("header", "flags", "categorized"), [
    ("categorize-labels,other", ["categorize-labels", "other"], True),
    ("other", ["other"], False),
    ("categorize-labels, x,categorize-labels", ["categorize-labels", " x"], True),  # Loki neither trims nor repeats
    ("Categorize-Labels", ["Categorize-Labels"], False),
])
def test_encoding_flags_are_echoed_as_loki_reads_them(client: httpx.Client, header: str, flags: list[str],
                                                      categorized: bool) -> None:
    r = client.get("/loki/api/v1/query_range", params={"query": '{app="plain"}', **WINDOW},
                   headers={"X-Loki-Response-Encoding-Flags": header})
    data = body(r)["data"]
    assert data["encodingFlags"] == flags
    [stream] = data["result"]
    assert ("detected_level" not in stream["stream"]) is categorized
    assert len(stream["values"][0]) == (3 if categorized else 2)


# Parquet


def read_parquet(r: httpx.Response) -> pq.ParquetFile:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    return pq.ParquetFile(io.BytesIO(r.content))


def leaf_columns(f: pq.ParquetFile) -> list[tuple[str, str, str, int, int]]:
    """Each leaf column: path, physical type, logical type, max definition and repetition levels
    (0 and 0: a required column; the map's key and value: required inside a repeated group)."""
    columns = [f.schema.column(i) for i in range(len(f.schema))]
    return [(c.path, c.physical_type, str(c.logical_type).split("(")[0].split(",")[0], c.max_definition_level,
             c.max_repetition_level) for c in columns]


def test_log_answer_as_parquet(client: httpx.Client) -> None:
    params = {"query": '{app=~"shop|plain"}', **WINDOW, "direction": "forward"}
    plain = body(client.get("/loki/api/v1/query_range", params=params))
    f = read_parquet(client.get("/loki/api/v1/query_range", params=params, headers=PARQUET))
    assert leaf_columns(f) == [("timestamp", "INT64", "Timestamp", 0, 0),
                               ("labels.key_value.key", "BYTE_ARRAY", "String", 1, 1),
                               ("labels.key_value.value", "BYTE_ARRAY", "String", 1, 1),
                               ("line", "BYTE_ARRAY", "String", 0, 0)]
    assert "timeUnit=nanoseconds" in str(f.schema.column(0).logical_type)
    assert "isAdjustedToUTC=true" in str(f.schema.column(0).logical_type)
    chunks = {f.metadata.row_group(0).column(i).path_in_schema: f.metadata.row_group(0).column(i)
              for i in range(f.metadata.num_columns)}
    assert chunks["line"].compression == "LZ4"  # LZ4_RAW, as parquet-go's `lz4`
    assert chunks["timestamp"].compression == "UNCOMPRESSED"
    assert "DELTA_BINARY_PACKED" in chunks["timestamp"].encodings
    table = f.read()
    got = sorted(zip(table.column("timestamp").cast(pa.int64()).to_pylist(),
                     [tuple(p) for p in table.column("labels").to_pylist()],
                     table.column("line").to_pylist(), strict=True))
    expected = sorted((int(v[0]), tuple(sorted(s["stream"].items())), v[1])
                      for s in plain["data"]["result"] for v in s["values"])
    assert len(got) == 4 and got == expected


def test_categorized_log_answer_as_parquet_has_stream_labels(client: httpx.Client) -> None:
    params = {"query": '{app="plain"}', **WINDOW}
    f = read_parquet(client.get("/loki/api/v1/query_range", params=params, headers={**PARQUET, **CATEGORIZE}))
    table = f.read()
    assert table.column("labels").to_pylist() == [[("app", "plain"), ("env", "dev"), ("service_name", "plain")]]
    assert table.column("line").to_pylist() == ["plain line"]
    assert table.column("timestamp").cast(pa.int64()).to_pylist() == [BASE_NS + 4 * 10**9]


def test_metric_range_answer_as_parquet(client: httpx.Client) -> None:
    params = {"query": 'sum by (app) (count_over_time({app=~"shop|plain"}[1m]))', **WINDOW, "step": "60"}
    plain = body(client.get("/loki/api/v1/query_range", params=params))
    f = read_parquet(client.get("/loki/api/v1/query_range", params=params, headers=PARQUET))
    assert leaf_columns(f) == [("timestamp", "INT64", "Timestamp", 0, 0),
                               ("labels.key_value.key", "BYTE_ARRAY", "String", 1, 1),
                               ("labels.key_value.value", "BYTE_ARRAY", "String", 1, 1),
                               ("value", "DOUBLE", "None", 0, 0)]
    assert "timeUnit=milliseconds" in str(f.schema.column(0).logical_type)
    table = f.read()
    expected = sorted((round(t * 1000), tuple(sorted(s["metric"].items())), float(v))
                      for s in plain["data"]["result"] for t, v in s["values"])
    got = sorted(zip(table.column("timestamp").cast(pa.int64()).to_pylist(),
                     [tuple(p) for p in table.column("labels").to_pylist()],
                     table.column("value").to_pylist(), strict=True))
    assert got == expected and len(got) > 0


def test_instant_answers_as_parquet(client: httpx.Client) -> None:
    vector = read_parquet(client.get("/loki/api/v1/query", params={"query": "vector(1)+vector(1)",
                                                                    "time": "4000000000"}, headers=PARQUET)).read()
    assert vector.to_pydict()["value"] == [2.0] and vector.column("labels").to_pylist() == [[]]
    assert vector.column("timestamp").cast(pa.int64()).to_pylist() == [4_000_000_000_000]
    scalar = read_parquet(client.get("/loki/api/v1/query", params={"query": "2 * 3", "time": "4000000000"},
                                     headers=PARQUET)).read()
    assert scalar.to_pydict()["value"] == [6.0] and scalar.column("labels").to_pylist() == [[]]


def test_other_accept_values_answer_json(client: httpx.Client) -> None:
    r = client.get("/loki/api/v1/query", params={"query": "vector(1)", "time": "4000000000"},
                   headers={"Accept": "application/json, application/vnd.apache.parquet"})
    assert body(r)["data"]["result"] == [{"metric": {}, "value": [4000000000, "1"]}]


# The label browser


def test_labels_restricted_to_a_selector_and_window(client: httpx.Client) -> None:
    all_names = body(client.get("/loki/api/v1/labels", params=WINDOW))["data"]
    assert {"app", "env", "service_name"} <= set(all_names)
    names = body(client.get("/loki/api/v1/labels", params={**WINDOW, "query": '{app="plain"}'}))["data"]
    assert names == ["app", "env", "service_name"]
    before = {"start": str(BASE_NS - 10**12), "end": str(BASE_NS - 10**11)}
    assert body(client.get("/loki/api/v1/labels", params={**before, "query": '{app="plain"}'}))["data"] == []


def test_label_values_restricted_to_a_selector(client: httpx.Client) -> None:
    values = body(client.get("/loki/api/v1/label/env/values", params=WINDOW))["data"]
    assert {"dev", "prod"} <= set(values)
    only = body(client.get("/loki/api/v1/label/env/values", params={**WINDOW, "query": '{app="shop"}'}))["data"]
    assert only == ["prod"]
    assert body(client.get("/loki/api/v1/label/nope/values", params=WINDOW))["data"] == []


def test_since_counts_back_from_end(client: httpx.Client) -> None:
    end = BASE_NS + 5 * 10**9
    # since=3s from end: [BASE+2s, BASE+5s] holds shop (BASE+2s, BASE+3s) and plain (BASE+4s)
    values = body(client.get("/loki/api/v1/label/app/values", params={"end": str(end), "since": "3s"}))["data"]
    assert values == ["plain", "shop"]
    values = body(client.get("/loki/api/v1/label/app/values", params={"end": str(end), "since": "500ms"}))["data"]
    assert values == []
    bad = client.get("/loki/api/v1/labels", params={"since": "1.5h"})
    assert bad.status_code == 400 and bad.text.startswith("could not parse 'since' parameter")


@pytest.mark.parametrize("query", ['{app="shop"} |= "x"', 'count_over_time({app="shop"}[1m])'])
def test_label_query_must_be_a_selector(client: httpx.Client, query: str) -> None:
    for path in ("/loki/api/v1/labels", "/loki/api/v1/label/app/values"):
        r = client.get(path, params={**WINDOW, "query": query})
        assert r.status_code == 400 and "only label matchers are supported" in r.text


def test_series_with_several_matchers(client: httpx.Client) -> None:
    doc = body(client.get("/loki/api/v1/series", params={**WINDOW,
                                                         "match[]": ['{app="shop"}', '{env="dev"}', '{app="shop"}']}))
    assert sorted(s["app"] for s in doc["data"]) == ["plain", "shop"]
    assert {"app": "shop", "env": "prod", "service_name": "shop"} in doc["data"]
    # `match` and `match[]` together: the union
    both = body(client.get("/loki/api/v1/series", params={**WINDOW, "match[]": '{app="shop"}',
                                                          "match": '{app="plain"}'}))
    assert sorted(s["app"] for s in both["data"]) == ["plain", "shop"]
    # a lone {} selects every stream
    every = body(client.get("/loki/api/v1/series", params={**WINDOW, "match[]": "{ }"}))
    assert {"plain", "shop"} <= {s["app"] for s in every["data"]}
