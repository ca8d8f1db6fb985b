"""Ingestion rate limits: a token bucket per tenant, as Loki's distributor keeps one, and one per
stream, as Loki's ingester keeps one.

Tenant: the bucket refills at `ingestion_rate_mb` MiB/s and holds at most `ingestion_burst_size_mb`
MiB; it starts full. A push takes the bytes of its accepted lines and structured metadata; when the
bucket does not hold that many the whole push is refused with 429 and takes nothing (Go's
`rate.Limiter.AllowN`). A tenant whose limits change keeps its tokens, capped to the new burst.

Stream: the bucket refills at `per_stream_rate_limit` bytes/s and holds `per_stream_rate_limit_burst`
bytes. Each stream of a push takes its accepted bytes at once (Loki's default, `shard_streams.enabled`,
rate limits whole streams): a stream the bucket cannot pay for is refused whole and takes nothing.
A stream whose limits change starts again with a full bucket, as Loki's ingester does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
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

STREAM_RATE_LIMITED = ("Per stream rate limit exceeded (limit: %s/sec) while attempting to ingest for stream '%s' "
                       "totaling %s, consider splitting a stream via additional labels or contact your Loki "
                       "administrator to see if the limit can be increased")
ENTRY_IGNORED = "entry with timestamp %s ignored, reason: '%s',\n"
STREAM_IGNORED = "user '%s', total ignored: %d out of %d for stream: %s"
MAX_RETURNED_ERRORS = 10          # Loki's ingester.max-ignored-stream-errors
SWEEP_EVERY_NS = 10 * 10**9       # how often buckets that no longer matter are forgotten
IDLE_NS = 30 * 60 * 10**9         # a stream idle this long is forgotten (Loki's chunk_idle_period)


class StreamRateLimiter:
    """Token buckets keyed by (tenant, stream id). Thread-safe.

    Memory stays bounded by the streams active lately: a bucket that has refilled to its burst is
    the same as a new one, so every SWEEP_EVERY_NS the sweep forgets it, and any bucket idle for
    IDLE_NS (a rate of 0 never refills).
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._lock = threading.Lock()
        self._swept: int | None = None   # when the last sweep ran, on the callers' clock

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, tenant: str, streams: Sequence[tuple[int, int]], limits: Limits, now_ns: int) -> list[bool]:
        """For each (stream id, bytes) of a push, in order, whether its bucket paid for the bytes;
        a stream refused takes nothing. A stream given twice pays twice."""
        rate, burst = float(limits.per_stream_rate_limit), float(limits.per_stream_rate_limit_burst)
        out = []
        with self._lock:
            for sid, size in streams:
                key = (tenant, sid)
                bucket = self._buckets.get(key)
                if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
                    bucket = self._buckets[key] = _Bucket(rate, burst, burst, now_ns)
                elapsed = max(now_ns - bucket.last_ns, 0) / 1e9
                bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
                bucket.last_ns = max(now_ns, bucket.last_ns)
                allowed = size <= bucket.tokens
                if allowed:
                    bucket.tokens -= size
                out.append(allowed)
            if self._swept is None:
                self._swept = now_ns
            elif now_ns - self._swept >= SWEEP_EVERY_NS:
                self._sweep(now_ns)
        return out

    def _sweep(self, now_ns: int) -> None:
        self._swept = now_ns
        self._buckets = {key: b for key, b in self._buckets.items()
                         if now_ns - b.last_ns < IDLE_NS
                         and b.tokens + max(now_ns - b.last_ns, 0) / 1e9 * b.rate < b.burst}


STREAM_RATE_LIMITER = StreamRateLimiter()

STREAM_LIMITED = ("maximum active stream limit exceeded when trying to create stream %s, reduce the number of "
                  "active streams (reduce labels or reduce label values), or contact your Loki administrator to "
                  "see if the limit can be increased, user: '%s'")


class ActiveStreams:
    """Per tenant, the streams that got entries within IDLE_NS: those Loki's ingesters hold in
    memory and `max_global_streams_per_user` counts (one ingester here). Thread-safe; memory
    bounded by the active streams (idle ones are forgotten every SWEEP_EVERY_NS)."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()
        self._swept = 0

    def admit(self, tenant: str, stream_ids: Sequence[int], limit: int, now_ns: int) -> list[bool]:
        """Per stream: may it take entries (active already, or room for one more)? Admitted ones
        are active from now."""
        with self._lock:
            if now_ns - self._swept >= SWEEP_EVERY_NS:
                self._sweep(now_ns)
            active = self._seen.setdefault(tenant, {})
            out = []
            for sid in stream_ids:
                ok = sid in active or limit <= 0 or len(active) < limit
                if ok:
                    active[sid] = now_ns
                out.append(ok)
            return out

    def _sweep(self, now_ns: int) -> None:
        self._swept = now_ns
        for tenant, active in list(self._seen.items()):
            for sid in [s for s, seen in active.items() if now_ns - seen >= IDLE_NS]:
                del active[sid]
            if not active:
                del self._seen[tenant]


ACTIVE_STREAMS = ActiveStreams()
"""The process's per-stream limiter, used by `prepare_push` unless it is given another."""


def stream_rate_limited(tenant: str, labels: str, timestamps: Sequence[int], sizes: Sequence[int],
                        limits: Limits) -> str:
    """Loki's answer for a stream refused whole: the first MAX_RETURNED_ERRORS entries, then the count."""
    rate = byte_size(limits.per_stream_rate_limit)
    lines = [ENTRY_IGNORED % (go_time(ts), STREAM_RATE_LIMITED % (rate, labels, byte_size(size)))
             for ts, size in zip(timestamps[:MAX_RETURNED_ERRORS], sizes[:MAX_RETURNED_ERRORS], strict=True)]
    return "".join(lines) + STREAM_IGNORED % (tenant, len(timestamps), len(timestamps), labels)


_SIZE_UNITS = (("EB", 60), ("PB", 50), ("TB", 40), ("GB", 30), ("MB", 20), ("KB", 10))


def byte_size(n: int) -> str:
    """A byte count as Loki's flagext.ByteSize prints it: the largest binary unit dividing it
    exactly (`3MB`, `1536KB`, `1000B`, `0B`)."""
    for unit, shift in _SIZE_UNITS:
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n}B"


def go_time(ns: int) -> str:
    """A timestamp as Go's `time.Time.String()` prints it in UTC: `2026-01-19 22:00:00.5 +0000 UTC`."""
    seconds, fraction = divmod(ns, 10**9)
    try:
        text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):
        text = str(seconds)
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + " +0000 UTC"
