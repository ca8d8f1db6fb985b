"""Binary operators: `+ - * / % ^`, comparisons (filtering, or 0/1 with `bool`), `and or unless`.

Vector operands are matched per step, as Loki's evaluator does at each step: every series gets a
match key once, in Python (its labels, only the `on (…)` ones, or all but the `ignoring (…)`
ones); each point then carries one integer code, key * steps + step, and the two sides are joined
on it with a sorted search in NumPy, so two series meet exactly at the steps where both have a
point. (A single integer key sorts far faster than Polars hashes a two-column join; duplicate
checks are a sort and a look at neighbours.) Values are computed with NumPy too, which keeps IEEE
comparisons: NaN equals nothing, where Polars would call two NaNs equal.

Loki's rules, where they differ from Prometheus's:
- `x / 0` and `x % 0` are NaN, never ±Inf (Loki guards both divisions).
- A comparison between two literals is 0 or 1 with or without `bool` (Loki folds it at parse time
  without filtering); Prometheus requires `bool` there.
- Error texts are Loki's: "found duplicate series on the right hand-side;…" and "multiple matches
  for labels: …". Any step breaking a rule fails the whole query (Loki checks after every step);
  the earliest such step decides which error is reported.
Shared with Prometheus: results keep the labels of the "many" side (the left one by default);
one-to-one matching with `on (…)` keeps only those labels and `ignoring (…)` drops those;
`group_left (…)`/`group_right (…)` copy the listed labels from the "one" side (removing them
where it lacks them). Filtering comparisons keep the left operand's value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from lokiarrow.errors import BadRequest, ParseError
from lokiarrow.exec.metrics.series import Labels, Matrix, Scalar, labels_of
from lokiarrow.exec.metrics.vectors import columns, compact, first_repeat, intern, points_frame, relabel
from lokiarrow.logql import ast

SET_OPERATORS = ("and", "or", "unless")
COMPARISONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "==": np.equal, "!=": np.not_equal, ">": np.greater, ">=": np.greater_equal,
    "<": np.less, "<=": np.less_equal,
}
DUPLICATE_ONE_SIDE = ("found duplicate series on the {side} hand-side;many-to-many matching not allowed: "
                      "matching labels must be unique on one side")
IMPLICIT_MANY_TO_ONE = ("multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)")
AMBIGUOUS_GROUPING = "multiple matches for labels: grouping labels must ensure unique matches"

Operand = Matrix | Scalar


def binary(node: ast.BinaryOp, left: Operand, right: Operand) -> Operand:
    """`left node.op right`, with `node`'s `bool` and vector matching."""
    if node.op in SET_OPERATORS:
        for side, operand in (("left", left), ("right", right)):
            if isinstance(operand, Scalar):
                raise ParseError(f"unexpected literal for {side} leg of logical/set binary operation "
                                 f"({node.op}): {_go_f(operand.value)}")
        assert isinstance(left, Matrix) and isinstance(right, Matrix)
        return _set_operation(node.op, node.matching, left, right)
    if isinstance(left, Scalar) and isinstance(right, Scalar):
        return Scalar(float(values(node.op, np.array([left.value]), np.array([right.value]))[0]))
    if isinstance(left, Scalar):
        assert isinstance(right, Matrix)
        return _with_scalar(node, right, left.value, scalar_left=True)
    if isinstance(right, Scalar):
        return _with_scalar(node, left, right.value, scalar_left=False)
    return _vectors(node, left, right)


def values(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a op b` element-wise as Loki computes it; comparisons give 0/1."""
    compare = COMPARISONS.get(op)
    if compare is not None:
        return compare(a, b).astype(np.float64)
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return np.where(b == 0, np.nan, a / b)
        if op == "%":   # Go's math.Mod: the sign of the dividend, as C's fmod
            return np.where(b == 0, np.nan, np.fmod(a, b))
        if op == "^":
            return np.power(a, b)
    raise BadRequest(f"should never happen: unexpected operation: ({op})")


def _with_scalar(node: ast.BinaryOp, vector: Matrix, value: float, scalar_left: bool) -> Matrix:
    """A literal against every point; a comparison without `bool` keeps the points it holds for."""
    v = vector.points["v"].to_numpy()
    scalar = np.full(len(v), value, dtype=np.float64)
    a, b = (scalar, v) if scalar_left else (v, scalar)
    if node.op in COMPARISONS and not node.return_bool:
        points = vector.points.filter(pl.Series(COMPARISONS[node.op](a, b)))
    else:
        points = vector.points.with_columns(pl.Series("v", values(node.op, a, b)))
    return compact(Matrix(vector.steps, vector.labels, points))


# --- vector matching -------------------------------------------------------------------------

def match_key(series: Labels, matching: ast.VectorMatching | None) -> Labels:
    """The labels two series must share to match: all, the `on` ones, or all but the `ignoring` ones."""
    if matching is None:
        return series
    names = set(matching.labels)
    return tuple(pair for pair in series if (pair[0] in names) == matching.on)


@dataclass
class _Side:
    """One operand's points as arrays, with `code` = match key * steps + step: equal codes match."""

    matrix: Matrix
    sid: np.ndarray
    step: np.ndarray
    v: np.ndarray
    code: np.ndarray


def _side(matrix: Matrix, matching: ast.VectorMatching | None, keys: dict[Labels, int],
          n_steps: int) -> _Side:
    key_of = intern((match_key(series, matching) for series in matrix.labels), keys, len(matrix.labels))
    sid, step, v = columns(matrix)
    return _Side(matrix, sid, step, v, key_of[sid] * n_steps + step)


def _sides(matching: ast.VectorMatching | None, left: Matrix, right: Matrix) -> tuple[_Side, _Side, int]:
    keys: dict[Labels, int] = {}
    n_steps = max(len(left.steps), 1)
    return _side(left, matching, keys, n_steps), _side(right, matching, keys, n_steps), n_steps


def _set_operation(op: str, matching: ast.VectorMatching | None, left: Matrix, right: Matrix) -> Matrix:
    """`and` keeps left points whose key has a right point at that step, `unless` those without
    one; `or` adds to all left points the right ones whose key has no left point at that step."""
    lp, rp, _ = _sides(matching, left, right)
    if op == "or":
        extra = ~np.isin(rp.code, lp.code)
        labels = left.labels + right.labels
        points = points_frame(np.concatenate([lp.sid, rp.sid[extra] + len(left.labels)]),
                              np.concatenate([lp.step, rp.step[extra]]), np.concatenate([lp.v, rp.v[extra]]))
        return relabel(Matrix(left.steps, labels, points), labels)
    keep = np.isin(lp.code, rp.code, invert=op == "unless")
    return compact(Matrix(left.steps, left.labels, points_frame(lp.sid[keep], lp.step[keep], lp.v[keep])))


def _vectors(node: ast.BinaryOp, left: Matrix, right: Matrix) -> Matrix:
    """Arithmetic or comparison between two vectors, point by matched point."""
    matching = node.matching
    card = matching.card if matching else "one-to-one"
    lp, rp, n_steps = _sides(matching, left, right)
    many, one = (rp, lp) if card == "one-to-many" else (lp, rp)
    m_idx, o_idx = _match(many.code, one.code)
    side = "left" if card == "one-to-many" else "right"
    errors = [(first_repeat(one.code, n_steps), DUPLICATE_ONE_SIDE.format(side=side))]
    if card == "one-to-one":
        errors.append((first_repeat(many.code[m_idx], n_steps), IMPLICIT_MANY_TO_ONE))
    step = many.step[m_idx]
    rid, labels = _result_ids(many.sid[m_idx], one.sid[o_idx], many.matrix, one.matrix, matching)
    if card != "one-to-one" and matching and matching.include:
        errors.append((first_repeat(rid * n_steps + step, n_steps), AMBIGUOUS_GROUPING))
    _raise_earliest(errors)

    lv, rv = many.v[m_idx], one.v[o_idx]
    if card == "one-to-many":
        lv, rv = rv, lv
    if node.op in COMPARISONS and not node.return_bool:
        hit = COMPARISONS[node.op](lv, rv)
        points = points_frame(rid[hit], step[hit], lv[hit])
    else:
        points = points_frame(rid, step, values(node.op, lv, rv))
    return compact(Matrix(left.steps, labels, points))


def _match(many: np.ndarray, one: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each `many` code that some `one` code equals: its index, and the index of that `one`
    (the first, should several be equal: that is an error reported separately)."""
    if not one.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(one, kind="stable")
    ordered = one[order]
    pos = np.minimum(np.searchsorted(ordered, many), len(ordered) - 1)
    m_idx = np.flatnonzero(ordered[pos] == many)
    return m_idx, order[pos[m_idx]]


def _result_ids(sid_m: np.ndarray, sid_o: np.ndarray, many: Matrix, one: Matrix,
                matching: ast.VectorMatching | None) -> tuple[np.ndarray, list[Labels]]:
    """The id of each matched pair's result labels, and the labels of each id.

    The labels depend on the "many" series alone, unless `group_…(labels)` copies some from the
    "one" series: the Python work is per series (or distinct pair), not per point."""
    ids: dict[Labels, int] = {}
    if not (matching and matching.include):
        results = (result_labels(series, (), matching) for series in many.labels)
        rid_of = intern(results, ids, len(many.labels))
        return rid_of[sid_m], list(ids)
    n_one = len(one.labels)
    pairs, inverse = np.unique(sid_m * n_one + sid_o, return_inverse=True)
    pair_results = (result_labels(many.labels[p // n_one], one.labels[p % n_one], matching)
                    for p in pairs.tolist())
    return intern(pair_results, ids, len(pairs))[inverse.reshape(-1)], list(ids)


def result_labels(many: Labels, one: Labels, matching: ast.VectorMatching | None) -> Labels:
    """The labels of a result point, from its "many" and "one" series (Loki's `resultMetric`)."""
    if matching is None:
        return many
    out = dict(many)
    if matching.card == "one-to-one":
        names = set(matching.labels)
        out = {k: v for k, v in out.items() if (k in names) == matching.on}
    source = dict(one)
    for name in matching.include:
        out[name] = source.get(name, "")   # labels_of drops it where the "one" side lacks it
    return labels_of(out)


def _raise_earliest(errors: list[tuple[int | None, str]]) -> None:
    """Raise the error of the earliest failing step (the first listed on a tie), as Loki would."""
    failing = [(step, order, text) for order, (step, text) in enumerate(errors) if step is not None]
    if failing:
        raise BadRequest(min(failing)[2])


def _go_f(value: float) -> str:
    """Go's `%f`."""
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:f}"
