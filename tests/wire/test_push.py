"""Content-Encoding and Content-Type handling of push bodies."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from lokiarrow.errors import BadRequest
from lokiarrow.wire import PushStream, decode_push, encode_push_request

JSON = orjson.dumps({"streams": [{"stream": {"a": "b"}, "values": [["1", "x"], ["2", "y"]]}]})
PROTO = encode_push_request([PushStream.of('{a="b"}', [1, 2], ["x", "y"])])


def lines(streams: list[PushStream]) -> list[str]:
    return [line for s in streams for line in s.lines.to_pylist()]


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("content_type, body", [("application/json", JSON), ("application/x-protobuf", PROTO)])
@pytest.mark.parametrize("encoding, encode", [
    (None, lambda b: b),
    ("", lambda b: b),
    ("gzip", gzip.compress),
    ("gzip", lambda b: gzip.compress(b[:5]) + gzip.compress(b[5:])),   # two members, as Go reads them
    ("deflate", deflate),
])
def test_encodings(content_type: str, body: bytes, encoding: str | None, encode) -> None:  # type: ignore[no-untyped-def]
    assert lines(decode_push(encode(body), content_type, encoding)) == ["x", "y"]


@pytest.mark.parametrize("content_type", [None, "", "application/x-protobuf", "application/octet-stream"])
def test_anything_but_json_is_protobuf(content_type: str | None) -> None:
    assert lines(decode_push(PROTO, content_type, None)) == ["x", "y"]


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8", " application/json ;x=y"])
def test_json_media_type(content_type: str) -> None:
    assert lines(decode_push(JSON, content_type, None)) == ["x", "y"]


def test_unknown_encoding() -> None:
    with pytest.raises(BadRequest) as caught:
        decode_push(JSON, "application/json", "br")
    assert caught.value.message == 'Content-Encoding "br" not supported'


@pytest.mark.parametrize("body, message", [
    (b"not gzip", "cannot parse push request: gzip: Error -3 while decompressing data: incorrect header check"),
    (gzip.compress(JSON)[:-12], "cannot parse push request: gzip: unexpected EOF"),
])
def test_bad_gzip(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_push(body, "application/json", "gzip")
    assert caught.value.message == message


def test_decompression_bomb_is_refused() -> None:
    bomb = gzip.compress(b"{" + b" " * (2 << 20) + b"}")
    with pytest.raises(BadRequest, match=r"request body too large: decompressed message size too large than max"):
        decode_push(bomb, "application/json", "gzip", max_decompressed_bytes=1 << 20)
