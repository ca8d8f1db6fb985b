"""Vector aggregations (`sum by (a) (…)`, `topk(3, …)`, …) and `label_replace` over a `Matrix`.

Both work across series at each step. The per-series part (which group a series falls in, what
its labels become) is done once per series in Python; the per-point part is one Polars group-by
over (group, step), packed into one integer key `group * steps + step` (much faster to hash than
two columns), so the cost follows the points, not the series times the steps.

Semantics are Loki's (its evaluator copies Prometheus's aggregations):
- `by (a)` keeps only the listed labels, `without (a)` drops them, no grouping is one group.
- `min`/`max` skip NaN unless the whole group is NaN; `stddev`/`stdvar` are population ones; a
  group of one has a deviation of 0 whatever its value.
- `topk`/`bottomk` keep the chosen series with all their labels, per step and group; NaN ranks
  last for both. Loki feeds its heap in map order, so its ties are arbitrary: here equal values
  go to the series whose labels sort first, which is what Prometheus's heap usually keeps for
  series read in label order. `approx_topk` (no grouping) is evaluated exactly, as `topk`: that
  is what Loki's querier does once the count-min sketch has been estimated.
- `sort`/`sort_desc` only order the final instant vector, which the caller does from the tree.
- `label_replace` anchors the regex (`^(?:re)$`, as Loki), expands `$1`/`${name}` as Go's
  `Regexp.Expand`, and removes the label when the expansion is empty. Series that end with the
  same labels are merged; if they both have a point at one step, that is Prometheus's
  "vector cannot contain metrics with the same labelset" error (Loki would return both).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl
import re2

from lokiarrow.errors import BadRequest, ParseError, Unsupported
from lokiarrow.exec.metrics.series import POINTS_SCHEMA, Labels, Matrix
from lokiarrow.logql import ast
from lokiarrow.model import QUIET_RE2, go_regex_error

SAME_LABELSET = "vector cannot contain metrics with the same labelset"

_V = pl.col("v")


def _spread(expr: pl.Expr) -> pl.Expr:
    """A deviation, 0 for a group of one (Loki's running sum starts at 0, even for NaN or Inf)."""
    return pl.when(pl.len() == 1).then(pl.lit(0.0)).otherwise(expr)


def _mean() -> pl.Expr:
    """Sum / count, unless finite values overflowed the sum: then the sum of value / count."""
    plain = _V.sum() / pl.len()
    overflowed = plain.is_infinite() & ~_V.is_infinite().any()
    return pl.when(overflowed).then((_V / pl.len()).sum()).otherwise(plain)


_AGGREGATIONS: dict[str, pl.Expr] = {
    "sum": _V.sum(),
    "avg": _mean(),
    "min": _V.min(),   # Polars' min/max skip NaN unless every value is NaN, as Loki's loop does
    "max": _V.max(),
    "count": pl.len().cast(pl.Float64),
    "stddev": _spread(_V.std(ddof=0)),
    "stdvar": _spread(_V.var(ddof=0)),
}
_SELECTIONS = {"topk": True, "approx_topk": True, "bottomk": False}  # op -> keeps the largest


def aggregate(node: ast.VectorAggregation, inner: Matrix) -> Matrix:
    """`node.op` across the series of `inner` at each step, per group of `node.grouping`."""
    if node.op in ("sort", "sort_desc"):
        return inner
    if node.op in _SELECTIONS:
        return _select(inner, node.grouping, node.param, largest=_SELECTIONS[node.op])
    expr = _AGGREGATIONS.get(node.op)
    if expr is None:
        raise Unsupported(f"vector aggregation {node.op}")
    group_of, group_labels = group_ids(inner.labels, node.grouping)
    n_steps = max(len(inner.steps), 1)
    sid, step, v = columns(inner)
    frame = pl.DataFrame({"code": group_of[sid] * n_steps + step, "v": v})   # one key: (group, step)
    out = frame.group_by("code").agg(expr.alias("v"))
    code = out["code"].to_numpy()
    points = points_frame(code // n_steps, code % n_steps, out["v"].to_numpy())
    return compact(Matrix(inner.steps, group_labels, points))


def group_ids(labels: list[Labels], grouping: ast.Grouping | None) -> tuple[np.ndarray, list[Labels]]:
    """Each series' group id (an array indexed by series id) and each group's labels."""
    ids: dict[Labels, int] = {}
    group_of = intern((group_labels(series, grouping) for series in labels), ids, len(labels))
    return group_of, list(ids)


def group_labels(series: Labels, grouping: ast.Grouping | None) -> Labels:
    """The labels a series' group carries: `by` keeps the listed ones, `without` drops them."""
    if grouping is None:
        return ()
    names = set(grouping.labels)
    return tuple(pair for pair in series if (pair[0] in names) != grouping.without)


def _select(inner: Matrix, grouping: ast.Grouping | None, k: int | None, largest: bool) -> Matrix:
    """`topk`/`bottomk`: the k best points of each group at each step, their series unchanged."""
    if k is None or k < 1:
        return Matrix.empty(inner.steps)
    group_of, _ = group_ids(inner.labels, grouping)
    order = np.empty(len(inner.labels), dtype=np.int64)   # tie-break: labels order
    order[sorted(range(len(inner.labels)), key=inner.labels.__getitem__)] = np.arange(len(inner.labels))
    sid, step, v = columns(inner)
    ranked = pl.DataFrame({"code": group_of[sid] * max(len(inner.steps), 1) + step, "nan": np.isnan(v),
                           "v": v, "order": order[sid], "sid": sid, "step": step})
    kept = (ranked.sort("code", "nan", "v", "order", descending=[False, False, largest, False])
            .group_by("code", maintain_order=True).head(k))
    return compact(Matrix(inner.steps, inner.labels, kept.select("sid", "step", "v")))


# --- label_replace ---------------------------------------------------------------------------

def label_replace(node: ast.LabelReplace, inner: Matrix) -> Matrix:
    """`label_replace(inner, dst, replacement, src, regex)`, series by series."""
    if node.dst == "":
        raise BadRequest(f"invalid destination label name in label_replace(): {node.dst}")
    anchored = f"^(?:{node.regex})$"
    try:
        regex = re2.compile(anchored, QUIET_RE2)
    except re2.error as exc:
        text = go_regex_error(str(exc), anchored)
        raise ParseError(f"invalid regex in label_replace: error parsing regexp: {text}") from None
    replaced = [_replace(series, node, regex) for series in inner.labels]
    return relabel(inner, replaced)


def _replace(series: Labels, node: ast.LabelReplace, regex: re2._Regexp) -> Labels:
    match = regex.search(dict(series).get(node.src, ""))
    if match is None:
        return series
    value = go_expand(node.replacement, match, regex.groupindex)
    kept = [pair for pair in series if pair[0] != node.dst]
    if value:
        kept.append((node.dst, value))
    return tuple(sorted(kept))


def go_expand(template: str, match: re2._Match, names: dict[str, int]) -> str:
    """Go's `Regexp.ExpandString`: `$1`, `${1}`, `$name`, `${name}`, `$$`; a reference to a group
    that does not exist or did not take part expands to nothing; a malformed `$` stays as is."""
    out: list[str] = []
    while True:
        before, dollar, template = template.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        reference = _reference(template)
        if reference is None:
            out.append("$")
            continue
        name, template = reference
        group = _group_number(name)
        if group < 0:
            group = names.get(name, -1)
        if 0 <= group <= match.re.groups and match.group(group) is not None:
            out.append(match.group(group))


def _reference(text: str) -> tuple[str, str] | None:
    """The group name at the start of `text` (`name` or `{name}`) and what follows, as Go's `extract`."""
    brace = text.startswith("{")
    body = text[1:] if brace else text
    size = 0
    while size < len(body) and (body[size].isalpha() or body[size].isdecimal() or body[size] == "_"):
        size += 1
    if size == 0:
        return None
    name, rest = body[:size], body[size:]
    if brace:
        if not rest.startswith("}"):
            return None
        rest = rest[1:]
    return name, rest


def _group_number(name: str) -> int:
    """The group number `name` spells in ASCII digits (no leading zero, at most 9 digits), else -1."""
    if not (name.isascii() and name.isdigit()) or (name[0] == "0" and len(name) > 1) or len(name) > 9:
        return -1
    return int(name)


# --- shared by the operators -----------------------------------------------------------------

def relabel(matrix: Matrix, labels: list[Labels]) -> Matrix:
    """`matrix` with series `sid` now labelled `labels[sid]`; series that end up with the same labels
    become one, and it is an error for two of them to have a point at the same step."""
    ids: dict[Labels, int] = {}
    new_id = intern(labels, ids, len(labels))
    sid, step, v = columns(matrix)
    sid = new_id[sid]
    n_steps = max(len(matrix.steps), 1)
    if len(ids) < len(labels) and first_repeat(sid * n_steps + step, n_steps) is not None:
        raise BadRequest(SAME_LABELSET)
    return compact(Matrix(matrix.steps, list(ids), points_frame(sid, step, v)))


def compact(matrix: Matrix) -> Matrix:
    """`matrix` keeping only the series that have points, numbered in order, points sorted by
    series then step."""
    sid, step, v = columns(matrix)
    present = np.zeros(len(matrix.labels), dtype=bool)
    present[sid] = True
    renumber = np.cumsum(present) - 1
    sid = renumber[sid]
    code = sid * max(len(matrix.steps), 1) + step
    if code.size and (np.diff(code) < 0).any():
        order = np.argsort(code, kind="stable")
        sid, step, v = sid[order], step[order], v[order]
    labels = [series for series, used in zip(matrix.labels, present, strict=True) if used]
    return Matrix(matrix.steps, labels, points_frame(sid, step, v))


def intern(labels: Iterable[Labels], ids: dict[Labels, int], count: int) -> np.ndarray:
    """The id of each of `count` label sets in `ids`, adding the new ones: equal labels, equal ids."""
    return np.fromiter((ids.setdefault(series, len(ids)) for series in labels), dtype=np.int64, count=count)


def first_repeat(code: np.ndarray, n_steps: int) -> int | None:
    """The first step at which a code `id * n_steps + step` (any id: series, match key, result)
    appears twice, if any."""
    ordered = np.sort(code)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    return int((repeated % max(n_steps, 1)).min()) if repeated.size else None


def columns(matrix: Matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points of `matrix` as NumPy arrays: sid, step, v."""
    points = matrix.points
    return points["sid"].to_numpy(), points["step"].to_numpy(), points["v"].to_numpy()


def points_frame(sid: Iterable[int] | np.ndarray, step: Iterable[int] | np.ndarray,
                 v: Iterable[float] | np.ndarray) -> pl.DataFrame:
    """A points frame with `Matrix`'s schema."""
    return pl.DataFrame({"sid": np.asarray(sid, dtype=np.int64), "step": np.asarray(step, dtype=np.int64),
                         "v": np.asarray(v, dtype=np.float64)}, schema=POINTS_SCHEMA)
