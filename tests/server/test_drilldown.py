"""Logs Drilldown's endpoints over a real server: detected labels, fields, field values, patterns, limits.

Expected answers are worked out here from the pushed entries (JSON decoded with `json`, logfmt
split by hand), not by calling lokiarrow's own code.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.server.pushing import BASE_NS, push

S = 10**9
RANGE = {"start": str(BASE_NS - 3600 * S), "end": str(BASE_NS + 3600 * S)}
UUIDS = ["550e8400-e29b-41d4-a716-446655440000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"]

JSON_LINES = [  # oldest first; lines 0..39, one every 3 s
    {"level": "info", "msg": "request done", "status": 200 if i % 4 else 404, "duration": f"{i + 1}ms",
     "size": "10KB", "latency": 1.5 + i, "ok": i % 2 == 0, "app": "inner", "req": i,
     "user": {"id": f"u{i % 3}", "tags": ["a", "b"]}}
    for i in range(40)
]
LOGFMT_LINES = [  # oldest first; lines 0..34
    f'level=warn caller=main.go:{10 + i % 2} count={i} took={i % 5 + 1}s mem=5MiB msg="disk almost full"'
    for i in range(35)
]
PLAIN_GET = [f"GET /api/users/{i} took {i * 3} ms" for i in range(45)]
PLAIN_ERROR = [f"connection error to db-{i % 4} after {i} retries" for i in range(32)]
PLAIN_RARE = [f"user alice logged in from host {i}" for i in range(10)]
JSON_MESSAGES = [json.dumps({"level": "info", "msg": f"user {i} logged in from host-{i % 3}", "n": i}) for i in range(31)]
LOGFMT_TIMED = [f"ts=2026-01-19T22:00:{i:02d}Z level=debug msg=tick n={i % 7}" for i in range(30)]


def _ts(i: int, spacing: int = 3) -> int:
    return BASE_NS + i * spacing * S


@pytest.fixture(scope="module", autouse=True)
def data(client: httpx.Client) -> None:
    push(client, {"app": "jsonapp", "env": "prod", "namespace": "7", "pod_uid": UUIDS[0], "shard": "0"},
         [[_ts(i), json.dumps(doc), {"trace_id": f"t{i % 2}"}] for i, doc in enumerate(JSON_LINES)])
    push(client, {"app": "logfmtapp", "env": "dev", "pod_uid": UUIDS[1], "shard": "1", "build": "17"},
         [[_ts(i) + 1, line] for i, line in enumerate(LOGFMT_LINES)])
    plain = [[_ts(i, 5) + 2, line] for i, line in enumerate(PLAIN_GET)]
    plain += [[_ts(i, 5) + 3, line] for i, line in enumerate(PLAIN_ERROR)]
    plain += [[_ts(i, 5) + 4, line] for i, line in enumerate(PLAIN_RARE)]
    push(client, {"app": "plainapp", "env": "prod", "build": "18"}, sorted(plain))
    push(client, {"app": "jsonmsg"}, [[_ts(i), line] for i, line in enumerate(JSON_MESSAGES)])
    push(client, {"app": "timed"}, [[_ts(i), line] for i, line in enumerate(LOGFMT_TIMED)])
    push(client, {"app": "mixed", "build": "19"},
         [[_ts(0), "v=abc"], [_ts(1), "v=12"], [_ts(2), "v=13"]])


def get(client: httpx.Client, path: str, expect: int = 200, **params: Any) -> Any:
    r = client.get(path, params={**RANGE, **params})
    assert r.status_code == expect, r.text
    return r.json() if expect == 200 else r.text


def fields_of(client: httpx.Client, query: str, **params: Any) -> dict[str, dict[str, Any]]:
    doc = get(client, "/loki/api/v1/detected_fields", query=query, **params)
    return {f["label"]: f for f in doc.get("fields", [])}


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}_"))
        elif not isinstance(value, list):
            out[prefix + key] = json.dumps(value) if isinstance(value, bool) else str(value)
    return out


def _logfmt(line: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(line))


# --- detected labels ---------------------------------------------------------------------------

def test_detected_labels_leave_out_id_like_labels(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/detected_labels")
    got = {d["label"]: d["cardinality"] for d in doc["detectedLabels"]}
    # pod_uid (UUIDs) and build (numbers) are ids; namespace is static, shard is 0/1
    assert got == {"app": 6, "env": 2, "namespace": 1, "shard": 2, "service_name": 6}
    assert [d["label"] for d in doc["detectedLabels"]] == sorted(got)


def test_detected_labels_for_a_selector(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/detected_labels", query='{env="prod"}')
    assert {d["label"]: d["cardinality"] for d in doc["detectedLabels"]} == \
        {"app": 2, "env": 1, "namespace": 1, "shard": 1, "service_name": 2}


def test_detected_labels_outside_the_range_are_empty(client: httpx.Client) -> None:
    r = client.get("/loki/api/v1/detected_labels", params={"start": str(BASE_NS - 9000 * S),
                                                           "end": str(BASE_NS - 8000 * S)})
    assert r.status_code == 200 and r.json() == {}


# --- detected fields ---------------------------------------------------------------------------

def test_json_fields_types_cardinalities_parsers_and_paths(client: httpx.Client) -> None:
    got = fields_of(client, '{app="jsonapp"}', line_limit=1000)
    parsed = [_flatten(doc) for doc in JSON_LINES]
    names = {"app_extracted" if k == "app" else k for row in parsed for k in row}
    assert set(got) == names | {"trace_id", "detected_level"}
    for name in names:
        key = "app" if name == "app_extracted" else name
        assert got[name]["cardinality"] == len({row[key] for row in parsed}), name
        assert got[name]["parsers"] == ["json"], name
    assert {n: got[n]["type"] for n in names} == {
        "level": "string", "msg": "string", "status": "int", "duration": "duration", "size": "bytes",
        "latency": "float", "ok": "boolean", "app_extracted": "string", "req": "int", "user_id": "string"}
    assert got["user_id"]["jsonPath"] == ["user", "id"]
    assert got["status"]["jsonPath"] == ["status"]
    assert "jsonPath" not in got["app_extracted"]   # the path is known under the name before `_extracted`
    # structured metadata: no parser
    assert got["trace_id"] == {"label": "trace_id", "type": "string", "cardinality": 2, "parsers": None}
    assert got["detected_level"]["parsers"] is None and got["detected_level"]["cardinality"] == 1


def test_logfmt_fields(client: httpx.Client) -> None:
    got = fields_of(client, '{app="logfmtapp"}', line_limit=1000)
    parsed = [_logfmt(line) for line in LOGFMT_LINES]
    for key in parsed[0]:
        assert got[key]["parsers"] == ["logfmt"], key
        assert got[key]["cardinality"] == len({row[key] for row in parsed}), key
        assert "jsonPath" not in got[key]
    assert {k: got[k]["type"] for k in parsed[0]} == {
        "level": "string", "caller": "string", "count": "int", "took": "duration", "mem": "bytes", "msg": "string"}


def test_plain_lines_give_no_parsed_fields(client: httpx.Client) -> None:
    got = fields_of(client, '{app="plainapp"}', line_limit=1000)
    assert set(got) == {"detected_level"}   # only metadata (bare words are empty logfmt keys)


def test_line_limit_samples_the_newest_lines(client: httpx.Client) -> None:
    got = fields_of(client, '{app="jsonapp"}', line_limit=5)
    assert got["req"]["cardinality"] == 5
    assert got["duration"]["cardinality"] == 5
    # the query's filters apply before sampling
    got = fields_of(client, '{app="jsonapp"} |= "\\"status\\": 404"', line_limit=1000)
    assert got["status"]["cardinality"] == 1 and got["req"]["cardinality"] == sum(
        1 for doc in JSON_LINES if doc["status"] == 404)


def test_type_is_decided_by_the_last_entry_read(client: httpx.Client) -> None:
    # entries are read newest first: the oldest value (`abc`) decides
    assert fields_of(client, '{app="mixed"}')["v"]["type"] == "string"
    newest_two = {"start": str(_ts(1)), "end": str(_ts(3))}
    r = client.get("/loki/api/v1/detected_fields", params={"query": '{app="mixed"}', **newest_two})
    assert {f["label"]: f["type"] for f in r.json()["fields"]}["v"] == "int"


def test_post_form_is_read_as_get(client: httpx.Client) -> None:
    r = client.post("/loki/api/v1/detected_fields", data={"query": '{app="jsonapp"}', "limit": "2", **RANGE})
    assert r.status_code == 200 and r.json()["limit"] == 2 and len(r.json()["fields"]) == 2


def test_field_limit(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/detected_fields", query='{app="jsonapp"}', limit=3)
    assert doc["limit"] == 3 and len(doc["fields"]) == 3
    doc = get(client, "/loki/api/v1/detected_fields", query='{app="nothing"}')
    assert doc == {}


def test_fields_from_the_querys_parser(client: httpx.Client) -> None:
    got = fields_of(client, '{app="jsonapp"} | json | status="404"', line_limit=1000)
    assert got["status"]["cardinality"] == 1 and got["status"]["parsers"] == ["json"]


# --- detected field values ---------------------------------------------------------------------

def test_field_values(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/detected_field/status/values", query='{app="jsonapp"}', line_limit=1000)
    assert sorted(doc["values"]) == sorted({str(d["status"]) for d in JSON_LINES})
    doc = get(client, "/loki/api/v1/detected_field/user_id/values", query='{app="jsonapp"}', line_limit=1000)
    assert sorted(doc["values"]) == ["u0", "u1", "u2"]
    doc = get(client, "/loki/api/v1/detected_field/trace_id/values", query='{app="jsonapp"}')
    assert sorted(doc["values"]) == ["t0", "t1"]
    doc = get(client, "/loki/api/v1/detected_field/nope/values", query='{app="jsonapp"}')
    assert doc == {}


def test_bytes_values_are_written_as_loki_writes_them(client: httpx.Client) -> None:
    # 5MiB = 5,242,880 bytes = 5.2 MB (SI, one decimal below 10); 10KB stays 10kB
    doc = get(client, "/loki/api/v1/detected_field/mem/values", query='{app="logfmtapp"}')
    assert doc["values"] == ["5.2MB"]
    doc = get(client, "/loki/api/v1/detected_field/size/values", query='{app="jsonapp"}')
    assert doc["values"] == ["10kB"]


def test_values_limit(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/detected_field/req/values", query='{app="jsonapp"}', line_limit=1000, limit=4)
    assert len(doc["values"]) == 4 and doc["limit"] == 4


# --- patterns ----------------------------------------------------------------------------------

def _expected_samples(stamps: list[int], step_s: int) -> list[list[int]]:
    buckets: Counter[int] = Counter()
    for ts in stamps:
        ms = ts // 10**6
        ms -= ms % 10_000
        buckets[(ms - ms % (step_s * 1000)) // 1000] += 1
    return [[t, n] for t, n in sorted(buckets.items())]


def test_patterns_and_their_counts(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/patterns", query='{app="plainapp"}', step="60s")
    assert doc["status"] == "success"
    got = {p["pattern"]: p for p in doc["data"]}
    assert set(got) == {"GET <_> took <_> ms", "connection error to <_> after <_> retries"}
    get_lines = got["GET <_> took <_> ms"]
    assert get_lines["level"] == "unknown"
    assert get_lines["samples"] == _expected_samples([_ts(i, 5) + 2 for i in range(len(PLAIN_GET))], 60)
    errors = got["connection error to <_> after <_> retries"]
    assert errors["level"] == "error"
    assert errors["samples"] == _expected_samples([_ts(i, 5) + 3 for i in range(len(PLAIN_ERROR))], 60)
    # most frequent first; the 10 `user alice …` lines are below Loki's 30-line floor
    assert [p["pattern"] for p in doc["data"]][0] == "GET <_> took <_> ms"


def test_patterns_of_logfmt_lines_keep_keys_and_quotes(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/patterns", query='{app="logfmtapp"}', step="300")
    [one] = doc["data"]
    # `main.go:10` is one token (`.` and `:` do not split)
    assert one["pattern"] == 'level=warn caller=<_> count=<_> took=<_> mem=5MiB msg="disk almost full"'
    assert sum(n for _, n in one["samples"]) == len(LOGFMT_LINES)


def test_patterns_of_json_lines_mine_the_message(client: httpx.Client) -> None:
    # the `msg` field's text, printed between placeholders (the rest of the object varies)
    doc = get(client, "/loki/api/v1/patterns", query='{app="jsonmsg"}', step="3600")
    assert [(p["pattern"], p["level"]) for p in doc["data"]] == [("<_>user <_> logged in from <_>", "info")]
    assert sum(n for _, n in doc["data"][0]["samples"]) == len(JSON_MESSAGES)


def test_patterns_of_logfmt_time_fields_are_placeholders(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/patterns", query='{app="timed"}', step="3600")
    assert [p["pattern"] for p in doc["data"]] == ["ts=<_> level=debug msg=tick n=<_>"]


def test_patterns_none(client: httpx.Client) -> None:
    doc = get(client, "/loki/api/v1/patterns", query='{app="nothing"}')
    assert doc == {"status": "success", "data": []}


# --- limits ------------------------------------------------------------------------------------

def test_drilldown_limits(client: httpx.Client) -> None:
    r = client.get("/loki/api/v1/drilldown-limits")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert set(doc) == {"limits", "pattern_ingester_enabled", "version"}
    assert doc["version"] == client.get("/loki/api/v1/status/buildinfo").json()["version"]  # a Loki 3 version
    limits = doc["limits"]
    assert set(limits) == {
        "discover_log_levels", "discover_service_name", "log_level_fields", "max_entries_limit_per_query",
        "max_line_size_truncate", "max_query_bytes_read", "max_query_length", "max_query_lookback",
        "max_query_range", "max_query_series", "metric_aggregation_enabled", "otlp_config",
        "pattern_persistence_enabled", "query_timeout", "retention_period", "volume_enabled", "volume_max_series"}
    # the server runs with max_entries_limit_per_query 100000 and max_query_length 0 (tests/conftest.py)
    assert limits["max_entries_limit_per_query"] == 100000
    assert limits["max_query_length"] == "0s" and limits["query_timeout"] == "1m"
    assert limits["discover_service_name"][0] == "service" and limits["discover_log_levels"] is True
    assert list(limits) == sorted(limits)


def test_drilldown_limits_durations_print_as_lokis() -> None:
    from lokiarrow.server.routes_drilldown import go_duration

    hour = 3600 * S
    assert [go_duration(v) for v in (0, 721 * hour, 24 * 7 * hour, 90 * 24 * hour, 90 * S, 1500 * 10**6)] == \
        ["0s", "30d1h", "1w", "90d", "1m30s", "1s500ms"]


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "params", "text"), [
    ("/loki/api/v1/detected_fields", {"query": 'sum(rate({a="b"}[1m]))'}, "only log selector is supported"),
    ("/loki/api/v1/detected_fields", {}, "parse error"),
    ("/loki/api/v1/detected_fields", {"query": '{app="x"', }, "parse error"),
    ("/loki/api/v1/detected_fields", {"query": '{app="x"}', "line_limit": "x"}, 'parsing "x": invalid syntax'),
    ("/loki/api/v1/detected_fields", {"query": '{app="x"}', "limit": "0"}, "limit must be a positive value"),
    ("/loki/api/v1/detected_fields", {"query": '{app="x"}', "line_limit": "200000"},
     "max entries limit per query exceeded"),
    ("/loki/api/v1/detected_fields", {"query": '{app="x"}', "start": "soon"}, 'cannot parse "soon"'),
    ("/loki/api/v1/detected_field/a/values", {"query": '{app="x"}', "line_limit": "-1"},
     "limit must be a positive value"),
    ("/loki/api/v1/detected_labels", {"query": '{app='}, "parse error"),
    ("/loki/api/v1/detected_labels", {"query": '{app="x"}', "start": "20", "end": "10"},
     "end timestamp must not be before"),
    ("/loki/api/v1/patterns", {"query": '{app="x"} |= "a"'}, "only label matchers are supported"),
    ("/loki/api/v1/patterns", {}, "parse error"),
    ("/loki/api/v1/patterns", {"query": '{app="x"}', "step": "0"}, "zero or negative query resolution step"),
])
def test_bad_input_is_400(client: httpx.Client, path: str, params: dict[str, str], text: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert text in r.text


# --- flushed data answers the same ---------------------------------------------------------------

def test_answers_after_flush_are_the_same(client: httpx.Client) -> None:
    before = (get(client, "/loki/api/v1/detected_fields", query='{app="jsonapp"}', line_limit=1000),
              get(client, "/loki/api/v1/patterns", query='{app="plainapp"}', step="60s"),
              get(client, "/loki/api/v1/detected_labels"))
    assert client.post("/flush").status_code == 204
    after = (get(client, "/loki/api/v1/detected_fields", query='{app="jsonapp"}', line_limit=1000),
             get(client, "/loki/api/v1/patterns", query='{app="plainapp"}', step="60s"),
             get(client, "/loki/api/v1/detected_labels"))
    assert after == before
