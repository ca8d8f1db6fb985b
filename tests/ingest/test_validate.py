"""Loki's validation messages, exactly, through the whole push path; one case a row."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lokiarrow.config import Limits
from lokiarrow.errors import BadRequest
from lokiarrow.ingest.distributor import NoStreams
from lokiarrow.ingest.validate import go_rfc3339, group_errors
from tests.ingest.helpers import NOW, NS, json_body, proto_body, push, rows

MIN = 60 * NS
X = '{app="x", service_name="x"}'
TOO_MANY = {f"l{i:02d}": "v" for i in range(16)}
TOO_MANY_TEXT = "{" + ", ".join(f'l{i:02d}="v"' for i in range(16)) + ', service_name="unknown_service"}'
SM_HINT = "Please see `limits_config.%s` or contact your Loki administrator to %s it"

# (id, body, limits changes, accepted lines, the 400 message)
CASES = [
    ("valid", json_body(({"app": "x"}, [[str(NOW), "ok"]])), {}, 1, None),
    ("missing labels", json_body(({}, [[str(NOW), "x"]])), {"discover_service_name": ()}, 0,
     "error at least one label pair is required per stream"),
    ("too many label names", json_body((TOO_MANY, [[str(NOW), "x"]])), {}, 0,
     f"entry for stream '{TOO_MANY_TEXT}' has 16 label names; limit 15"),
    ("service_name is not counted", json_body(({**TOO_MANY, "service_name": "s"}, [[str(NOW), "x"]])),
     {"max_label_names_per_series": 16}, 1, None),
    ("label name too long", json_body(({"a" * 11: "v", "app": "x"}, [[str(NOW), "x"]])), {"max_label_name_length": 10}, 0,
     f"stream '{{{'a' * 11}=\"v\", app=\"x\", service_name=\"x\"}}' has label name too long: '{'a' * 11}'"),
    ("label value too long", json_body(({"app": "x" * 11}, [[str(NOW), "x"]])), {"max_label_value_length": 10}, 0,
     f"stream '{{app=\"{'x' * 11}\", service_name=\"{'x' * 11}\"}}' has label value too long: '{'x' * 11}'"),
    ("duplicate label names", proto_body(('{a="1", a="2"}', [(NOW, "x")])), {}, 0,
     "stream '{a=\"1\", a=\"2\", service_name=\"unknown_service\"}' has duplicate label name: 'a'"),
    ("line too long", json_body(({"app": "x"}, [[str(NOW), "x" * 11], [str(NOW), "x" * 10]])), {"max_line_size": 10}, 1,
     f"max entry size '10' bytes exceeded for stream '{X}' while adding an entry with length '11' bytes"),
    ("line length counts bytes", json_body(({"app": "x"}, [[str(NOW), "é" * 6]])), {"max_line_size": 11}, 0,
     f"max entry size '11' bytes exceeded for stream '{X}' while adding an entry with length '12' bytes"),
    ("max_line_size 0 is no limit", json_body(({"app": "x"}, [[str(NOW), "x" * 100_000]])), {"max_line_size": 0}, 1, None),
    ("too old", json_body(({"app": "x"}, [[str(NOW - 7 * 1440 * MIN - NS), "x"]])), {}, 0,
     f"entry for stream '{X}' has timestamp too old: 2025-12-31T23:59:59Z, oldest acceptable timestamp is: "
     "2026-01-01T00:00:00Z"),
    ("old accepted when not rejected", json_body(({"app": "x"}, [["0", "x"]])), {"reject_old_samples": False}, 1, None),
    ("too new", json_body(({"app": "x"}, [[str(NOW + 11 * MIN), "x"]])), {}, 0,
     f"entry for stream '{X}' has timestamp too new: 2026-01-08T00:11:00Z"),
    ("within the grace period", json_body(({"app": "x"}, [[str(NOW + 10 * MIN), "x"]])), {}, 1, None),
    ("metadata disallowed", json_body(({"app": "x"}, [[str(NOW), "x", {"k": "v"}], [str(NOW), "y"]])),
     {"allow_structured_metadata": False}, 1,
     f"stream '{X}' includes structured metadata, but this feature is disallowed. "
     + SM_HINT % ("allow_structured_metadata", "enable")),
    ("metadata too large", json_body(({"app": "x"}, [[str(NOW), "x", {"key": "12345678"}]])),
     {"max_structured_metadata_size": 10}, 0,
     f"stream '{X}' has structured metadata too large: '11' bytes, limit: '10' bytes. "
     + SM_HINT % ("max_structured_metadata_size", "increase")),
    ("detected_level is not counted in the size", json_body(({"app": "x"}, [[str(NOW), "x", {"detected_level": "info"}]])),
     {"max_structured_metadata_size": 1}, 1, None),
    ("metadata too many", json_body(({"app": "x"}, [[str(NOW), "x", {"a": "1", "b": "2"}]])),
     {"max_structured_metadata_entries_count": 1}, 0,
     f"stream '{X}' has too many structured metadata labels: '2', limit: '1'. "
     + SM_HINT % ("max_structured_metadata_entries_count", "increase")),
    ("first failing check wins", json_body(({"app": "x"}, [[str(NOW + 11 * MIN), "x" * 20, {"a": "1"}]])),
     {"max_line_size": 10, "allow_structured_metadata": False}, 0,
     f"entry for stream '{X}' has timestamp too new: 2026-01-08T00:11:00Z"),
    ("a stream without entries is not validated", json_body((TOO_MANY, [])), {}, 0, None),
    ("same message grouped", json_body(({"app": "x"}, [[str(NOW + 11 * MIN), "x"]] * 3)), {}, 0,
     f"3 errors like: entry for stream '{X}' has timestamp too new: 2026-01-08T00:11:00Z"),
    ("different messages grouped, in request order",
     json_body(({"app": "x"}, [[str(NOW), "x" * 11], [str(NOW + 11 * MIN), "y"], [str(NOW), "z" * 11]]),
               (TOO_MANY, [[str(NOW), "x"]])),
     {"max_line_size": 10}, 0,
     f"2 errors like: max entry size '10' bytes exceeded for stream '{X}' while adding an entry with length '11' "
     f"bytes; 1 errors like: entry for stream '{X}' has timestamp too new: 2026-01-08T00:11:00Z; "
     f"1 errors like: entry for stream '{TOO_MANY_TEXT}' has 16 label names; limit 15"),
]


@pytest.mark.parametrize("body, changes, accepted, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation(body: bytes, changes: dict, accepted: int, message: str | None) -> None:
    prepared = push(body, replace(Limits(), **changes))
    assert prepared.error == message
    assert prepared.lines == accepted == prepared.batch.num_rows


@pytest.mark.parametrize("labels, message", [
    ('{a.b="c"}', "couldn't parse labels: 1:3: parse error: unexpected character inside braces: '.'"),
    ('{a="b",,}', "couldn't parse labels: 1:8: parse error: unexpected \",\" in label set, expected identifier or \"}\""),
    ('{a="b"', "couldn't parse labels: 1:7: parse error: unexpected end of input inside braces"),
])
def test_unparsable_labels_refuse_the_whole_request(labels: str, message: str) -> None:
    body = proto_body(('{ok="1"}', [(NOW, "fine")]), (labels, [(NOW, "x")]))
    with pytest.raises(BadRequest) as caught:
        push(body)
    assert caught.value.message == message
    assert caught.value.status == 400


def test_json_label_names_are_parsed_as_loki_prints_them() -> None:
    with pytest.raises(BadRequest, match=r"couldn't parse labels: 1:2: parse error: unexpected character"):
        push(json_body(({"1x": "y"}, [[str(NOW), "x"]])))


def test_empty_label_values_are_dropped() -> None:
    prepared = push(json_body(({"app": "x", "empty": ""}, [[str(NOW), "x"]])))
    assert rows(prepared)[0][0] == X


def test_no_streams_is_422() -> None:
    with pytest.raises(NoStreams) as caught:
        push(json_body())
    assert caught.value.status == 422
    assert caught.value.message == "error at least one valid stream is required for ingestion"


def test_truncation() -> None:
    limits = replace(Limits(), max_line_size=10, max_line_size_truncate=True)
    prepared = push(json_body(({"app": "x"}, [[str(NOW), "0123456789ab"], [str(NOW), "ééééééé"]])), limits)
    assert prepared.error is None
    assert [r[2] for r in rows(prepared)] == ["0123456789", "ééééé"]


@pytest.mark.parametrize("messages, text", [
    ([], None),
    (["a"], "a"),
    (["a", "a"], "2 errors like: a"),
    (["a", "b", "a"], "2 errors like: a; 1 errors like: b"),
])
def test_group_errors(messages: list[str], text: str | None) -> None:
    assert group_errors(messages) == text


@pytest.mark.parametrize("ns, text", [(0, "1970-01-01T00:00:00Z"), (NOW + NS - 1, "2026-01-08T00:00:00Z"),
                                      (-1, "1969-12-31T23:59:59Z")])
def test_go_rfc3339(ns: int, text: str) -> None:
    assert go_rfc3339(ns) == text
