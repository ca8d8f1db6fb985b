"""Loki 3's enrichment: service_name and detected_level, unit by unit and against Loki's own answers."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.config import DEFAULT_SERVICE_NAME_LABELS, Limits
from lokiarrow.ingest.enrich import (
    SMALL,
    LevelDetector,
    add_service_name,
    detect_line_level,
    level_from_metadata,
    normalize_level,
    sanitize_metadata_name,
)
from tests.ingest.helpers import NOW, json_body, push, rows

CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance"


# -- service_name -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DEFAULT_SERVICE_NAME_LABELS)
def test_service_name_from_each_candidate(name: str) -> None:
    assert add_service_name({name: "svc", "other": "o"}, Limits())["service_name"] == "svc"


def test_service_name_takes_the_first_candidate_in_list_order() -> None:
    labels = {"job": "j", "container": "c", "app": "a"}
    assert add_service_name(labels, Limits())["service_name"] == "a"
    assert labels == {"job": "j", "container": "c", "app": "a"}   # not changed in place


@pytest.mark.parametrize("labels, limits, expected", [
    ({"other": "o"}, Limits(), {"other": "o", "service_name": "unknown_service"}),
    ({"service_name": "given", "app": "a"}, Limits(), {"service_name": "given", "app": "a"}),
    ({"app": "a"}, replace(Limits(), discover_service_name=()), {"app": "a"}),
    ({"app": "a", "mine": "m"}, replace(Limits(), discover_service_name=("mine", "app")),
     {"app": "a", "mine": "m", "service_name": "m"}),
])
def test_service_name_cases(labels: dict[str, str], limits: Limits, expected: dict[str, str]) -> None:
    assert add_service_name(labels, limits) == expected


def test_service_name_in_the_stored_labels() -> None:
    prepared = push(json_body(({"container": "web", "pod": "p"}, [[str(NOW), "x"]])))
    assert rows(prepared)[0][0] == '{container="web", pod="p", service_name="web"}'


# -- detected_level ---------------------------------------------------------------------------------

LINES = [
    # JSON: the first level field holding a string, top level or one object down, in document order
    ('{"level":"info","msg":"x"}', "info"),
    ('{"msg":"x","severity":"WARNING"}', "warn"),
    ('  {"msg":"x", "Level" : "err"}\n', "error"),
    ('{"log.level":"dbg"}', "debug"),
    ('{"ctx":{"level":"trace"},"level":"info"}', "trace"),
    ('{"a":{"b":{"level":"debug"}},"msg":"fatal crash"}', "debug"),     # 2 deep: not a field; words find "debug"
    ('{"a":[{"level":"x"}],"msg":"nothing"}', "unknown"),              # arrays are skipped
    ('{"level":5,"lvl":"fatal"}', "fatal"),                              # numbers are skipped
    ('{"level":"custom","msg":"warn: disk"}', "warn"),                   # not a level word: the words decide
    ('{"level":"inf\\"o"}', "unknown"),
    ('{"level":"INFORMATION"}', "info"),
    ('{"SeverityText":"Critical"}', "critical"),
    ('{"x":"]","level":"wrn"}', "warn"),
    ('{"broken": "level":"info"', "info"),                               # not JSON (no closing brace): words
    # logfmt: the field of the list a line has first (names in any case), through well-formed fields
    ("level=info msg=hello", "info"),
    ('ts=1 msg="a level=warn b" level=debug', "debug"),
    ('ts=1 LEVEL="error" x=y', "error"),
    ("ts=1 severity=warn lvl=debug", "warn"),
    ("ts=1 lvl=debug severity=warn", "warn"),
    ("ts=1 lvl=trc", "trace"),
    ("msg=x Level=FATAL", "fatal"),
    ('a="quoted"level=warn', "warn"),
    ("ts=1 level=bogus msg=oops", "unknown"),
    ("ts=1 level=bogus msg=error", "error"),
    # words: the earliest, with word boundaries
    ("GET /x 200 WARN something", "warn"),
    ("[ERROR] boom", "error"),
    ("errors are fine, info here", "info"),
    ("misc:error happened", "unknown"),
    ("info: started", "info"),
    ("2026-01-01 DEBUG (main) fatal later", "debug"),
    ("|critical|", "critical"),
    ("nothing to see", "unknown"),
    ("", "unknown"),
]


@pytest.mark.parametrize("line, level", LINES, ids=[repr(line)[:40] for line, _ in LINES])
def test_line_levels(line: str, level: str) -> None:
    assert detect_line_level(line) == level


def test_line_levels_vectorised_equal_one_by_one() -> None:
    detected = LevelDetector().detect(pa.array([line for line, _ in LINES] * 3, pa.string()))
    assert detected.to_pylist() == [level for _, level in LINES] * 3


fragments = st.sampled_from(['{', '}', '[', ']', '"', ':', ',', '=', ' ', '\n', '\\', '\\"', 'level', 'LEVEL', 'lvl',
                              'severity', 'log.level', 'info', 'WARN', 'err', 'error', 'debug', 'trc', 'fatal', 'x',
                              'é', '"level":"', 'level=', '{"a":', '"msg":"'])
line_st = st.lists(fragments, max_size=14).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(line_st, min_size=SMALL, max_size=SMALL + 20))
def test_vectorised_and_line_by_line_agree(lines: list[str]) -> None:
    detector = LevelDetector()
    assert detector.detect(pa.array(lines, pa.string())).to_pylist() == [detector.detect_one(line) for line in lines]


def test_custom_level_fields() -> None:
    detector = LevelDetector(fields=("sev",))
    lines = ['{"level":"debug","sev":"error"}', "sev=warn level=info"] * SMALL
    assert detector.detect(pa.array(lines)).to_pylist() == ["error", "warn"] * SMALL
    assert [detector.detect_one(line) for line in lines[:2]] == ["error", "warn"]


@pytest.mark.parametrize("value, level", [("WARNING", "warn"), ("Err", "error"), ("trc", "trace"), ("dbg", "debug"),
                                          ("inf", "info"), ("wrn", "warn"), ("odd", "odd"), ("", "")])
def test_normalize_level(value: str, level: str) -> None:
    assert normalize_level(value) == level


@pytest.mark.parametrize("pairs, stream_level, result, after", [
    ([("detected_level", "WARNING")], "info", "", [("detected_level", "warn")]),
    ([("k", "v")], "error", "error", [("k", "v")]),
    ([("level", "Debug")], None, "debug", [("level", "Debug")]),
    ([("severity_text", "oddity")], None, "oddity", [("severity_text", "oddity")]),
    ([("level", "")], None, "", [("level", "")]),
    ([("severity_number", "17")], None, "error", [("severity_number", "17")]),
    ([("severity_number", "0")], None, "unknown", [("severity_number", "0")]),
    ([("severity_number", "x")], None, "info", [("severity_number", "x")]),
    ([("k", "v")], None, None, [("k", "v")]),
])
def test_level_from_metadata(pairs: list[tuple[str, str]], stream_level: str | None, result: str | None,
                             after: list[tuple[str, str]]) -> None:
    assert level_from_metadata(pairs, stream_level, LevelDetector().fields) == result
    assert pairs == after


def test_detected_level_sources_through_the_push_path() -> None:
    prepared = push(json_body(
        ({"app": "a", "level": "WARN"}, [[str(NOW), "error in line"]]),                       # stream label
        ({"app": "b"}, [[str(NOW), "error in line", {"severity": "debug"}]]),                # metadata
        ({"app": "c"}, [[str(NOW), '{"level":"fatal"}'], [str(NOW), "lvl=trace"], [str(NOW), "WARN x"],
                        [str(NOW), "plain"]]),                                               # the line
        ({"app": "d"}, [[str(NOW), "x", {"detected_level": "ERR"}]]),                        # already there
    ))
    assert [r[3] for r in rows(prepared)] == [
        {"detected_level": "warn"}, {"severity": "debug", "detected_level": "debug"},
        {"detected_level": "fatal"}, {"detected_level": "trace"}, {"detected_level": "warn"},
        {"detected_level": "unknown"}, {"detected_level": "error"}]


def test_no_detected_level_when_turned_off() -> None:
    body = json_body(({"app": "a"}, [[str(NOW), "error"], [str(NOW), "x", {"k": "v"}]]))
    assert [r[3] for r in rows(push(body, replace(Limits(), discover_log_levels=False)))] == [None, {"k": "v"}]


# -- structured metadata names ----------------------------------------------------------------------

@pytest.mark.parametrize("name, clean", [
    ("trace_id", "trace_id"), ("trace.id", "trace_id"), ("trace__id", "trace_id"), ("a-b.c", "a_b_c"),
    ("1abc", "key_1abc"), ("_x", "_x"), ("__x__", "__x__"), ("__a.b__", "__a_b__"), ("ü", None), ("_", None),
    ("____", None), ("", None),
])
def test_sanitize_metadata_name(name: str, clean: str | None) -> None:
    if clean is None:
        with pytest.raises(ValueError):
            sanitize_metadata_name(name)
    else:
        assert sanitize_metadata_name(name) == clean


def test_metadata_names_are_sanitised_in_the_batch() -> None:
    prepared = push(json_body(({"app": "a"}, [[str(NOW), "x", {"trace.id": "t", "ok": "bad\ufffdbyte"}]])))
    assert rows(prepared)[0][3] == {"trace_id": "t", "ok": "badbyte", "detected_level": "unknown"}


# -- against Loki ---------------------------------------------------------------------------------

@pytest.mark.skipif(not (CONFORMANCE / "cases.jsonl.gz").exists(), reason="conformance data not present")
def test_levels_and_service_names_match_lokis_answers() -> None:
    """Every line a real Loki returned unchanged in a log query carries the detected_level and
    service_name Loki gave it; push the same data and compare."""
    expected: dict[tuple[int, str], set[tuple[str | None, str | None]]] = {}
    with gzip.open(CONFORMANCE / "cases.jsonl.gz", "rt") as f:
        for case in map(json.loads, f):
            if case["expected"].get("resultType") == "streams":
                for stream in case["expected"]["result"]:
                    got = (stream["stream"].get("detected_level"), stream["stream"].get("service_name"))
                    for ts, line in stream["values"]:
                        expected.setdefault((int(ts), line), set()).add(got)
    limits = replace(Limits(), reject_old_samples=False, creation_grace_period=10**19 // 2, max_line_size=0)
    ours: dict[tuple[int, str], tuple[str | None, str | None]] = {}
    with gzip.open(CONFORMANCE / "data.jsonl.gz", "rt") as f:
        for data in map(json.loads, f):
            for labels, ts, line, metadata in rows(push(json_body((data["labels"], data["entries"])), limits)):
                ours[(ts, line)] = ((metadata or {}).get("detected_level"), labels.split('service_name="')[1].split('"')[0])
    compared = [key for key in expected if key in ours]
    assert len(compared) > 3000
    assert [(key, ours[key]) for key in compared if ours[key] not in expected[key]] == []
