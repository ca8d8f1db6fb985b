"""Per-stream rate limits: the token bucket per (tenant, stream), Loki's 429 text, the push path."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest

from lokiarrow.config import Limits, from_yaml, parse_byte_size
from lokiarrow.errors import BadRequest, TooManyRequests
from lokiarrow.ingest.distributor import PreparedPush, prepare_push
from lokiarrow.ingest.limits import (
    IDLE_NS,
    SWEEP_EVERY_NS,
    ActiveStreams,
    RateLimiter,
    StreamRateLimiter,
    byte_size,
    go_time,
)
from tests.conftest import PERMISSIVE, Server
from tests.ingest.helpers import NOW, NS, json_body, rows
from tests.server.pushing import BASE_NS, lines, push, query

SMALL = replace(Limits(), per_stream_rate_limit=1000, per_stream_rate_limit_burst=2000)
HINT = ("consider splitting a stream via additional labels or contact your Loki administrator to see if the "
        "limit can be increased")


def _push(body: bytes, limits: Limits = SMALL, now: int = NOW, limiter: StreamRateLimiter | None = None,
          tenant_limiter: RateLimiter | None = None) -> PreparedPush:
    return prepare_push("tenant", body, "application/json", None, limits, now,
                        limiter=tenant_limiter or RateLimiter(), stream_limiter=limiter or StreamRateLimiter())


def test_burst_then_refill() -> None:
    limiter = StreamRateLimiter()
    assert limiter.allow("t", [(1, 2000)], SMALL, 0) == [True]          # the bucket starts full
    assert limiter.allow("t", [(1, 1)], SMALL, 0) == [False]
    assert limiter.allow("t", [(1, 500)], SMALL, NS // 2) == [True]      # half a second refills 500 bytes
    assert limiter.allow("t", [(1, 1)], SMALL, NS // 2) == [False]
    assert limiter.allow("t", [(1, 2000)], SMALL, 100 * NS) == [True]    # never more than the burst
    assert limiter.allow("t", [(1, 1)], SMALL, 100 * NS) == [False]


def test_a_refused_stream_takes_nothing() -> None:
    limiter = StreamRateLimiter()
    assert limiter.allow("t", [(1, 2001)], SMALL, 0) == [False]         # more than the burst: never allowed
    assert limiter.allow("t", [(1, 2000)], SMALL, 0) == [True]


def test_streams_and_tenants_are_separate_and_a_stream_given_twice_pays_twice() -> None:
    limiter = StreamRateLimiter()
    assert limiter.allow("t", [(1, 1500), (2, 1500), (1, 1500)], SMALL, 0) == [True, True, False]
    assert limiter.allow("u", [(1, 2000)], SMALL, 0) == [True]
    assert limiter.allow("t", [(1, 500), (2, 500), (2, 1)], SMALL, 0) == [True, True, False]


def test_new_limits_start_a_full_bucket() -> None:
    limiter = StreamRateLimiter()
    assert limiter.allow("t", [(1, 2000)], SMALL, 0) == [True]
    bigger = replace(SMALL, per_stream_rate_limit_burst=3000)
    assert limiter.allow("t", [(1, 3000)], bigger, 0) == [True]
    assert limiter.allow("t", [(1, 1)], bigger, 0) == [False]


def test_idle_buckets_are_forgotten() -> None:
    limiter = StreamRateLimiter()
    limiter.allow("t", [(sid, 1000) for sid in range(100)], SMALL, 0)
    limiter.allow("t", [(1000, 10)], SMALL, SWEEP_EVERY_NS)              # the others refilled by now: swept
    assert len(limiter) == 1
    # a partly drained bucket is kept until it has refilled: forgetting it earlier would give tokens back
    limiter.allow("t", [(1000, 2000)], SMALL, 2 * SWEEP_EVERY_NS)
    limiter.allow("t", [(1001, 1)], SMALL, 2 * SWEEP_EVERY_NS + NS)
    assert limiter.allow("t", [(1000, 1001)], SMALL, 2 * SWEEP_EVERY_NS + NS) == [False]
    # a rate of 0 never refills: such a bucket goes once idle for IDLE_NS
    frozen = replace(SMALL, per_stream_rate_limit=0)
    limiter.allow("t", [(7, 2000)], frozen, 3 * SWEEP_EVERY_NS)
    assert limiter.allow("t", [(7, 1)], frozen, 3 * SWEEP_EVERY_NS + IDLE_NS // 2) == [False]
    limiter.allow("t", [(8, 1)], frozen, 3 * SWEEP_EVERY_NS + IDLE_NS // 2 + IDLE_NS)
    assert len(limiter) == 1                                             # only stream 8 is left


@pytest.mark.parametrize(("size", "text"), [
    (3 << 20, "3MB"), (15 << 20, "15MB"), (1536 << 10, "1536KB"), (1000, "1000B"), (0, "0B"), (1 << 30, "1GB"),
    (1025, "1025B"),
])
def test_byte_sizes_print_as_lokis(size: int, text: str) -> None:
    assert byte_size(size) == text


def test_timestamps_print_as_gos() -> None:
    assert go_time(NOW) == "2026-01-08 00:00:00 +0000 UTC"
    assert go_time(NOW + 500_000_000) == "2026-01-08 00:00:00.5 +0000 UTC"
    assert go_time(NOW + 1) == "2026-01-08 00:00:00.000000001 +0000 UTC"


@pytest.mark.parametrize(("text", "size"), [
    ("3MB", 3 << 20), ("15mb", 15 << 20), ("512KB", 512 << 10), ("1000", 1000), ("2 GB", 2 << 30), ("7B", 7),
    ("1k", 1024),
])
def test_byte_size_settings_read_as_lokis(text: str, size: int) -> None:
    assert parse_byte_size(text) == size


@pytest.mark.parametrize("text", ["1.5MB", "1MiB", "MB", "-1", "", "3 MBs"])
def test_byte_size_settings_loki_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid byte size"):
        parse_byte_size(text)


def test_limits_config_reads_the_stream_limits() -> None:
    assert (Limits().per_stream_rate_limit, Limits().per_stream_rate_limit_burst) == (3 << 20, 15 << 20)
    cfg = from_yaml("limits_config:\n  per_stream_rate_limit: 512KB\n  per_stream_rate_limit_burst: 1048576\n")
    assert (cfg.limits.per_stream_rate_limit, cfg.limits.per_stream_rate_limit_burst) == (512 << 10, 1 << 20)


def _message(labels: str, entries: list[tuple[int, int]], total: int | None = None) -> str:
    ignored = "".join(f"entry with timestamp {go_time(ts)} ignored, reason: 'Per stream rate limit exceeded "
                      f"(limit: 1000B/sec) while attempting to ingest for stream '{labels}' totaling {size}B, "
                      f"{HINT}',\n" for ts, size in entries)
    n = len(entries) if total is None else total
    return ignored + f"user 'tenant', total ignored: {n} out of {n} for stream: {labels}"


def test_a_stream_over_its_limit_is_refused_whole_and_the_others_are_kept() -> None:
    limiter = StreamRateLimiter()
    body = json_body(({"app": "a"}, [[str(NOW), "x" * 1500], [str(NOW + 1), "y" * 600]]),
                     ({"app": "b"}, [[str(NOW), "z" * 100]]))
    prepared = _push(body, limiter=limiter)
    assert [(r[0], r[2]) for r in rows(prepared)] == [('{app="b", service_name="b"}', "z" * 100)]
    assert (prepared.lines, prepared.bytes, prepared.status) == (1, 100, 429)
    assert prepared.error == _message('{app="a", service_name="a"}', [(NOW, 1500), (NOW + 1, 600)])
    failure = prepared.failure()
    assert isinstance(failure, TooManyRequests) and failure.message == prepared.error
    # the refused stream took nothing: 2000 bytes still pass, at once
    assert rows(_push(json_body(({"app": "a"}, [[str(NOW), "x" * 2000]])), limiter=limiter))


def test_structured_metadata_counts_and_the_answer_lists_ten_entries() -> None:
    values = [[str(NOW + i), "x" * 100, {"trace_id": "abcdef"}] for i in range(12)]   # 100 + 8 + 6 bytes each
    with pytest.raises(TooManyRequests) as refused:
        _push(json_body(({"app": "a"}, values)))                             # nothing left to store: 429 at once
    labels = '{app="a", service_name="a"}'
    assert refused.value.message == _message(labels, [(NOW + i, 114) for i in range(10)], total=12)


def test_the_429_replaces_the_400_of_refused_entries() -> None:
    body = json_body(({"app": "a"}, [[str(NOW), "x" * 2001]]),
                     ({"app": "b"}, [[str(NOW + 20 * 60 * NS), "too new"], [str(NOW), "ok"]]))
    prepared = _push(body)
    assert prepared.status == 429 and prepared.error is not None and prepared.error.startswith("entry with timestamp")
    assert [r[2] for r in rows(prepared)] == ["ok"]
    without = _push(json_body(({"app": "b"}, [[str(NOW + 20 * 60 * NS), "too new"], [str(NOW), "ok"]])))
    assert without.status == 400 and isinstance(without.failure(), BadRequest)
    assert _push(json_body(({"app": "b"}, [[str(NOW), "ok"]]))).failure() is None


def test_the_tenant_limit_comes_first_and_a_refused_push_costs_no_stream_anything() -> None:
    limits = replace(SMALL, ingestion_rate_mb=0.001, ingestion_burst_size_mb=0.001)  # 1048 bytes
    limiter = StreamRateLimiter()
    with pytest.raises(TooManyRequests, match="ingestion rate limit exceeded"):
        _push(json_body(({"app": "a"}, [[str(NOW), "x" * 1500]])), limits, limiter=limiter)
    assert len(limiter) == 0


# against a real server: 1KB/s per stream, 2KB of burst
STREAM_LIMITS = PERMISSIVE + "  per_stream_rate_limit: 1KB\n  per_stream_rate_limit_burst: 2KB\n"


def _push_streams(client: httpx.Client, *streams: tuple[dict[str, str], list[list[Any]]]) -> httpx.Response:
    body = {"streams": [{"stream": labels, "values": [[str(ts), line] for ts, line in values]}
                        for labels, values in streams]}
    return client.post("/loki/api/v1/push", content=orjson.dumps(body), headers={"Content-Type": "application/json"})


def test_a_stream_over_its_rate_is_refused_and_the_rest_of_the_push_is_stored(
        start_server: Callable[..., Server]) -> None:
    server = start_server(STREAM_LIMITS)
    with server.client() as client:
        r = _push_streams(client, ({"app": "a"}, [[BASE_NS, "x" * 1500], [BASE_NS + 1, "y" * 600]]),
                          ({"app": "b"}, [[BASE_NS, "kept"]]))
        assert r.status_code == 429      # a stream over its rate: 429, though the other one is stored
        labels = '{app="a", service_name="a"}'
        reason = (f"Per stream rate limit exceeded (limit: 1KB/sec) while attempting to ingest for stream '{labels}' "
                  f"totaling %s, {HINT}")
        assert r.text.strip() == (f"entry with timestamp {go_time(BASE_NS)} ignored, reason: '{reason % '1500B'}',\n"
                                  f"entry with timestamp {go_time(BASE_NS + 1)} ignored, reason: '{reason % '600B'}',\n"
                                  f"user 'fake', total ignored: 2 out of 2 for stream: {labels}")
        assert lines(query(client, '{app=~"a|b"}')) == ["kept"]
        # a push whose every stream is over its limit (more than the 2KB burst): 429 at once
        r = _push_streams(client, ({"app": "a"}, [[BASE_NS + 2, "x" * 2049]]))
        assert r.status_code == 429 and f"for stream '{labels}' totaling 2049B" in r.text


def test_the_stream_limit_refills_with_time(start_server: Callable[..., Server]) -> None:
    server = start_server(STREAM_LIMITS)
    with server.client() as client:
        push(client, {"app": "a"}, [[BASE_NS, "x" * 2000]])                      # the whole burst
        r = push(client, {"app": "a"}, [[BASE_NS + 1, "y" * 1000]], expect=429)
        assert "Per stream rate limit exceeded (limit: 1KB/sec)" in r.text and "totaling 1000B" in r.text
        push(client, {"app": "other"}, [[BASE_NS, "z" * 2000]])                  # another stream has its own
        deadline = time.monotonic() + 10                                          # 1000 bytes take ~1 s to refill
        while _push_streams(client, ({"app": "a"}, [[BASE_NS + 1, "y" * 1000]])).status_code == 429:
            assert time.monotonic() < deadline, "the stream's bucket never refilled"
            time.sleep(0.2)
        assert lines(query(client, '{app="a"}')) == ["y" * 1000, "x" * 2000]


# max_global_streams_per_user: active streams (entries within the idle period) per tenant

def test_active_streams_admit_up_to_the_limit_and_forget_idle_ones() -> None:
    active = ActiveStreams()
    assert active.admit("t", [1, 2, 3], 2, 0) == [True, True, False]
    assert active.admit("t", [2, 1, 4], 2, 10**9) == [True, True, False]   # known ones always pass
    assert active.admit("other", [4], 2, 10**9) == [True]                   # per tenant
    assert active.admit("t", [4], 0, 10**9) == [True]                       # 0: no limit
    later = 31 * 60 * 10**9                                                 # all idle past 30 minutes
    assert active.admit("t", [5, 6, 7], 2, later) == [True, True, False]


def test_a_new_stream_past_the_limit_is_refused_and_known_ones_still_take_entries(
        start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE + "  max_global_streams_per_user: 2\n")
    with server.client() as client:
        push(client, {"app": "a"}, [[BASE_NS, "a1"]])
        push(client, {"app": "b"}, [[BASE_NS, "b1"]])
        r = _push_streams(client, ({"app": "a"}, [[BASE_NS + 1, "a2"]]), ({"app": "c"}, [[BASE_NS, "c1"]]))
        assert r.status_code == 429
        assert r.text.strip() == ("maximum active stream limit exceeded when trying to create stream "
                                  "{app=\"c\", service_name=\"c\"}, reduce the number of active streams (reduce "
                                  "labels or reduce label values), or contact your Loki administrator to see if "
                                  "the limit can be increased, user: 'fake'")
        assert lines(query(client, '{app=~"a|b|c"}')) == ["a2", "a1", "b1"]
