"""Run one parser over lines and read the answer back as plain dicts per line."""

from __future__ import annotations

import pyarrow as pa

from lokiarrow.exec.parsers import Parsed, parse
from lokiarrow.logql import ast


def labels_of(parsed: Parsed, i: int) -> dict[str, str]:
    """Line `i`'s labels, `__error__` and `__error_details__` included when set."""
    out = {name: col[i].as_py() for name, col in parsed.columns.items() if col[i].is_valid}
    if parsed.error[i].is_valid:
        out["__error__"] = parsed.error[i].as_py()
    if parsed.error_details[i].is_valid:
        out["__error_details__"] = parsed.error_details[i].as_py()
    return out


def run(node: ast.Stage, lines: list[str | None], existing: set[str] | None = None) -> list[dict[str, str]]:
    parsed = parse(pa.array(lines, pa.string()), node, existing or set())
    for col in parsed.columns.values():
        assert len(col) == len(lines)
    assert len(parsed.error) == len(parsed.error_details) == len(lines)
    return [labels_of(parsed, i) for i in range(len(lines))]


def run_one(node: ast.Stage, line: str, existing: set[str] | None = None) -> dict[str, str]:
    return run(node, [line], existing)[0]
