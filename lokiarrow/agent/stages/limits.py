"""Promtail's stages that let fewer entries through: `drop` (by extracted value, regex, age or
length), `limit` (a token bucket, per stream label if asked) and `sampling` (a random share)."""

from __future__ import annotations

import math
import random
import time
from typing import Any

import re2

from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.agent.stages import Builder, Stateless
from lokiarrow.model import QUIET_RE2, go_regex_error


class Drop(Stateless):
    """`drop`: an entry is dropped when every condition configured holds; a missing source
    keeps it. Conditions: the `source` values (joined by `separator`) exist, equal `value`, or
    match `expression` (else `expression` matches the line); older than `older_than`; longer
    than `longer_than` bytes."""

    def __init__(self, section: Section) -> None:
        from lokiarrow.agent.stages.labelling import lookup, to_string
        self.lookup, self.to_string = lookup, to_string
        source = section.raw("source")
        if source is None or source == "":
            self.sources: list[str] = []
        elif isinstance(source, str):
            self.sources = [source]
        elif isinstance(source, list) and all(isinstance(s, str) for s in source):
            self.sources = source
        else:
            raise ConfigError(section.at("source"), "must be a string or a list of strings")
        self.value = section.string("value")
        expression = section.string("expression")
        self.older_than = self.longer_than = None
        try:
            self.older_than = section.duration_ns("older_than")
        except ConfigError as exc:
            raise ConfigError(exc.path, "drop stage invalid duration, "
                              f"{section.raw('older_than')} cannot be converted to a duration: "
                              f"{exc.args[0].split(': ', 1)[1]}") from None
        try:
            self.longer_than = section.size("longer_than")
        except ConfigError as exc:
            raise ConfigError(exc.path, "drop stage failed to parse longer_than to bytes: "
                              f"{exc.args[0].split(': ', 1)[1]}") from None
        self.separator = section.string("separator", ";") or ""
        self.reason = section.string("drop_counter_reason") or "drop_stage"
        section.done()
        if not (self.sources or expression or self.older_than or self.longer_than):
            raise ConfigError(section.path, "drop stage config must contain at least one of "
                              "`source`, `expression`, `older_than` or `longer_than`")
        if self.value is not None and expression:
            raise ConfigError(section.path, "drop stage config error, `value` and `expression` "
                              "cannot both be defined at the same time.")
        if self.value is not None and not self.sources:
            raise ConfigError(section.at("value"),
                              "drop stage config must specify a source if value is specified")
        self.regex: Any = None
        if expression:
            try:
                self.regex = re2.compile(expression, QUIET_RE2)
            except re2.error as exc:
                raise ConfigError(section.at("expression"),
                                  f"drop stage regex compilation error: error parsing regexp: {go_regex_error(str(exc), expression)}") from None
        self.dropped = 0

    def process(self, entry: Entry) -> list[Entry]:
        if self._drops(entry):
            self.dropped += 1
            return []
        return [entry]

    def _drops(self, entry: Entry) -> bool:
        if self.older_than and entry.ts > time.time_ns() - self.older_than:
            return False
        if self.longer_than and len(entry.line.encode()) <= self.longer_than:
            return False
        if self.sources:
            values = [self.to_string(self.lookup(entry, s)) for s in self.sources]
            if any(v is None for v in values):
                return False
            joined = self.separator.join(v or "" for v in values)
            if self.value is not None:
                return joined == self.value
            if self.regex is not None:
                return self.regex.search(joined) is not None
            return True
        if self.regex is not None:
            return self.regex.search(entry.line) is not None
        return True


MIN_DISTINCT = 10000


def _number(section: Section, key: str, problem: str) -> float:
    """A number, or its text (Promtail decodes these weakly); absent reads as 0."""
    value = section.raw(key, 0)
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(section.at(key), f"{problem}: {value!r}") from None


class _Bucket:
    """A token bucket as Go's rate.Limiter: `rate` tokens a second, at most `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.last = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def allow(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self) -> None:
        self._refill()
        self.tokens -= 1
        if self.tokens < 0:
            time.sleep(-self.tokens / self.rate)


class Limit(Stateless):
    """`limit`: at most `rate` entries a second (bursts of `burst`); over it an entry waits, or
    with `drop: true` is dropped. With `by_label_name` each value of that label has its own
    bucket (entries without the label pass), at most `max_distinct_labels` of them."""

    def __init__(self, section: Section) -> None:
        problem = "limit stage failed to parse rate or burst"
        rate, burst = _number(section, "rate", problem), _number(section, "burst", problem)
        if not rate > 0 or rate == math.inf:   # NaN and infinities (`1e400`) too
            raise ConfigError(section.at("rate"), problem)
        if not 0 < burst < math.inf or burst != int(burst):
            raise ConfigError(section.at("burst"), problem)
        self.rate, self.burst = rate, int(burst)
        self.drop = section.boolean("drop", False)
        self.by_label = section.string("by_label_name") or ""
        # Promtail raises it to 10000 at least (a limiter costs ~80 bytes)
        self.max_distinct = max(section.integer("max_distinct_labels", 0) or 0, MIN_DISTINCT)
        section.done()
        if self.by_label and not self.drop:
            raise ConfigError(section.at("drop"), "When ratelimiting by label, drop must be true")
        self.bucket = _Bucket(self.rate, self.burst)
        self.buckets: dict[str, _Bucket] = {}  # this generation's, then the previous one's
        self.previous: dict[str, _Bucket] = {}
        self.dropped = 0

    def process(self, entry: Entry) -> list[Entry]:
        bucket = self.bucket
        if self.by_label:
            value = entry.labels.get(self.by_label)
            if value is None:
                return [entry]
            bucket = self._bucket(value)
        if not self.drop:
            bucket.wait()
            return [entry]
        if bucket.allow():
            return [entry]
        self.dropped += 1
        return []

    def _bucket(self, value: str) -> _Bucket:
        """Promtail's generational map: when a generation is full the one before it is forgotten,
        so label values unseen for a generation start with a full bucket again."""
        bucket = self.buckets.get(value)
        if bucket is None:
            bucket = self.previous.pop(value, None) or _Bucket(self.rate, self.burst)
            if len(self.buckets) >= self.max_distinct:
                self.previous, self.buckets = self.buckets, {}
            self.buckets[value] = bucket
        return bucket


class Sampling(Stateless):
    """`sampling`: keeps each entry with probability `rate`."""

    def __init__(self, section: Section) -> None:
        rate = _number(section, "rate", "sampling stage failed to parse rate")
        self.reason = section.string("drop_counter_reason") or "sampling_stage"
        section.done()
        if not 0 <= rate <= 1:
            raise ConfigError(section.at("rate"), "sampling stage failed to parse rate,Sampling "
                              f"Rate must be between 0.0 and 1.0, received {rate:f}")
        self.rate = rate
        self.random = random.Random()
        self.dropped = 0

    def process(self, entry: Entry) -> list[Entry]:
        if self.rate >= 1 or self.random.random() < self.rate:
            return [entry]
        self.dropped += 1
        return []


BUILDERS: dict[str, Builder] = {"drop": Drop, "limit": Limit, "sampling": Sampling}
