"""JSON push bodies: Loki's v1 shape (fast Arrow path and exact orjson path agree), the legacy shape, errors."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.errors import BadRequest
from lokiarrow.wire import PushStream, decode_push
from lokiarrow.wire.push_json import decode_legacy_json

NS = 1_000_000_000


def rows(streams: list[PushStream]) -> list[tuple[object, list[int], list[str], object]]:
    return [(s.labels, s.timestamps.to_pylist(), s.lines.to_pylist(), s.metadata) for s in streams]


def decode(doc: Any) -> list[tuple[object, list[int], list[str], object]]:
    return rows(decode_push(orjson.dumps(doc), "application/json", None))


def test_values_and_metadata() -> None:
    assert decode({"streams": [
        {"stream": {"app": "a", "env": "prod"}, "values": [["1", "one"], ["2", "two", {"trace_id": "t", "u": "v"}]]},
        {"stream": {"app": "b"}, "values": [["3", "three"]]},
    ]}) == [
        ({"app": "a", "env": "prod"}, [1, 2], ["one", "two"], [[], [("trace_id", "t"), ("u", "v")]]),
        ({"app": "b"}, [3], ["three"], None),
    ]


def test_loki_leniencies() -> None:
    """Unknown keys ignored, null entries skipped, extra items ignored, short entries defaulted,
    number and boolean label values taken as their JSON text, a null label value as absent."""
    assert decode({"streams": [
        {"stream": {"a": "x", "port": 8080, "on": True, "gone": None}, "extra": [1, 2],
         "values": [None, ["1", "l", {}, "ignored"], ["2"], []]},
        {"stream": {"a": "y"}, "values": None},
        {"stream": {"a": "z"}},
    ], "other": 1}) == [
        ({"a": "x", "port": "8080", "on": "true"}, [1, 2, 0], ["l", "", ""], None),
        ({"a": "y"}, [], [], None),
        ({"a": "z"}, [], [], None),
    ]


def test_no_streams() -> None:
    assert decode({}) == []
    assert decode({"streams": []}) == []
    assert decode({"streams": None}) == []


def test_missing_stream_object_gives_empty_label_text() -> None:
    """Loki parses "" for such a stream and refuses it; the label parser reports that."""
    assert decode({"streams": [{"values": [["1", "x"]]}]}) == [("", [1], ["x"], None)]


def test_pretty_printed_and_unicode() -> None:
    body = orjson.dumps({"streams": [{"stream": {"app": "ü"}, "values": [["5", "✓ \"quoted\" \\ line"]]}]},
                        option=orjson.OPT_INDENT_2)
    assert rows(decode_push(body, "application/json; charset=utf-8", None)) == [
        ({"app": "ü"}, [5], ['✓ "quoted" \\ line'], None)]


def test_invalid_utf8_is_replaced() -> None:
    body = b'{"streams":[{"stream":{"a":"b"},"values":[["1","bad \xff"]]}]}'
    assert rows(decode_push(body, "application/json", None)) == [({"a": "b"}, [1], ["bad \ufffd"], None)]


@pytest.mark.parametrize("body, message", [
    (b"", "cannot parse push request: invalid JSON"),
    (b"{", "cannot parse push request: invalid JSON"),
    (b"[]", "cannot parse push request: the body must be a JSON object"),
    (b'{"streams": {}}', 'cannot parse push request: "streams" must be an array'),
    (b'{"streams": [1]}', "cannot parse push request: streams[0] must be an object"),
    (b'{"streams": [{"stream": "x"}]}', "cannot parse push request: streams[0].stream must be an object"),
    (b'{"streams": [{"stream": {}, "values": {}}]}', "cannot parse push request: streams[0].values must be an array"),
    (b'{"streams": [{"stream": {}, "values": ["1"]}]}', "cannot parse push request: streams[0].values[0] must be an array"),
    (b'{"streams": [{"stream": {}, "values": [[1, "x"]]}]}',
     "streams[0].values[0]: the timestamp must be a string of integer nanoseconds, got 1"),
    (b'{"streams": [{"stream": {}, "values": [["1.5", "x"]]}]}', 'integer nanoseconds, got "1.5"'),
    (b'{"streams": [{"stream": {}, "values": [[" 1", "x"]]}]}', 'integer nanoseconds, got " 1"'),
    (b'{"streams": [{"stream": {}, "values": [["9223372036854775808", "x"]]}]}', "out of range"),
    (b'{"streams": [{"stream": {}, "values": [["1", 2]]}]}', "values[0]: the log line must be a string"),
    (b'{"streams": [{"stream": {}, "values": [["1", "x", []]]}]}', "structured metadata must be an object"),
    (b'{"streams": [{"stream": {}, "values": [["1", "x", {"k": 1}]]}]}', "structured metadata: values must be strings"),
])
def test_errors(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_push(body, "application/json", None)
    assert message in caught.value.message


labels_st = st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)
entry_st = st.one_of(
    st.tuples(st.integers(-(2**63), 2**63 - 1).map(str), st.text(max_size=20)).map(list),
    st.tuples(st.integers(0, 2**62).map(str), st.text(max_size=8),
              st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)).map(list),
)
doc_st = st.fixed_dictionaries({"streams": st.lists(st.fixed_dictionaries(
    {"stream": labels_st}, optional={"values": st.one_of(st.none(), st.lists(entry_st, max_size=5))}), max_size=4)})


def reference(doc: dict[str, Any]) -> list[tuple[object, list[int], list[str], object]]:
    """What the body means, written the slow obvious way."""
    out: list[tuple[object, list[int], list[str], object]] = []
    for stream in doc["streams"]:
        values = stream.get("values") or []
        metadata = [list(v[2].items()) if len(v) > 2 else [] for v in values]
        out.append((stream["stream"], [int(v[0]) for v in values], [v[1] for v in values],
                    metadata if any(metadata) else None))
    return out


@settings(max_examples=300, deadline=None)
@given(doc_st)
def test_bulk_and_entry_by_entry_decoding_agree_with_reference(doc: dict[str, Any]) -> None:
    assert decode(doc) == reference(doc)


json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                          max_leaves=12)
shaped_value = st.fixed_dictionaries({"streams": st.lists(st.fixed_dictionaries(
    {"stream": json_value, "values": st.lists(st.lists(json_value, max_size=4), max_size=3)}), max_size=3)})


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_value, shaped_value))
def test_any_json_raises_only_bad_request(doc: Any) -> None:
    for legacy in (False, True):
        try:
            decode_push(json.dumps(doc).encode(), "application/json", None, legacy=legacy)
        except BadRequest:
            pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_bad_request(data: bytes) -> None:
    for legacy in (False, True):
        try:
            decode_push(data, "application/json", None, legacy=legacy)
        except BadRequest:
            pass


# -- legacy /api/prom/push ------------------------------------------------------------------------

@pytest.mark.parametrize("ts, ns", [
    ("2026-01-01T00:00:00Z", 1767225600 * NS),
    ("2026-01-01T00:00:00.123Z", 1767225600 * NS + 123_000_000),
    ("2026-01-01T00:00:00.123456789Z", 1767225600 * NS + 123_456_789),
    ("2026-01-01T00:00:00.1234567891Z", 1767225600 * NS + 123_456_789),
    ("2026-01-01T01:30:00.5+01:30", 1767225600 * NS + 500_000_000),
    ("2025-12-31T23:00:00-01:00", 1767225600 * NS),
    ("1970-01-01T00:00:00Z", 0),
])
def test_legacy_timestamps(ts: str, ns: int) -> None:
    body = orjson.dumps({"streams": [{"labels": '{a="b"}', "entries": [{"ts": ts, "line": "x"}]}]})
    assert rows(decode_legacy_json(body)) == [('{a="b"}', [ns], ["x"], None)]


def test_legacy_metadata_and_nulls() -> None:
    body = orjson.dumps({"streams": [{"labels": '{a="b"}', "entries": [
        None, {"ts": "2026-01-01T00:00:00Z", "line": "x", "structuredMetadata": {"k": "v"}}]}]})
    assert rows(decode_push(body, "application/json", None, legacy=True)) == [
        ('{a="b"}', [1767225600 * NS], ["x"], [[("k", "v")]])]


@pytest.mark.parametrize("ts, message", [
    ("2026-13-01T00:00:00Z", "is not a valid time"),
    ("2026-02-30T00:00:00Z", "is not a valid time"),
    ("2026-01-01 00:00:00Z", "cannot parse"),
    ("1767225600", "as an RFC3339 time"),
    (5, "as an RFC3339 time"),
])
def test_legacy_bad_timestamps(ts: Any, message: str) -> None:
    body = orjson.dumps({"streams": [{"labels": "{}", "entries": [{"ts": ts, "line": "x"}]}]})
    with pytest.raises(BadRequest, match=message):
        decode_legacy_json(body)


def test_python_logging_loki_payload() -> None:
    """What python-logging-loki's v0 emitter (the /api/prom/push client) sends."""
    from logging_loki.emitter import LokiEmitterV0

    emitter = LokiEmitterV0("http://unused/api/prom/push", tags={"app": "demo"})
    record = logging.LogRecord("svc", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.created = 1767225600.25
    body = orjson.dumps(emitter.build_payload(record, "hello world"))
    [stream] = decode_legacy_json(body)
    assert stream.labels == '{app="demo",severity="warning",logger="svc"}'
    assert stream.timestamps.to_pylist() == [1767225600 * NS + 250_000_000]
    assert stream.lines.to_pylist() == ["hello world"]
