"""How a `query_range` request is cut into parts of at most one interval each, as Loki's query
frontend splits by `split_queries_by_interval`.

1. No split when the interval is 0 or the request fits in one interval (instant queries, on
   `/query`, are never split).
2. Log queries read [start, end): the range is cut at every multiple of the interval, counted from
   the Unix epoch (24h cuts at UTC midnights), giving [start, b1), [b1, b2), ..., [bn, end). Every
   entry falls in exactly one part.
3. Metric queries are evaluated at start + k*step (k = 0, 1, ... while <= end). Each step goes to
   the interval it falls in; a part runs from the first to the last of its steps, so it is
   evaluated at exactly those steps and the parts' matrices together are the unsplit one. An
   interval without a step gives no part. As in Loki, the interval widens to the longest range
   of the query (`rate(...[2h])` split by 1h runs in 2h parts). Unlike Loki, start is not moved
   onto an epoch-aligned step grid: that would change the answer.
4. A part lies within one interval, so splitting it again gives itself back: a part sent to a
   frontend that splits by the same interval is answered in one piece.
"""

from __future__ import annotations

from dataclasses import dataclass

from lokiarrow.exec.engine import RangeRequest
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr


@dataclass(frozen=True)
class Part:
    """One part of a split request: [start, end) for a log query, steps start..end (both
    included) for a metric query; ns."""

    start: int
    end: int


@dataclass(frozen=True)
class Split:
    logs: bool                  # a log query (else a metric one)
    parts: tuple[Part, ...]     # in time order; one part: not split


def split_request(req: RangeRequest, interval_ns: int) -> Split:
    """The parts of `req`. The query is parsed first, so an invalid one raises the parser's error
    (400) before anything runs."""
    expr = parse_expr(req.query)
    if isinstance(expr, ast.LogExpr):
        return Split(True, tuple(split_logs(req.start, req.end, interval_ns)))
    return Split(False, tuple(split_metric(req.start, req.end, req.step_ns, max(interval_ns, longest_range(expr)))))


def split_logs(start: int, end: int, interval_ns: int) -> list[Part]:
    """[start, end) cut at the multiples of `interval_ns` (step 2)."""
    if interval_ns <= 0 or end <= start:
        return [Part(start, end)]
    parts = []
    lo = start
    while lo < end:
        hi = min((lo // interval_ns + 1) * interval_ns, end)
        parts.append(Part(lo, hi))
        lo = hi
    return parts


def split_metric(start: int, end: int, step_ns: int, interval_ns: int) -> list[Part]:
    """The steps start, start + step, ... <= end, grouped by the interval they fall in (step 3)."""
    if interval_ns <= 0 or step_ns <= 0 or end <= start:
        return [Part(start, end)]
    last_step = start + (end - start) // step_ns * step_ns
    parts = []
    first = start
    while first <= last_step:
        bound = min((first // interval_ns + 1) * interval_ns - 1, last_step)
        last = first + (bound - first) // step_ns * step_ns
        parts.append(Part(first, last))
        first = last + step_ns
    if len(parts) == 1:
        return [Part(start, end)]
    return parts


def longest_range(node: object) -> int:
    """The longest `[range]` in a metric query (0 for none)."""
    return max((r.range_ns for r in ast.log_ranges(node)), default=0)
