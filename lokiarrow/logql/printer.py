"""Syntax tree → canonical LogQL, written as Loki's `String()` methods write it (`format_query`).

The contract is `parse_expr(format_expr(e)) == e` for every tree the parser builds. Where Loki's
text would lose information this printer keeps it instead: a byte size that `humanize` would
round prints in plain bytes, and `ignoring () group_left` keeps its modifiers. Binary operations
print in parentheses, as Loki prints them, so precedence needs no care here.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from lokiarrow.logql import ast
from lokiarrow.model import Matcher, go_quote
from lokiarrow.units import format_duration, parse_bytes

_BYTE_SUFFIXES = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def format_expr(node: ast.Node) -> str:
    """Canonical LogQL for any node: a query, a stage or a label filter."""
    printer = _PRINTERS.get(type(node))
    if printer is None:
        raise TypeError(f"cannot print {type(node).__name__}: no printer for this node")
    return printer(node)


# --- numbers and durations, as Go formats them ---------------------------------------------------

def _digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of a finite float and its decimal exponent (value = 0.d × 10^e)."""
    sign, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    return text, len(digits) + exponent if text != "0" else 1


def go_float_v(value: float) -> str:
    """`fmt.Sprint(float64)`: shortest digits, exponent form below 1e-4 and from 1e6."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if value < 0 or (value == 0 and str(value).startswith("-")) else ""
    digits, point = _digits(value)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + _fixed(digits, point)


def go_float_f(value: float) -> str:
    """`strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, never an exponent."""
    sign = "-" if value < 0 else ""
    digits, point = _digits(value)
    return sign + _fixed(digits, point)


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def go_duration(ns: int) -> str:
    """Go's `time.Duration.String()`: `1h0m0s`, `5m0s`, `1.5s`, `250ms`, `0s`."""
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fraction(ns, 6)}ms"
    seconds = _fraction(ns % 60_000_000_000, 9) + "s"
    minutes, hours = ns // 60_000_000_000 % 60, ns // 3_600_000_000_000
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, places: int) -> str:
    whole, frac = divmod(value, 10**places)
    text = f"{frac:0{places}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def _bytes(value: int) -> str:
    """humanize.Bytes without its space (`1.5kB`), or `1234B` when that would round the value."""
    if value < 10:
        return f"{value}B"
    exponent = 0
    while exponent + 1 < len(_BYTE_SUFFIXES) and value >= 1000 ** (exponent + 1):
        exponent += 1
    scaled = int(value / 1000**exponent * 10 + 0.5) / 10
    text = f"{scaled:.1f}{_BYTE_SUFFIXES[exponent]}" if scaled < 10 else f"{scaled:.0f}{_BYTE_SUFFIXES[exponent]}"
    return text if parse_bytes(text) == value else f"{value}B"


# --- log queries ---------------------------------------------------------------------------------

def _log_expr(e: ast.LogExpr) -> str:
    selector = "{" + ", ".join(str(m) for m in e.matchers) + "}"
    return " ".join([selector, *(format_expr(stage) for stage in e.stages)])


def _line_filter(e: ast.LineFilter) -> str:
    values = (f"ip({go_quote(v)})" if e.ip else go_quote(v) for v in e.values)
    return f"{e.op} " + " or ".join(values)


def _extractions(extractions: tuple[ast.LabelExtraction, ...]) -> str:
    return ",".join(f"{x.name}={go_quote(x.expression)}" for x in extractions)


def _json(e: ast.JsonParser) -> str:
    return f"| json {_extractions(e.extractions)}" if e.extractions else "| json"


def _logfmt(e: ast.LogfmtParser) -> str:
    flags = [flag for flag, on in (("--strict", e.strict), ("--keep-empty", e.keep_empty)) if on]
    if not e.extractions:
        return " ".join(["| logfmt", *flags])
    return "| logfmt " + "".join(f"{flag} " for flag in flags) + _extractions(e.extractions)


def _named(items: tuple[str | Matcher, ...]) -> str:
    return ",".join(str(item) for item in items)


def _label_format(e: ast.LabelFormat) -> str:
    return "| label_format " + ",".join(
        f"{f.name}={f.value if f.rename else go_quote(f.value)}" for f in e.formats)


# --- label filters -------------------------------------------------------------------------------

def _ip_filter(e: ast.IpFilter) -> str:
    return f"{e.name}{e.op}ip({go_quote(e.pattern)})"


def _and(e: ast.AndFilter) -> str:
    return f"( {format_expr(e.left)} , {format_expr(e.right)} )"


def _or(e: ast.OrFilter) -> str:
    return f"( {format_expr(e.left)} or {format_expr(e.right)} )"


# --- metric queries ------------------------------------------------------------------------------

def _unwrap(e: ast.Unwrap) -> str:
    label = f"{e.conversion}({e.label})" if e.conversion else e.label
    return f" | unwrap {label}" + "".join(f" | {format_expr(f)}" for f in e.post_filters)


def _log_range(e: ast.LogRange) -> str:
    text = format_expr(e.selector) + (_unwrap(e.unwrap) if e.unwrap else "") + f"[{format_duration(e.range_ns)}]"
    return text + (f" offset {go_duration(e.offset_ns)}" if e.offset_ns else "")


def _grouping(g: ast.Grouping) -> str:
    return f" {'without' if g.without else 'by'} ({','.join(g.labels)})"


def _range_aggregation(e: ast.RangeAggregation) -> str:
    param = f"{go_float_f(e.param)}," if e.param is not None else ""
    return f"{e.op}({param}{format_expr(e.range)})" + (_grouping(e.grouping) if e.grouping else "")


def _vector_aggregation(e: ast.VectorAggregation) -> str:
    param = f"{e.param}," if e.param is not None else ""
    grouping = _grouping(e.grouping) if e.grouping and (e.grouping.labels or e.grouping.without) else ""
    return f"{e.op}{grouping}({param}{format_expr(e.expr)})"


def _binary_op(e: ast.BinaryOp) -> str:
    op = e.op + (" bool" if e.return_bool else "")
    m = e.matching
    if m is not None:
        group = {"many-to-one": "group_left", "one-to-many": "group_right"}.get(m.card, "")
        if m.include:
            group = f"{group} ({','.join(m.include)})"
        op = f"{op} {'on' if m.on else 'ignoring'} ({','.join(m.labels)}) {group}"
    return f"({format_expr(e.left)} {op} {format_expr(e.right)})"


def _label_replace(e: ast.LabelReplace) -> str:
    args = ",".join(go_quote(a) for a in (e.dst, e.replacement, e.src, e.regex))
    return f"label_replace({format_expr(e.expr)},{args})"


_PRINTERS: dict[type, Callable[[Any], str]] = {
    ast.LogExpr: _log_expr,
    ast.LineFilter: _line_filter,
    ast.JsonParser: _json,
    ast.LogfmtParser: _logfmt,
    ast.RegexpParser: lambda e: f"| regexp {go_quote(e.pattern)}",
    ast.PatternParser: lambda e: f"| pattern {go_quote(e.pattern)}",
    ast.UnpackParser: lambda e: "| unpack",
    ast.LabelFilterStage: lambda e: f"| {format_expr(e.filter)}",
    ast.LineFormat: lambda e: f"| line_format {go_quote(e.template)}",
    ast.LabelFormat: _label_format,
    ast.Decolorize: lambda e: "| decolorize",
    ast.DropLabels: lambda e: f"| drop {_named(e.labels)}",
    ast.KeepLabels: lambda e: f"| keep {_named(e.labels)}",
    ast.LabelMatch: lambda e: str(e.matcher),
    ast.NumberFilter: lambda e: f"{e.name}{e.op}{go_float_f(e.value)}",
    ast.DurationFilter: lambda e: f"{e.name}{e.op}{go_duration(e.value_ns)}",
    ast.BytesFilter: lambda e: f"{e.name}{e.op}{_bytes(e.value)}",
    ast.IpFilter: _ip_filter,
    ast.AndFilter: _and,
    ast.OrFilter: _or,
    ast.Unwrap: _unwrap,
    ast.LogRange: _log_range,
    ast.RangeAggregation: _range_aggregation,
    ast.VectorAggregation: _vector_aggregation,
    ast.BinaryOp: _binary_op,
    ast.Literal: lambda e: go_float_v(e.value),
    ast.Vector: lambda e: f"vector({e.value:f})",
    ast.LabelReplace: _label_replace,
}
