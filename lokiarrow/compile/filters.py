"""Line filters compiled to a DuckDB predicate with bound parameters.

Every value from the query reaches DuckDB as a `?` parameter, never as SQL text. DuckDB's
`regexp_matches` is RE2 with unanchored search, which is Loki's line-filter regex semantics.
"""

from __future__ import annotations

from collections.abc import Sequence

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
