"""Per-tenant ingestion rate limits: Go's token bucket semantics and Loki's 429 text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lokiarrow.config import Limits
from lokiarrow.errors import TooManyRequests
from lokiarrow.ingest.limits import MIB, RateLimiter
from tests.ingest.helpers import NOW, NS, json_body, push

ONE_MIB_PER_S = replace(Limits(), ingestion_rate_mb=1, ingestion_burst_size_mb=2)


def test_burst_then_refill() -> None:
    limiter = RateLimiter()
    limiter.check("t", 1, 2 * MIB, ONE_MIB_PER_S, 0)                  # the bucket starts full
    with pytest.raises(TooManyRequests):
        limiter.check("t", 1, 1, ONE_MIB_PER_S, 0)
    limiter.check("t", 1, MIB // 2, ONE_MIB_PER_S, NS // 2)           # half a second refills half a MiB
    with pytest.raises(TooManyRequests):
        limiter.check("t", 1, 1, ONE_MIB_PER_S, NS // 2)
    limiter.check("t", 1, 2 * MIB, ONE_MIB_PER_S, 100 * NS)           # never more than the burst
    with pytest.raises(TooManyRequests):
        limiter.check("t", 1, 1, ONE_MIB_PER_S, 100 * NS)


def test_a_refused_push_takes_nothing() -> None:
    limiter = RateLimiter()
    with pytest.raises(TooManyRequests):
        limiter.check("t", 1, 2 * MIB + 1, ONE_MIB_PER_S, 0)         # more than the burst: never allowed
    limiter.check("t", 1, 2 * MIB, ONE_MIB_PER_S, 0)


def test_tenants_are_separate() -> None:
    limiter = RateLimiter()
    limiter.check("a", 1, 2 * MIB, ONE_MIB_PER_S, 0)
    limiter.check("b", 1, 2 * MIB, ONE_MIB_PER_S, 0)


def test_changed_limits_apply_and_cap_the_tokens() -> None:
    limiter = RateLimiter()
    limiter.check("t", 1, 0, ONE_MIB_PER_S, 0)
    smaller = replace(ONE_MIB_PER_S, ingestion_burst_size_mb=1)
    with pytest.raises(TooManyRequests):
        limiter.check("t", 1, MIB + 1, smaller, 0)
    limiter.check("t", 1, MIB, smaller, 0)


def test_message_is_lokis() -> None:
    limiter = RateLimiter()
    with pytest.raises(TooManyRequests) as caught:
        limiter.check("tenant-1", 7, 3 * MIB, ONE_MIB_PER_S, 0)
    assert caught.value.status == 429
    assert caught.value.message == (
        "ingestion rate limit exceeded for user tenant-1 (limit: 1048576 bytes/sec) while attempting to ingest "
        "'7' lines totaling '3145728' bytes, reduce log volume or contact your Loki administrator to see if the "
        "limit can be increased")


def test_push_counts_accepted_lines_and_metadata_bytes() -> None:
    limits = replace(Limits(), ingestion_rate_mb=1, ingestion_burst_size_mb=30 / MIB)
    body = json_body(({"app": "x"}, [[str(NOW), "0123456789"], [str(NOW), "abc", {"key": "value"}],
                                     [str(NOW + 3600 * NS), "refused, too new"]]))
    prepared = push(body, limits)          # 10 + 3 + len("key") + len("value"): detected_level is free
    assert (prepared.lines, prepared.bytes) == (2, 21)
    limiter = RateLimiter()
    push(body, limits, limiter=limiter)
    with pytest.raises(TooManyRequests, match="while attempting to ingest '2' lines totaling '21' bytes"):
        push(body, limits, limiter=limiter)
