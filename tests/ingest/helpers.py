"""Builders for push-path tests: bodies in each wire format and a `push` that runs the whole path."""

from __future__ import annotations

import calendar
from typing import Any

import orjson

from lokiarrow.config import Limits
from lokiarrow.ingest.distributor import PreparedPush, prepare_push
from lokiarrow.ingest.limits import RateLimiter
from lokiarrow.wire import PushStream, encode_push_request

NS = 1_000_000_000
NOW = calendar.timegm((2026, 1, 8, 0, 0, 0)) * NS     # 2026-01-08T00:00:00Z


def json_body(*streams: tuple[dict[str, str], list[list[Any]]]) -> bytes:
    """A v1 JSON body from (labels, values) pairs."""
    return orjson.dumps({"streams": [{"stream": labels, "values": values} for labels, values in streams]})


class ProtoBody(bytes):
    """A snappy-compressed protobuf body (told apart from JSON by its type, not its first byte)."""


def proto_body(*streams: tuple[str, list[tuple[int, str]]]) -> ProtoBody:
    """A protobuf body from (label text, [(ts, line)]) pairs."""
    return ProtoBody(encode_push_request([PushStream.of(labels, [ts for ts, _ in entries], [line for _, line in entries])
                                          for labels, entries in streams]))


def push(body: bytes, limits: Limits | None = None, *, now: int = NOW, limiter: RateLimiter | None = None
         ) -> PreparedPush:
    """Run prepare_push on a body (protobuf for a ProtoBody, else JSON), with a fresh rate limiter."""
    content_type = "application/x-protobuf" if isinstance(body, ProtoBody) else "application/json"
    return prepare_push("tenant", body, content_type, None,
                        limits or Limits(), now, limiter=limiter or RateLimiter())


def rows(prepared: PreparedPush) -> list[tuple[str, int, str, dict[str, str] | None]]:
    """The batch as (labels, ts, line, metadata) rows."""
    return [(r["labels"], r["ts"], r["line"], dict(r["metadata"]) if r["metadata"] is not None else None)
            for r in prepared.batch.to_pylist()]
