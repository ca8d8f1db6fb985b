"""Retention as Loki decides it: a tenant's `retention_period`, and `retention_stream` rules (a
selector, a period, a priority) that override it for the streams they match. The compactor
(store/compactor.py) drops an index row (a stream in a chunk file) once all of it is older than
its stream's period: whole files at a time, as Loki drops whole chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from lokiarrow.config import Limits
from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.logql.parser import parse_matchers
from lokiarrow.model import Labels, Matcher
from lokiarrow.units import parse_duration_ns

MIN_STREAM_PERIOD_NS = 24 * 3600 * 10**9   # Loki refuses shorter retention_stream periods


@dataclass(frozen=True)
class RetentionRule:
    """A `retention_stream` rule: streams its selector matches keep `period_ns`."""

    matchers: tuple[Matcher, ...]
    period_ns: int
    priority: int = 0


@dataclass(frozen=True)
class Retention:
    """A tenant's retention (Loki's `retention_period` and `retention_stream`); 0: forever."""

    period_ns: int = 0
    rules: tuple[RetentionRule, ...] = ()

    def period_for(self, labels: Labels) -> int:
        """The rule of the highest priority matching the stream (of equal ones, the shortest
        period), else `period_ns`, as Loki decides."""
        best: RetentionRule | None = None
        for rule in self.rules:
            if all(m.matches_labels(labels) for m in rule.matchers) and (
                    best is None or rule.priority > best.priority
                    or (rule.priority == best.priority and rule.period_ns <= best.period_ns)):
                best = rule
        return best.period_ns if best is not None else self.period_ns

    def expired(self, rows: pa.Table, labels_of: dict[int, Labels], now_ns: int) -> pa.Array:
        """Per index row: is all of it older than its stream's retention?"""
        if not self.period_ns and not self.rules:
            return pa.array([False] * rows.num_rows, pa.bool_())
        periods = {sid: self.period_for(labels_of[sid]) for sid in set(rows.column("stream_id").to_pylist())}
        return pa.array([p > 0 and hi < now_ns - p for sid, hi in zip(
            rows.column("stream_id").to_pylist(), rows.column("max_ts").to_pylist(), strict=True)
            for p in (periods[sid],)], pa.bool_())


KEEP_FOREVER = Retention()


def retention_of(limits: Limits) -> Retention:
    """A tenant's Retention from its limits; BadRequest names a rule Loki would refuse."""
    rules = []
    for i, rule in enumerate(limits.retention_stream):
        where = f"retention_stream[{i}]"
        if not isinstance(rule, dict) or "selector" not in rule or "period" not in rule:
            raise BadRequest(f"invalid {where}: a rule needs a selector and a period")
        try:
            matchers = parse_matchers(str(rule["selector"]))
            period = parse_duration_ns(str(rule["period"]))
        except (LokiError, ValueError) as exc:
            raise BadRequest(f"invalid {where}: {exc}") from None
        if period < MIN_STREAM_PERIOD_NS:
            raise BadRequest(f"invalid {where}: retention period must be >= 24h, was {rule['period']}")
        rules.append(RetentionRule(matchers, period, int(rule.get("priority", 0))))
    return Retention(limits.retention_period, tuple(rules))
