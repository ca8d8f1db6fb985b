"""Label filters after `| json` / `| logfmt`, tested on the parsed-field columns of chunk files.

`{…} | json | level="error"` keeps a line only if `| json` extracts `level="error"` from it. Where a
chunk file holds that field as a column (store/fields.py) and the row is marked as parsed by
that parser, the scan tests the column instead, in SQL; the other rows fall back to the line
prefilters (compile/prefilter.py). The condition keeps a superset of the rows the pipeline keeps:
the pipeline still runs on every row that passes, so the answer stays exact. It only has to
never drop a row the pipeline would keep:
- string matchers (`=`, `!=`, `=~`, `!~`) compare the value, "" when absent, exactly as Loki;
- numeric and duration filters drop absent labels and compare simple values (`304`, `1.5s`);
  anything else (`2m3s`, `1e3`, unconvertible text the pipeline keeps with `__error__`) passes;
- other filters (bytes, ip, `__error__`) and names that are not field columns pass.
Only filters right after the pipeline's first stage count, when that stage is `json` or `logfmt`
without parameters; a row whose structured metadata has a filtered name falls back (that label
then shadows the parsed one), and names that are stream labels are left out by the caller.

Values and regexes reach DuckDB only as bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lokiarrow.compile.prefilter import metadata_has_sql
from lokiarrow.logql import ast
from lokiarrow.store.fields import (
    INEXACT_COLUMN,
    PARSED_COLUMN,
    PARSED_JSON,
    PARSED_LOGFMT,
    field_column,
    is_field_name,
)

_BELOW = {">": ">", ">=": ">="}  # compared with the wanted value minus the margin
_ABOVE = {"<": "<", "<=": "<="}  # ... plus the margin
DURATION_MARGIN_NS = 1.5        # floats may round and Go truncates below 1 ns: stay on the safe side
_NUMBER = r"-?[0-9]{1,15}(\.[0-9]{1,15})?"
_DURATION = r"([-+]?(?:[0-9]{1,12}(?:\.[0-9]{0,9})?|\.[0-9]{1,9}))(ns|us|µs|μs|ms|s|m|h)"
_UNIT_NS = "CASE regexp_extract({v}, ?, 2) WHEN 'ns' THEN 1 WHEN 'ms' THEN 1e6 WHEN 's' THEN 1e9 " \
           "WHEN 'm' THEN 6e10 WHEN 'h' THEN 3.6e12 ELSE 1e3 END"


@dataclass(frozen=True)
class FieldFilter:
    """A condition on the field columns `names`, true for a superset of what the filters keep."""

    parsed: int                     # the `parsed` marker of rows whose columns hold this parser's output
    names: tuple[str, ...]          # field names the condition reads
    sql: str                        # over "f_<name>" columns, with ? placeholders
    params: tuple[object, ...] = field(default=())
    unshadowed: bool = False        # known: no row in range has structured metadata of these names

    def columns(self) -> tuple[str, ...]:
        return (PARSED_COLUMN, INEXACT_COLUMN, *(field_column(n) for n in self.names))

    def settled_sql(self) -> tuple[str, list[object]]:
        """The condition for rows known to be parsed by this parser, their values of `names`
        known exactly and not shadowed by metadata (a file's footer and the index say so)."""
        return f"({self.sql})", list(self.params)

    def row_sql(self, fallback: str, fallback_params: list[object]) -> tuple[str, list[object]]:
        """The scan's condition: the field test on rows parsed by this parser without metadata of
        a filtered name and whose value of each is known, `fallback` (the line prefilters) elsewhere."""
        unknown = f"coalesce(list_has_any({INEXACT_COLUMN}, ?), FALSE)"
        if self.unshadowed:
            return (f"(CASE WHEN {PARSED_COLUMN} = ? AND NOT {unknown} THEN {self.sql} ELSE {fallback} END)",
                    [self.parsed, list(self.names), *self.params, *fallback_params])
        shadowed, shadowed_params = metadata_has_sql(self.names)
        return (f"(CASE WHEN {PARSED_COLUMN} = ? AND NOT {shadowed} AND NOT {unknown} THEN {self.sql} "
                f"ELSE {fallback} END)", [self.parsed, *shadowed_params, list(self.names), *self.params,
                                          *fallback_params])


def field_filter(stages: tuple[ast.Stage, ...], stream_label_names: set[str]) -> FieldFilter | None:
    """The field condition the label filters right after a leading `json`/`logfmt` imply, if any."""
    if not stages:
        return None
    first = stages[0]
    if isinstance(first, ast.JsonParser) and not first.extractions:
        parsed = PARSED_JSON
    elif isinstance(first, ast.LogfmtParser) and not first.extractions:
        parsed = PARSED_LOGFMT
    else:
        return None
    parts: list[_Sql] = []
    for stage in stages[1:]:
        if not isinstance(stage, ast.LabelFilterStage):
            break
        part = _translate(stage.filter, stream_label_names)
        if part is not None:
            parts.append(part)
    if not parts:
        return None
    names = tuple(sorted({n for p in parts for n in p.names}))
    return FieldFilter(parsed, names, " AND ".join(p.sql for p in parts),
                       tuple(v for p in parts for v in p.params))


@dataclass(frozen=True)
class _Sql:
    sql: str
    params: tuple[object, ...]
    names: frozenset[str]


def _translate(f: ast.LabelFilter, stream_label_names: set[str]) -> _Sql | None:
    """SQL true wherever `f` may keep the row; None when it says nothing (always true)."""
    if isinstance(f, ast.AndFilter):
        left, right = _translate(f.left, stream_label_names), _translate(f.right, stream_label_names)
        if left is None or right is None:
            return left or right
        return _Sql(f"({left.sql} AND {right.sql})", left.params + right.params, left.names | right.names)
    if isinstance(f, ast.OrFilter):
        left, right = _translate(f.left, stream_label_names), _translate(f.right, stream_label_names)
        if left is None or right is None:
            return None
        return _Sql(f"({left.sql} OR {right.sql})", left.params + right.params, left.names | right.names)
    name = _filtered_name(f)
    if name is None or not is_field_name(name) or name in stream_label_names:
        return None
    v = f'"{field_column(name)}"'
    if isinstance(f, ast.LabelMatch):
        op, value = f.matcher.op, f.matcher.value
        if op in ("=", "!="):
            return _Sql(f"coalesce({v}, '') {'=' if op == '=' else '<>'} ?", (value,), frozenset({name}))
        test = f"regexp_full_match(coalesce({v}, ''), ?)"
        return _Sql(test if op == "=~" else f"NOT {test}", (f"(?s:{value})",), frozenset({name}))
    if isinstance(f, ast.NumberFilter):
        # a plain decimal converts to the same double as strconv.ParseFloat: no margin
        return _compared(v, name, _NUMBER, f"CAST({v} AS DOUBLE)", (), f.op, f.value, 0.0)
    if isinstance(f, ast.DurationFilter):
        amount = f"CAST(regexp_extract({v}, ?, 1) AS DOUBLE) * {_UNIT_NS.format(v=v)}"
        return _compared(v, name, _DURATION, amount, (_DURATION, _DURATION), f.op, float(f.value_ns),
                         DURATION_MARGIN_NS)
    return None


def _filtered_name(f: ast.LabelFilter) -> str | None:
    if isinstance(f, ast.LabelMatch):
        return f.matcher.name
    if isinstance(f, (ast.NumberFilter, ast.DurationFilter)):
        return f.name
    return None


def _compared(v: str, name: str, shape: str, amount: str, amount_params: tuple[object, ...],
              op: str, wanted: float, margin: float) -> _Sql:
    """Absent: dropped. A value of the simple `shape`: compared, widened by `margin` (the pipeline
    settles the rest). Anything else: kept, for the pipeline to convert or mark."""
    params: tuple[object, ...] = (*amount_params, wanted, margin)
    if op in _BELOW:
        test = f"{amount} {_BELOW[op]} ? - ?"
    elif op in _ABOVE:
        test = f"{amount} {_ABOVE[op]} ? + ?"
    elif op == "==":
        test = f"abs({amount} - ?) <= ?"
    elif margin == 0:
        test = f"{amount} <> ?"
        params = (*amount_params, wanted)
    else:  # != within the margin might still differ once converted exactly
        test, params = "TRUE", ()
    sql = f"(CASE WHEN {v} IS NULL THEN FALSE WHEN regexp_full_match({v}, ?) THEN {test} ELSE TRUE END)"
    return _Sql(sql, (shape, *params), frozenset({name}))
