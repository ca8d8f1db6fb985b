"""LogQL label filters (`| status >= 500 and level="error"`) over columns of label values.

Loki's rules, row by row, computed a column at a time:
- A string filter compares the label's value, `""` when absent; `__error__` reads the row's error.
- A numeric, duration or bytes filter drops a row whose label is absent. When the value does not
  convert, the row is kept and gets `__error__=LabelFilterErr` (unless it has an error already).
- An ip filter keeps rows that already have an error, and drops rows without the label.
- `and` evaluates its right side only where the left kept the row, `or` only where it dropped it,
  so conversion errors are set exactly where Loki would set them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.errors import Unsupported
from lokiarrow.logql import ast
from lokiarrow.logql.ip import ip_matcher
from lokiarrow.units import go_duration_ns, parse_humanized_bytes

LABEL_FILTER_ERROR = "LabelFilterErr"


@dataclass
class FilterState:
    """The label columns a filter reads, and the error columns it may write."""

    labels: dict[str, pa.Array]
    error: pa.Array
    details: pa.Array

    def value(self, name: str) -> pa.Array:
        if name == "__error__":
            return self.error
        col = self.labels.get(name)
        return col if col is not None else pa.nulls(len(self.error), pa.string())


def evaluate(f: ast.LabelFilter, state: FilterState, active: np.ndarray) -> np.ndarray:
    """Which rows `f` keeps (only `active` rows are evaluated; others come back False)."""
    if isinstance(f, ast.AndFilter):
        left = evaluate(f.left, state, active)
        return evaluate(f.right, state, active & left)
    if isinstance(f, ast.OrFilter):
        left = evaluate(f.left, state, active)
        return left | evaluate(f.right, state, active & ~left)
    if isinstance(f, ast.LabelMatch):
        return active & _string_match(f, state)
    if isinstance(f, ast.NumberFilter):
        return active & _converted(f.name, f.op, f.value, go_float, state, active)
    if isinstance(f, ast.DurationFilter):
        return active & _converted(f.name, f.op, f.value_ns, go_duration_ns, state, active)
    if isinstance(f, ast.BytesFilter):
        return active & _converted(f.name, f.op, f.value, parse_humanized_bytes, state, active)
    if isinstance(f, ast.IpFilter):
        return active & _ip_match(f, state)
    raise Unsupported(f"label filter {type(f).__name__}")


def _string_match(f: ast.LabelMatch, state: FilterState) -> np.ndarray:
    m = f.matcher
    values = pc.fill_null(state.value(m.name), "")
    if m.op in ("=", "!="):
        hits = pc.equal(values, pa.scalar(m.value, pa.string()))
    else:
        hits = pc.match_substring_regex(values, f"^(?s:{m.value})$")
    mask = hits.to_numpy(zero_copy_only=False)
    return ~mask if m.op in ("!=", "!~") else mask


_COMPARE: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "==": np.equal, "!=": np.not_equal, ">": np.greater, ">=": np.greater_equal,
    "<": np.less, "<=": np.less_equal,
}


def _converted(name: str, op: str, wanted: float, convert: Callable[[str], float], state: FilterState,
               active: np.ndarray) -> np.ndarray:
    """Compare a converted label; keep rows that fail to convert and mark them (Loki's rule)."""
    raw = state.value(name).to_pylist()
    n = len(raw)
    present = np.zeros(n, dtype=bool)
    numbers = np.zeros(n, dtype=np.float64)
    failed: dict[int, str] = {}
    for i in np.flatnonzero(active).tolist():
        text = raw[i]
        if text is None:
            continue
        present[i] = True
        try:
            numbers[i] = convert(text)
        except ValueError as exc:
            failed[i] = str(exc)
    keep = present & _COMPARE[op](numbers, wanted)
    if failed:
        rows = list(failed)
        keep[rows] = True
        _set_errors(state, rows, failed)
    return keep


def _set_errors(state: FilterState, rows: list[int], details: dict[int, str]) -> None:
    """Mark rows with LabelFilterErr where they have no error yet."""
    errors = state.error.to_pylist()
    texts = state.details.to_pylist()
    for i in rows:
        if errors[i] is None:
            errors[i] = LABEL_FILTER_ERROR
            texts[i] = details[i]
    state.error = pa.array(errors, pa.string())
    state.details = pa.array(texts, pa.string())


def _ip_match(f: ast.IpFilter, state: FilterState) -> np.ndarray:
    """Rows that already carry an error pass (only string filters drop those, in Loki)."""
    network = ip_matcher(f.pattern)
    values = state.value(f.name).to_pylist()
    hits = np.array([v is not None and network(v) for v in values], dtype=bool)
    absent = np.array([v is None for v in values], dtype=bool)
    keep = hits if f.op == "=" else ~hits & ~absent
    return keep | state.error.is_valid().to_numpy(zero_copy_only=False)


def go_float(text: str) -> float:
    """strconv.ParseFloat's grammar: no surrounding space, no Python-only spellings."""
    if text != text.strip() or "_" in text:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    try:
        return float(text)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None
