"""Line filters compiled to a DuckDB predicate with bound parameters, or to an Arrow mask.

Every value from the query reaches DuckDB as a `?` parameter, never as SQL text. DuckDB's
`regexp_matches` is RE2 with unanchored search, which is Loki's line-filter regex semantics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.errors import Unsupported
from lokiarrow.logql.ast import LineFilter
from lokiarrow.logql.ip import ip_matcher

Predicate = tuple[str, list[object]]

_POSITIVE = {"|=": "contains", "|~": "regex", "!=": "contains", "!~": "regex", "|>": "pattern", "!>": "pattern"}
_PATTERN_PART = re.compile(r"<(_|[a-zA-Z_][a-zA-Z0-9_]*)>")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])")


def pattern_regex(pattern: str) -> str:
    """A pattern filter (`<_> "GET <path>`) as an RE2 regex: literals in order, captures match
    anything (as little as possible), anchored at the start of the line as Loki's matcher is."""
    out = ["(?s)^"]
    pos = 0
    for m in _PATTERN_PART.finditer(pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        out.append(".*?" if m.end() < len(pattern) else ".*")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return "".join(out)


def sql_expressible(f: LineFilter) -> bool:
    """Whether the scan can apply this filter (ip() filters run in the pipeline instead)."""
    return not f.ip


def _alternative(kind: str, value: str) -> Predicate:
    if kind == "contains":
        return ("contains(line, ?)", [value]) if value else ("TRUE", [])
    if kind == "pattern":
        return "regexp_matches(line, ?)", [pattern_regex(value)]
    return "regexp_matches(line, ?)", [value]


def line_filter_sql(f: LineFilter) -> Predicate:
    """One line filter (with its `or` alternatives) as a SQL boolean expression over `line`."""
    if f.ip:
        raise Unsupported("ip() line filters in a scan")
    kind = _POSITIVE[f.op]
    parts = [_alternative(kind, v) for v in f.values]
    sql = " OR ".join(p[0] for p in parts)
    params = [x for p in parts for x in p[1]]
    if len(parts) > 1:
        sql = f"({sql})"
    if f.op.startswith("!"):
        sql = f"NOT {sql}" if len(parts) > 1 else f"NOT ({sql})"
    return sql, params


def line_filters_sql(filters: Sequence[LineFilter]) -> Predicate:
    """All line filters of a pipeline, ANDed; `TRUE` when there are none."""
    parts = [line_filter_sql(f) for f in filters]
    if not parts:
        return "TRUE", []
    return " AND ".join(p[0] for p in parts), [x for p in parts for x in p[1]]


def line_filters_mask(lines: pa.Array | pa.ChunkedArray, filters: Sequence[LineFilter]) -> pa.Array | None:
    """The same filters evaluated with Arrow compute (RE2 too): a boolean mask, None for "all".

    For small inputs, where a DuckDB query's fixed cost would dominate.
    """
    mask = None
    for f in filters:
        hits = None
        for value in f.values:
            kind = _POSITIVE[f.op]
            if f.ip:
                hit = _ip_mask(lines, value)
            elif kind == "contains":
                hit = pc.is_valid(lines) if not value else pc.match_substring(lines, value)
            elif kind == "pattern":
                hit = pc.match_substring_regex(lines, pattern_regex(value))
            else:
                hit = pc.match_substring_regex(lines, value)
            hits = hit if hits is None else pc.or_(hits, hit)
        assert hits is not None
        if f.op.startswith("!"):
            hits = pc.invert(hits)
        mask = hits if mask is None else pc.and_(mask, hits)
    return mask


def _ip_mask(lines: pa.Array | pa.ChunkedArray, pattern: str) -> pa.Array:
    """`|= ip("…")`: lines holding an IPv4 or IPv6 address inside the pattern's range."""
    inside = ip_matcher(pattern)
    return pa.array([line is not None and any(inside(a) for a in _IPV4.findall(line) + _IPV6.findall(line))
                     for line in lines.to_pylist()], pa.bool_())
