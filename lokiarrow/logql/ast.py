"""The LogQL syntax tree: frozen dataclasses, one per construct, each with its source offset.

`pos` (the character offset where the construct starts) is left out of equality, so a query and
its printed form parse to equal trees. Nodes hold values already decoded (unquoted strings,
nanoseconds, bytes, floats); `printer.format_expr` turns any node back into canonical LogQL.

Two families: log queries (`LogExpr`: a selector and its pipeline `Stage`s) and metric queries
(`RangeAggregation` over a `LogRange`, `VectorAggregation`, `BinaryOp`, `Literal`, `Vector`,
`LabelReplace`). Label filters form their own small tree (`LabelFilter`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Literal as TypingLiteral

from lokiarrow.model import Matcher

LineFilterOp = TypingLiteral["|=", "!=", "|~", "!~", "|>", "!>"]
CompareOp = TypingLiteral["==", "!=", ">", ">=", "<", "<="]
Cardinality = TypingLiteral["one-to-one", "many-to-one", "one-to-many"]
Conversion = TypingLiteral["", "bytes", "duration", "duration_seconds"]


def _pos() -> int:
    return field(default=0, compare=False)


class Node:
    """Any syntax node."""

    pos: int


class Expr(Node):
    """A whole query, or an operand of one."""


class Stage(Node):
    """One step of a log pipeline (`|= "x"`, `| json`, `| level="error"`…)."""


class LabelFilter(Node):
    """A predicate on extracted labels, as written after `|` or after `| unwrap x |`."""


# --- log queries -----------------------------------------------------------------------------

@dataclass(frozen=True)
class LogExpr(Expr):
    """`{matchers} stages…`: a stream selector and its (possibly empty) pipeline."""

    matchers: tuple[Matcher, ...]
    stages: tuple[Stage, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class LineFilter(Stage):
    """`|= "a" or "b"`: keep lines matching any value (`|=`, `|~`, `|>`) or none (`!=`, `!~`, `!>`).

    Negated filters always hold one value: the parser splits `!= "a" or "b"` into `!= "a" != "b"`,
    as Loki does. `ip` marks `|= ip("…")`. Regexes are unanchored RE2.
    """

    op: LineFilterOp
    values: tuple[str, ...]
    ip: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class LabelExtraction:
    """`name="expression"` of `| json …` / `| logfmt …` (a bare `name` extracts the same name)."""

    name: str
    expression: str
    pos: int = _pos()


@dataclass(frozen=True)
class JsonParser(Stage):
    """`| json` (all fields), or `| json a="x.y", b` (only these)."""

    extractions: tuple[LabelExtraction, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class LogfmtParser(Stage):
    """`| logfmt [--strict] [--keep-empty] [a="x", b]`."""

    strict: bool = False
    keep_empty: bool = False
    extractions: tuple[LabelExtraction, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class RegexpParser(Stage):
    """`| regexp "(?P<name>…)"`: named groups become labels."""

    pattern: str
    pos: int = _pos()


@dataclass(frozen=True)
class PatternParser(Stage):
    """`| pattern "<ip> - <_>"`."""

    pattern: str
    pos: int = _pos()


@dataclass(frozen=True)
class UnpackParser(Stage):
    """`| unpack`: Promtail's packed JSON lines."""

    pos: int = _pos()


@dataclass(frozen=True)
class LabelFilterStage(Stage):
    """`| <label filter>`."""

    filter: LabelFilter
    pos: int = _pos()


@dataclass(frozen=True)
class LineFormat(Stage):
    """`| line_format "{{.msg}}"`."""

    template: str
    pos: int = _pos()


@dataclass(frozen=True)
class LabelFmt:
    """One `name=other` (rename) or `name="{{template}}"` of `| label_format`."""

    name: str
    value: str
    rename: bool
    pos: int = _pos()


@dataclass(frozen=True)
class LabelFormat(Stage):
    """`| label_format a=b, c="{{.d}}"`."""

    formats: tuple[LabelFmt, ...]
    pos: int = _pos()


@dataclass(frozen=True)
class Decolorize(Stage):
    """`| decolorize`: strip ANSI colour codes."""

    pos: int = _pos()


@dataclass(frozen=True)
class DropLabels(Stage):
    """`| drop a, b="x"`: a name drops the label, a matcher drops it when it matches."""

    labels: tuple[str | Matcher, ...]
    pos: int = _pos()


@dataclass(frozen=True)
class KeepLabels(Stage):
    """`| keep a, b="x"`."""

    labels: tuple[str | Matcher, ...]
    pos: int = _pos()


# --- label filters ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelMatch(LabelFilter):
    """`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`: a string comparison."""

    matcher: Matcher
    pos: int = _pos()


@dataclass(frozen=True)
class NumberFilter(LabelFilter):
    """`name > 5`: the label parsed as a float."""

    name: str
    op: CompareOp
    value: float
    pos: int = _pos()


@dataclass(frozen=True)
class DurationFilter(LabelFilter):
    """`name > 5s`: the label parsed as a Go duration."""

    name: str
    op: CompareOp
    value_ns: int
    pos: int = _pos()


@dataclass(frozen=True)
class BytesFilter(LabelFilter):
    """`name > 20MB`: the label parsed as a byte size."""

    name: str
    op: CompareOp
    value: int
    pos: int = _pos()


@dataclass(frozen=True)
class IpFilter(LabelFilter):
    """`name = ip("10.0.0.0/8")`, `name != ip("…")`."""

    name: str
    op: TypingLiteral["=", "!="]
    pattern: str
    pos: int = _pos()


@dataclass(frozen=True)
class AndFilter(LabelFilter):
    """`a and b`, `a, b` or `a b`."""

    left: LabelFilter
    right: LabelFilter
    pos: int = _pos()


@dataclass(frozen=True)
class OrFilter(LabelFilter):
    """`a or b`."""

    left: LabelFilter
    right: LabelFilter
    pos: int = _pos()


# --- metric queries --------------------------------------------------------------------------

@dataclass(frozen=True)
class Unwrap(Node):
    """`| unwrap [conversion(]label[)] | post filters…`: the sample value of each line."""

    label: str
    conversion: Conversion = ""
    post_filters: tuple[LabelFilter, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class LogRange(Node):
    """`{…} | …[5m] offset 1h`: a log query over a sliding window."""

    selector: LogExpr
    range_ns: int
    offset_ns: int = 0
    unwrap: Unwrap | None = None
    pos: int = _pos()


@dataclass(frozen=True)
class Grouping:
    """`by (a, b)` or `without (a)`."""

    labels: tuple[str, ...]
    without: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class RangeAggregation(Expr):
    """`rate({…}[5m])`, `quantile_over_time(0.99, {…} | unwrap x [5m]) by (a)`."""

    op: str
    range: LogRange
    param: float | None = None
    grouping: Grouping | None = None
    pos: int = _pos()


@dataclass(frozen=True)
class VectorAggregation(Expr):
    """`sum by (a) (expr)`, `topk(5, expr)`."""

    op: str
    expr: Expr
    param: int | None = None
    grouping: Grouping | None = None
    pos: int = _pos()


@dataclass(frozen=True)
class VectorMatching:
    """`on (a)` / `ignoring (a)` with `group_left (b)` / `group_right (b)`."""

    on: bool
    labels: tuple[str, ...]
    card: Cardinality = "one-to-one"
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class BinaryOp(Expr):
    """`left op [bool] [on/ignoring …] right`."""

    op: str
    left: Expr
    right: Expr
    return_bool: bool = False
    matching: VectorMatching | None = None
    pos: int = _pos()


@dataclass(frozen=True)
class Literal(Expr):
    """A number: `5`, `-1.5`, `0x10`."""

    value: float
    pos: int = _pos()


@dataclass(frozen=True)
class Vector(Expr):
    """`vector(1)`: a constant sample with no labels."""

    value: float
    pos: int = _pos()


@dataclass(frozen=True)
class LabelReplace(Expr):
    """`label_replace(expr, "dst", "replacement", "src", "regex")`."""

    expr: Expr
    dst: str
    replacement: str
    src: str
    regex: str
    pos: int = _pos()


def log_ranges(node: object) -> list[LogRange]:
    """Every `{…}[range]` of an expression, in order."""
    if isinstance(node, LogRange):
        return [node]
    if isinstance(node, tuple):
        return [r for child in node for r in log_ranges(child)]
    if not is_dataclass(node):
        return []
    return [r for f in fields(node) for r in log_ranges(getattr(node, f.name))]
