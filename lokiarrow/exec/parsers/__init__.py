"""LogQL's parser stages over a batch of lines: `json`, `logfmt`, `regexp`, `pattern`, `unpack`, `decolorize`.

Every parser has the same contract:

    parse_<kind>(lines: pa.StringArray, node, existing: set[str]) -> Parsed

- `lines` is one batch; a null line yields no labels and no error.
- `existing` holds the label names already on the lines (stream labels and structured metadata).
  A parsed name found there gets `_extracted` appended, as Loki does; the parsers never drop or
  overwrite those labels, the engine attaches the columns next to them.
- `Parsed.columns` has one column per extracted name, in order of first appearance, each as long
  as `lines`, null where a line did not produce that name. An empty string is a value (Loki's
  `| json a="missing"` gives `a=""`), never the same as null.
- `Parsed.error` / `Parsed.error_details` are the `__error__` / `__error_details__` values per line
  (null when the line parsed). Labels extracted before a line's error stay in `columns`, as in Loki.
- `Parsed.line` is the rewritten line column for the stages that replace the line (`unpack`,
  `decolorize`), else None.

What the engine must do itself: within one pipeline Loki never overwrites a label a previous
parser stage already extracted for the same line (its "already extracted" hint), so when two
parser stages produce the same name, the earlier stage's non-null value wins (`coalesce(old, new)`).
The stages with parameters (`| json a="b"`, `| logfmt a`) are the exception: they always set
their labels (`coalesce(new, old)`, see `overrides`), and `| json a="b"` gives "" for a path it
did not find only when the line has no label `a` yet (`present`: the names earlier parser stages
set on the lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from lokiarrow.logql import ast

Row = dict[str, str]


@dataclass(frozen=True)
class Parsed:
    """The labels (and errors, and possibly new lines) one parser stage produced for a batch."""

    columns: dict[str, pa.StringArray]
    error: pa.StringArray
    error_details: pa.StringArray
    line: pa.StringArray | None = field(default=None)


def build(rows: Sequence[Row | None], errors: Sequence[str | None] | None = None,
          details: Sequence[str | None] | None = None, line: Iterable[str | None] | None = None) -> Parsed:
    """Turn per-line label dicts (None for a line without labels) into a `Parsed` of columns."""
    n = len(rows)
    names: dict[str, None] = {}
    for row in rows:
        if row:
            for name in row:
                if name not in names:
                    names[name] = None
    columns: dict[str, pa.StringArray] = {}
    for name in names:
        columns[name] = pa.array([row.get(name) if row else None for row in rows], pa.string())
    return Parsed(
        columns=columns,
        error=_strings(errors, n),
        error_details=_strings(details, n),
        line=None if line is None else pa.array(list(line), pa.string()),
    )


def from_columns(columns: dict[str, list[str | None]], n: int, errors: Sequence[str | None] | None = None,
                 details: Sequence[str | None] | None = None,
                 line: Iterable[str | None] | None = None) -> Parsed:
    """A `Parsed` from value lists already laid out per name (each `n` long)."""
    return Parsed(
        columns={name: pa.array(values, pa.string()) for name, values in columns.items()},
        error=_strings(errors, n),
        error_details=_strings(details, n),
        line=None if line is None else pa.array(list(line), pa.string()),
    )


def string_array(lines: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """`lines` as one StringArray (chunked and large_string input accepted)."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if lines.type != pa.string():
        lines = lines.cast(pa.string())
    return lines


def _strings(values: Sequence[str | None] | None, n: int) -> pa.StringArray:
    if values is None or not any(v is not None for v in values):
        return pa.nulls(n, pa.string())
    return pa.array(values, pa.string())


def overrides(node: ast.Stage) -> bool:
    """Whether the stage's labels replace those earlier parser stages set (stages with parameters)."""
    return isinstance(node, (ast.JsonParser, ast.LogfmtParser)) and bool(node.extractions)


def parse(lines: pa.StringArray, node: ast.Stage, existing: set[str], present: frozenset[str] = frozenset()
          ) -> Parsed:
    """Run the parser stage `node` over `lines` (dispatch by node type)."""
    from lokiarrow.exec.parsers import decolorize, json, logfmt, pattern, regexp, unpack

    if isinstance(node, ast.JsonParser):
        return json.parse_json(lines, node, existing, present)
    if isinstance(node, ast.LogfmtParser):
        return logfmt.parse_logfmt(lines, node, existing)
    if isinstance(node, ast.RegexpParser):
        return regexp.parse_regexp(lines, node, existing)
    if isinstance(node, ast.PatternParser):
        return pattern.parse_pattern(lines, node, existing)
    if isinstance(node, ast.UnpackParser):
        return unpack.parse_unpack(lines, node, existing)
    if isinstance(node, ast.Decolorize):
        return decolorize.parse_decolorize(lines, node, existing)
    raise TypeError(f"not a parser stage: {type(node).__name__}")


__all__ = ["Parsed", "Row", "build", "from_columns", "overrides", "parse", "string_array"]
