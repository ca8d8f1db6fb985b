"""The checks Loki makes on a parsed query, with its texts: aggregation parameters, grouping and
unwrap rules, operand types of binary operations, regexes, and selectors that match everything.

The parser records most of these errors per node instead of raising them, because Loki reports
them only once the whole query parsed; `validate_tree` then raises the first, walking the tree
in the order Loki's validation does (outer before inner, left before right).
"""

from __future__ import annotations

import re2

from lokiarrow.errors import ParseError
from lokiarrow.logql import ast
from lokiarrow.logql.quoting import to_utf8
from lokiarrow.model import QUIET_RE2, Matcher, go_quote, go_regex_error

EMPTY_COMPATIBLE = ("queries require at least one regexp or equality matcher that does not have an "
                    "empty-compatible value. For instance, app=~\".*\" does not meet this requirement, "
                    "but app=~\".+\" will")
GROUPING_OK = frozenset({"avg_over_time", "stddev_over_time", "stdvar_over_time", "quantile_over_time",
                         "max_over_time", "min_over_time", "first_over_time", "last_over_time"})
UNWRAP_OK = GROUPING_OK | {"sum_over_time", "rate", "rate_counter", "absent_over_time"}
NO_UNWRAP_OK = frozenset({"bytes_over_time", "bytes_rate", "count_over_time", "rate", "absent_over_time"})
K_PARAM_OPS = frozenset({"topk", "bottomk", "approx_topk"})


def validate_tree(expr: ast.Expr, deferred: dict[int, ParseError]) -> None:
    """Raise the first deferred error (keyed by id(node)), or the selector check, in Loki's order."""
    if isinstance(expr, ast.LogExpr):
        validate_matchers(expr.matchers)
        return
    if error := deferred.get(id(expr)):
        raise error
    if isinstance(expr, ast.BinaryOp):
        validate_tree(expr.left, deferred)
        validate_tree(expr.right, deferred)
    elif isinstance(expr, (ast.VectorAggregation, ast.LabelReplace)):
        validate_tree(expr.expr, deferred)
    elif isinstance(expr, ast.RangeAggregation):
        validate_matchers(expr.range.selector.matchers)


def validate_matchers(matchers: tuple[Matcher, ...]) -> None:
    """Refuse a selector whose every matcher also matches the empty string (it selects all streams)."""
    if all(m.matches_empty() for m in matchers):
        raise ParseError(EMPTY_COMPATIBLE)


def utf8_error(pattern: str) -> str | None:
    """Go's regexp refuses a pattern that is not UTF-8 (a string with a `\\x99` escape unquotes to
    such bytes, kept here as surrogate escapes, which RE2 cannot take): its error, else None."""
    try:
        pattern.encode()
    except UnicodeEncodeError:
        return f"invalid UTF-8: `{to_utf8(pattern)}`"
    return None


def check_regex_utf8(pattern: str, prefix: str = "") -> None:
    """Raise Go's parse error for a regex that is not UTF-8 (see `utf8_error`)."""
    error = utf8_error(pattern)
    if error is not None:
        raise ParseError(f"{prefix}error parsing regexp: {error}")


def check_line_regex(pattern: str) -> None:
    """Line-filter regexes are unanchored RE2; a bad one fails as a bad matcher regex does."""
    check_regex_utf8(pattern)
    try:
        re2.compile(pattern, QUIET_RE2)
    except re2.error as exc:
        raise ParseError(f"error parsing regexp: {go_regex_error(str(exc), pattern)}") from None


def range_aggregation_error(op: str, param: str | None, float_error: str, grouping: ast.Grouping | None,
                             log_range: ast.LogRange) -> str:
    """The error Loki's newRangeAggregationExpr records for this combination, or ""."""
    if param is not None:
        if op != "quantile_over_time":
            return f"parameter {param} not supported for operation {op}"
        if float_error:
            return f"invalid parameter for operation {op}: {float_error}"
    elif op == "quantile_over_time":
        return f"parameter required for operation {op}"
    if grouping is not None and op not in GROUPING_OK:
        return f"grouping not allowed for {op} aggregation"
    if log_range.unwrap is not None:
        return "" if op in UNWRAP_OK else f"invalid aggregation {op} with unwrap"
    return "" if op in NO_UNWRAP_OK else f"invalid aggregation {op} without unwrap"


def vector_aggregation_error(op: str, param: str | None, k: int | None, grouping: ast.Grouping | None) -> str:
    """The error Loki's mustNewVectorAggregationExpr records for this combination, or ""."""
    if op not in K_PARAM_OPS:
        return f"unsupported parameter for operation {op}({param}," if param is not None else ""
    if param is None:
        return f"parameter required for operation {op}"
    if k is None:
        return f"invalid parameter {op}({param},"
    if k <= 0:
        return f"invalid parameter (must be greater than 0) {op}({param}"
    if op == "approx_topk" and grouping is not None:
        return f"grouping not allowed for {op} aggregation"
    return ""


def go_parse_float(text: str) -> tuple[float, str]:
    """Go's strconv.ParseFloat: (value, "") or (0.0, its error text)."""
    lower = text.lower()
    try:
        if lower.startswith(("0x", "+0x", "-0x")):
            if "p" not in lower:
                raise ValueError
            return float.fromhex(text.replace("_", "")), ""
        if "_" in text or lower.startswith(("0b", "0o")):
            raise ValueError
        return float(text), ""
    except (ValueError, OverflowError):
        return 0.0, f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax"
