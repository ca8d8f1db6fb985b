"""Line filters compiled to a DuckDB predicate with bound parameters, or to an Arrow mask.

Every value from the query reaches DuckDB as a `?` parameter, never as SQL text. DuckDB's
`regexp_matches` is RE2 with unanchored search, which is Loki's line-filter regex semantics.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.errors import Unsupported
from lokiarrow.logql.ast import LineFilter

Predicate = tuple[str, list[object]]

_POSITIVE = {"|=": "contains", "|~": "regex", "!=": "contains", "!~": "regex"}


def _alternative(kind: str, value: str) -> Predicate:
    if kind == "contains":
        return ("contains(line, ?)", [value]) if value else ("TRUE", [])
    return "regexp_matches(line, ?)", [value]


def line_filter_sql(f: LineFilter) -> Predicate:
    """One line filter (with its `or` alternatives) as a SQL boolean expression over `line`."""
    if f.ip:
        raise Unsupported("ip() line filters")
    kind = _POSITIVE.get(f.op)
    if kind is None:
        raise Unsupported(f"{f.op} pattern line filters")
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
        if f.ip or f.op not in _POSITIVE:
            raise Unsupported(f"{f.op} {'ip() ' if f.ip else 'pattern '}line filters")
        hits = None
        for value in f.values:
            if _POSITIVE[f.op] == "contains":
                if not value:
                    hit = pc.is_valid(lines)
                else:
                    hit = pc.match_substring(lines, value)
            else:
                hit = pc.match_substring_regex(lines, value)
            hits = hit if hits is None else pc.or_(hits, hit)
        assert hits is not None
        if f.op.startswith("!"):
            hits = pc.invert(hits)
        mask = hits if mask is None else pc.and_(mask, hits)
    return mask
