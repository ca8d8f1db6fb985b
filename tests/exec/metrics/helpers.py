"""Build small matrices by hand and read results back as plain dicts, for the metric operator tests."""

from __future__ import annotations

import math

import numpy as np

from lokiarrow.exec.metrics.series import Matrix, labels_of
from lokiarrow.exec.metrics.vectors import points_frame
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr

INNER = 'rate({job="x"}[1m])'
Row = list[float | None]


def matrix(*series: tuple[str, Row]) -> Matrix:
    """`matrix(("app=a,pod=1", [1.0, None, 3.0]), …)`: one series per pair, None where it has no point."""
    steps = len(series[0][1]) if series else 1
    sid, step, v = [], [], []
    for i, (_, row) in enumerate(series):
        assert len(row) == steps
        for j, value in enumerate(row):
            if value is not None:
                sid.append(i)
                step.append(j)
                v.append(value)
    labels = [labels_of(dict(pair.split("=") for pair in text.split(",") if pair)) for text, _ in series]
    return Matrix(np.arange(steps, dtype=np.int64) * 1_000_000_000, labels, points_frame(sid, step, v))


def rows(m: Matrix) -> dict[str, list[float | str | None]]:
    """`m` as {"app=a,pod=1": [1.0, None, "NaN"]}; NaN spelled out so it compares equal."""
    out: dict[str, list[float | str | None]] = {}
    assert len(set(m.labels)) == len(m.labels), "a label set appears twice"
    assert not m.points.select("sid", "step").is_duplicated().any()
    for sid, step, v in m.points.iter_rows():
        key = ",".join(f"{k}={val}" for k, val in m.labels[sid])
        row = out.setdefault(key, [None] * len(m.steps))
        row[step] = "NaN" if math.isnan(v) else v
    return out


def node(query: str) -> ast.Expr:
    """The tree of `query`, with `X` standing for a valid inner expression."""
    return parse_expr(query.replace("X", INNER))
