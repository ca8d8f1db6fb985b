"""What a metric expression evaluates to: series of points at the query's steps, or a scalar.

A `Matrix` is sparse: one row per (series, step) that has a value, so an expression over many
series and steps costs what its points cost. Series are numbered; `labels[sid]` is the label set
of series `sid`, sorted by name (empty values never appear). An instant query is a Matrix with
one step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

Labels = tuple[tuple[str, str], ...]   # sorted by name

POINTS_SCHEMA: dict[str, pl.DataType] = {"sid": pl.Int64(), "step": pl.Int64(), "v": pl.Float64()}


@dataclass
class Matrix:
    steps: np.ndarray        # int64 ns evaluation times, ascending
    labels: list[Labels]     # series id -> its labels
    points: pl.DataFrame     # sid, step (index into `steps`), v: one row per point

    @classmethod
    def empty(cls, steps: np.ndarray) -> Matrix:
        return cls(steps, [], pl.DataFrame(schema=POINTS_SCHEMA))

    def series_count(self) -> int:
        """Series that have at least one point."""
        return self.points.get_column("sid").n_unique() if self.points.height else 0


@dataclass(frozen=True)
class Scalar:
    """A number: the same value at every step (literals, and arithmetic between them)."""

    value: float


def labels_of(pairs: dict[str, str]) -> Labels:
    """A label set as `Matrix.labels` holds it: sorted, without empty values."""
    return tuple(sorted((k, v) for k, v in pairs.items() if v != ""))


def constant(steps: np.ndarray, value: float, labels: Labels = ()) -> Matrix:
    """One series with `value` at every step (`vector(1)`)."""
    n = len(steps)
    points = pl.DataFrame({"sid": np.zeros(n, dtype=np.int64), "step": np.arange(n, dtype=np.int64),
                           "v": np.full(n, value, dtype=np.float64)}, schema=POINTS_SCHEMA)
    return Matrix(steps, [labels], points)
