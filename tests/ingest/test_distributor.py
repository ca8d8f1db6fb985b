"""prepare_push end to end: the ENTRIES batch, request order, label handling, formats, counts."""

from __future__ import annotations

import gzip
from dataclasses import replace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.config import Limits
from lokiarrow.errors import BadRequest
from lokiarrow.ingest import distributor
from lokiarrow.ingest.distributor import prepare_push
from lokiarrow.ingest.limits import RateLimiter
from lokiarrow.model import labels_string, stream_id
from lokiarrow.store.schema import ENTRIES
from lokiarrow.wire import PushStream, encode_push_request
from tests.ingest.helpers import NOW, NS, ProtoBody, json_body, proto_body, push, rows


def test_batch_schema_order_and_ids() -> None:
    prepared = push(proto_body(('{ b = "2" , a="1"}', [(NOW, "one"), (NOW - 5, "two")]),
                               ('{c="3"}', [(NOW - 1, "three")]),
                               ('{ b = "2" , a="1"}', [(NOW - 2, "four")])))
    assert prepared.batch.schema == ENTRIES
    a = '{a="1", b="2", service_name="unknown_service"}'
    c = '{c="3", service_name="unknown_service"}'
    assert [(r[0], r[1], r[2]) for r in rows(prepared)] == [(a, NOW, "one"), (a, NOW - 5, "two"), (c, NOW - 1, "three"),
                                                            (a, NOW - 2, "four")]
    assert prepared.batch.column("stream_id").to_pylist() == [stream_id(a)] * 2 + [stream_id(c), stream_id(a)]
    assert prepared.error is None


def test_json_and_protobuf_give_the_same_batch() -> None:
    entries = [(NOW, "level=info one"), (NOW - 1, '{"level":"error"}'), (NOW - 2, "")]
    from_json = push(json_body(({"app": "x", "env": "p"}, [[str(ts), line] for ts, line in entries])))
    from_proto = push(proto_body(('{env="p", app="x"}', entries)))
    assert from_json.batch.equals(from_proto.batch)


def test_legacy_and_gzip() -> None:
    body = orjson.dumps({"streams": [{"labels": '{app="x"}', "entries": [{"ts": "2026-01-08T00:00:00Z", "line": "hi"}]}]})
    prepared = prepare_push("t", gzip.compress(body), "application/json", "gzip", Limits(), NOW, legacy=True,
                            limiter=RateLimiter())
    assert rows(prepared) == [('{app="x", service_name="x"}', NOW, "hi", {"detected_level": "unknown"})]


def test_partial_accept() -> None:
    prepared = push(json_body(({"app": "x"}, [[str(NOW), "kept"], [str(NOW + 3600 * NS), "too new"]]),
                              ({"app": "y"}, [[str(NOW), "also kept"]])))
    assert [r[2] for r in rows(prepared)] == ["kept", "also kept"]
    assert (prepared.lines, prepared.bytes) == (2, 13)
    assert prepared.error == ("entry for stream '{app=\"x\", service_name=\"x\"}' has timestamp too new: "
                              "2026-01-08T01:00:00Z")


def test_only_empty_streams() -> None:
    prepared = push(json_body(({"app": "x"}, []), ({"app": "y"}, [])))
    assert (prepared.batch.num_rows, prepared.lines, prepared.bytes, prepared.error) == (0, 0, 0, None)
    assert prepared.batch.schema == ENTRIES


def test_metadata_column() -> None:
    prepared = push(json_body(({"app": "x"}, [[str(NOW), "a", {"z": "1", "k": "2"}], [str(NOW), "b"]])),
                    replace(Limits(), discover_log_levels=False))
    assert prepared.batch.column("metadata").to_pylist() == [[("z", "1"), ("k", "2")], None]


def test_a_metadata_name_loki_refuses() -> None:
    with pytest.raises(BadRequest) as caught:
        push(json_body(({"app": "x"}, [[str(NOW), "a", {"": "v"}]])))
    assert caught.value.message == "label name is empty"


def test_label_texts_are_parsed_once() -> None:
    text = '{cache_test="1"}'
    push(proto_body((text, [(NOW, "x")])))
    cached = distributor._LABELS[text]
    push(proto_body((text, [(NOW, "y")])))
    assert distributor._LABELS[text] is cached
    push(proto_body((text, [(NOW, "y")])), replace(Limits(), discover_service_name=("cache_test",)))
    assert distributor._LABELS[text].canonical == '{cache_test="1", service_name="1"}'


def test_surrogate_escaped_label_values_stay_printable() -> None:
    prepared = push(proto_body(('{app="a\\xffb"}', [(NOW, "x")])))
    assert rows(prepared)[0][0] == '{app="a\\xffb", service_name="a\\xffb"}'


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(st.sampled_from(["app", "job", "env", "pod", "level"]),
                                          st.text("abcxyz", min_size=1, max_size=3), min_size=1, max_size=3),
                          st.lists(st.tuples(st.integers(-20, 20), st.text(max_size=30)), max_size=5)),
                min_size=1, max_size=4))
def test_every_valid_entry_is_kept_in_order(streams: list) -> None:
    body = ProtoBody(encode_push_request([PushStream.of(labels, [NOW + m * 60 * NS for m, _ in entries],
                                                        [line for _, line in entries]) for labels, entries in streams]))
    prepared = push(body)
    expected = [(labels_string({**labels, "service_name": labels.get("app") or labels.get("job") or "unknown_service"}),
                 NOW + m * 60 * NS, line) for labels, entries in streams for m, line in entries if m <= 10]
    assert [r[:3] for r in rows(prepared)] == expected
    assert prepared.bytes == sum(len(line.encode()) for _, _, line in expected)
    assert (prepared.error is None) == all(m <= 10 for _, entries in streams for m, _ in entries)


def test_label_checks_follow_the_limits_in_use() -> None:
    body = json_body(({"app": "x", "env": "e"}, [[str(NOW), "x"]]))
    assert push(body).error is None
    assert push(body, replace(Limits(), max_label_names_per_series=1)).error == \
        "entry for stream '{app=\"x\", env=\"e\", service_name=\"x\"}' has 2 label names; limit 1"
    assert push(body).error is None


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from('{}="\'`,ab_1 \\\n.:x!~é'), max_size=20),
       st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3))
def test_any_labels_give_a_batch_or_bad_request(text: str, labels: dict[str, str]) -> None:
    for body in (proto_body((text, [(NOW, "x")])), json_body((labels, [[str(NOW), "x"]]))):
        try:
            push(body)
        except BadRequest:
            pass
