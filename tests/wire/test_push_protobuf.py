"""The protobuf push body: round trips, the columnar fast path against upb's own decoding, malformed input."""

from __future__ import annotations

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.errors import BadRequest
from lokiarrow.wire import PushStream, decode_push, encode_push_request, logproto
from lokiarrow.wire.push_protobuf import decode_protobuf, decode_push_request

NS = 1_000_000_000


def clamp(ns: int) -> int:
    return min(max(ns, -(2**63)), 2**63 - 1)


def rows(streams: list[PushStream]) -> list[tuple[object, list[int], list[str], object]]:
    return [(s.labels, s.timestamps.to_pylist(), s.lines.to_pylist(), s.metadata) for s in streams]


def upb_body(streams: list[tuple[str, list[tuple[int, int, str, list[tuple[str, str]]]]]]) -> bytes:
    """A body written by protobuf itself: (labels, [(seconds, nanos, line, metadata)])."""
    request = logproto.PushRequest()
    for labels, entries in streams:
        stream = request.streams.add(labels=labels)
        for seconds, nanos, line, metadata in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = seconds, nanos
            for name, value in metadata:
                entry.structuredMetadata.add(name=name, value=value)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def test_round_trip() -> None:
    streams = [
        PushStream.of('{app="api"}', [1, 2 * NS, 3 * NS + 7], ["a", "", "c"]),
        PushStream.of({"job": "j", "env": "prod"}, [5], ["x"], [[("trace_id", "t1"), ("empty", "")]]),
        PushStream.of('{app="none"}', [], []),
    ]
    decoded = decode_push(encode_push_request(streams), "application/x-protobuf", None)
    assert rows(decoded) == [
        ('{app="api"}', [1, 2 * NS, 3 * NS + 7], ["a", "", "c"], None),
        ('{env="prod", job="j"}', [5], ["x"], [[("trace_id", "t1"), ("empty", "")]]),
        ('{app="none"}', [], [], None),
    ]


def test_protobuf_reads_what_we_write() -> None:
    body = encode_push_request([PushStream.of({"app": "x"}, [-NS - 1, 0, 5 * NS + 3], ["a", "", "c"],
                                              [[("k", "v")], [], [("", "")]])])
    request = logproto.PushRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
    [stream] = request.streams
    assert stream.labels == '{app="x"}'
    assert [(e.timestamp.seconds, e.timestamp.nanos, e.line, [(p.name, p.value) for p in e.structuredMetadata])
            for e in stream.entries] == [(-2, NS - 1, "a", [("k", "v")]), (0, 0, "", []), (5, 3, "c", [("", "")])]


def test_reads_what_protobuf_writes() -> None:
    body = upb_body([('{a="1"}', [(1700000000, 5, "l1", []), (1700000001, 0, "l2", [("k", "v")])]),
                     ('{b="2"}', [(1, 1, "ünïcödé ✓", [("x", "1"), ("y", "2")])])])
    assert rows(decode_push(body, None, None)) == [
        ('{a="1"}', [1700000000 * NS + 5, 1700000001 * NS], ["l1", "l2"], [[], [("k", "v")]]),
        ('{b="2"}', [NS + 1], ["ünïcödé ✓"], [[("x", "1"), ("y", "2")]]),
    ]


def test_snappy_content_encoding_header_is_accepted() -> None:
    body = encode_push_request([PushStream.of('{a="1"}', [1], ["x"])])
    assert rows(decode_push(body, "application/x-protobuf", "snappy"))[0][2] == ["x"]


def test_invalid_utf8_is_kept_with_replacement_characters() -> None:
    raw = logproto.RawEntryAdapter(line=b"bad \xff byte")
    raw.timestamp.seconds = 1
    payload = b"\x0a" + bytes([len(b'{a="\xff"}')]) + b'{a="\xff"}' + b"\x12" + bytes([len(raw.SerializeToString())]) \
        + raw.SerializeToString()
    body = b"\x0a" + bytes([len(payload)]) + payload
    [decoded] = decode_push_request(body)
    assert decoded.labels == '{a="\ufffd"}'
    assert decoded.lines.to_pylist() == ["bad \ufffd byte"]


entry_strategy = st.tuples(st.integers(-(2**40), 2**40), st.integers(-(2**31), 2**31 - 1),
                           st.text(max_size=20), st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)),
                                                          max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=10), st.lists(entry_strategy, max_size=6)), max_size=4))
def test_columnar_decoding_matches_entry_by_entry(streams: list) -> None:
    """Zero nanos, empty lines and empty metadata values shift the columns; the result must not change."""
    decoded = decode_push(upb_body(streams), None, None)
    expected = []
    for labels, entries in streams:
        metadata = [list(m) for *_, m in entries]
        expected.append((labels, [clamp(s * NS + n) for s, n, _, _ in entries], [line for _, _, line, _ in entries],
                         metadata if any(metadata) else None))
    assert rows(decoded) == expected


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_bad_request(data: bytes) -> None:
    for body in (data, bytes(cramjam.snappy.compress_raw(data))):
        try:
            decode_push(body, "application/x-protobuf", None)
        except BadRequest:
            pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_truncated_and_flipped_bodies_raise_only_bad_request(data: st.DataObject) -> None:
    body = upb_body([('{a="1"}', [(1, 2, "line", [("k", "v")])] * 3)])
    raw = bytearray(cramjam.snappy.decompress_raw(body))
    cut = data.draw(st.integers(0, len(raw)))
    flip = data.draw(st.integers(0, len(raw) - 1))
    raw[flip] ^= data.draw(st.integers(1, 255))
    for candidate in (bytes(raw[:cut]), bytes(raw)):
        try:
            decode_push_request(candidate)
        except BadRequest:
            pass


@pytest.mark.parametrize("body, message", [
    (b"", "cannot parse push request: snappy: corrupt input"),
    (b"\x05abc", "cannot parse push request: snappy: corrupt input"),
    (b"\x03\x08abc", "cannot parse push request: the body is not a valid snappy-compressed logproto.PushRequest"),
    (b"\xff\xff\xff\xff\x0f", r"request body too large: decompressed message size too large than max \(4294967295 vs"),
])
def test_bad_snappy(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        decode_push(body, "application/x-protobuf", None)


def test_decompressed_size_limit() -> None:
    body = encode_push_request([PushStream.of('{a="1"}', [1], ["x" * 1000])])
    with pytest.raises(BadRequest, match=r"request body too large: decompressed message size too large than max"):
        decode_protobuf(body, max_decompressed_bytes=100)


def test_out_of_range_timestamps_are_clamped_for_validation_to_refuse() -> None:
    [stream] = decode_push(upb_body([('{a="1"}', [(2**40, 0, "far", [])])]), None, None)
    assert stream.timestamps.to_pylist() == [2**63 - 1]
