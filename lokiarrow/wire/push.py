"""A push request body, from HTTP bytes to columnar `PushStream`s, as Loki's push handler reads it.

1. Undo `Content-Encoding`: gzip or deflate; `snappy` and none pass the body on (protobuf bodies are
   snappy blocks whatever the header says); any other encoding is refused.
2. Pick the format from `Content-Type`: `application/json` is JSON (v1, or the legacy
   `/api/prom/push` shape when `legacy`); anything else is a snappy-compressed protobuf
   `logproto.PushRequest`. (Loki answers 400 to a push without Content-Type; we read it as protobuf.)
"""

from __future__ import annotations

import zlib
from typing import Any

from lokiarrow.errors import BadRequest, BodyTooLarge
from lokiarrow.model import go_quote
from lokiarrow.wire.push_json import decode_json, decode_legacy_json
from lokiarrow.wire.push_protobuf import decode_protobuf
from lokiarrow.wire.stream import PushStream

MAX_RECV_MSG_SIZE = 100 << 20        # Loki's distributor.max-recv-msg-size: a body as received
MAX_DECOMPRESSED_BYTES = 512 << 20
INFLATE_STEP = 1 << 20
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": -zlib.MAX_WBITS}


def decode_push(body: bytes, content_type: str | None, content_encoding: str | None, *,
                legacy: bool = False, max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES) -> list[PushStream]:
    """Decode a push body into its streams, in request order. Raises BadRequest, never anything else."""
    encoding = (content_encoding or "").strip()
    if encoding in _WBITS:
        body = _inflate(body, _WBITS[encoding], encoding, max_decompressed_bytes)
    elif encoding not in ("", "snappy"):
        raise BadRequest(f"Content-Encoding {go_quote(encoding)} not supported")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        if len(body) > max_decompressed_bytes:
            raise _too_large(len(body), max_decompressed_bytes)
        return decode_legacy_json(body) if legacy else decode_json(body)
    return decode_protobuf(body, max_decompressed_bytes)


def _inflate(body: bytes, wbits: int, encoding: str, limit: int) -> bytes:
    """Inflate within `limit` bytes; gzip members are read one after another, as Go's reader does."""
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            inflate_into(inflater, body, out, limit)
        except zlib.error as exc:
            raise BadRequest(f"cannot parse push request: {encoding}: {exc}") from None
        if len(out) > limit:
            raise _too_large(len(out), limit)
        if not inflater.eof:
            raise BadRequest(f"cannot parse push request: {encoding}: unexpected EOF")
        body = inflater.unused_data
        if not body or encoding != "gzip":
            return bytes(out)


def inflate_into(inflater: Any, data: bytes, out: bytearray, limit: int) -> None:
    """Inflate one deflate or gzip stream onto `out` in steps of INFLATE_STEP bytes, stopping
    once `out` holds more than `limit`: a bomb costs `limit` bytes of memory, never more."""
    while not inflater.eof and len(out) <= limit:
        step = inflater.decompress(data, min(INFLATE_STEP, limit + 1 - len(out)))
        data = inflater.unconsumed_tail
        if not step and not data:
            return
        out += step


def _too_large(size: int, limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request body too large: decompressed message size too large than max ({size} vs {limit})")
