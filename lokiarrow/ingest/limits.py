"""Per-tenant ingestion rate limits: a token bucket per tenant, as Loki's distributor keeps one.

The bucket refills at `ingestion_rate_mb` MiB/s and holds at most `ingestion_burst_size_mb` MiB; it
starts full. A push takes the bytes of its accepted lines and structured metadata; when the bucket
does not hold that many the whole push is refused with 429 and takes nothing (Go's
`rate.Limiter.AllowN`). A tenant whose limits change keeps its tokens, capped to the new burst.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lokiarrow.config import Limits
from lokiarrow.errors import TooManyRequests

MIB = 1 << 20
RATE_LIMITED = ("ingestion rate limit exceeded for user %s (limit: %d bytes/sec) while attempting to ingest "
                "'%d' lines totaling '%d' bytes, reduce log volume or contact your Loki administrator to see "
                "if the limit can be increased")


@dataclass(slots=True)
class _Bucket:
    rate: float        # bytes per second
    burst: float       # bytes
    tokens: float
    last_ns: int


class RateLimiter:
    """Token buckets keyed by tenant. Thread-safe: pushes may run in a pool of threads."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, tenant: str, lines: int, size: int, limits: Limits, now_ns: int) -> None:
        """Take `size` bytes from the tenant's bucket, or raise TooManyRequests with Loki's message."""
        rate, burst = limits.ingestion_rate_mb * MIB, limits.ingestion_burst_size_mb * MIB
        with self._lock:
            bucket = self._buckets.get(tenant)
            if bucket is None:
                bucket = self._buckets[tenant] = _Bucket(rate, burst, burst, now_ns)
            elif (bucket.rate, bucket.burst) != (rate, burst):
                bucket.rate, bucket.burst = rate, burst
            elapsed = max(now_ns - bucket.last_ns, 0) / 1e9
            bucket.tokens = min(bucket.burst, bucket.tokens + elapsed * bucket.rate)
            bucket.last_ns = max(now_ns, bucket.last_ns)
            if size <= bucket.tokens:
                bucket.tokens -= size
                return
        raise TooManyRequests(RATE_LIMITED % (tenant, int(rate), lines, size))


RATE_LIMITER = RateLimiter()
"""The process's limiter, used by `prepare_push` unless it is given another."""
