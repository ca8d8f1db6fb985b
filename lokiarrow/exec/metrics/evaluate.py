"""Evaluate a metric expression tree at the query's steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lokiarrow.errors import BadRequest
from lokiarrow.exec.logs import ScanStats
from lokiarrow.exec.metrics import binary, fielded, ranges, unwrapped, vectors
from lokiarrow.exec.metrics.series import Matrix, Scalar, constant
from lokiarrow.logql import ast
from lokiarrow.store.tenant import Snapshot


@dataclass
class Context:
    snapshot: Snapshot
    steps: np.ndarray        # int64 ns
    step_ns: int             # 0 for an instant query
    stats: ScanStats


def evaluate(expr: ast.Expr, ctx: Context) -> Matrix | Scalar:
    if isinstance(expr, ast.RangeAggregation):
        read = unwrapped.unwrapped_by_fields(expr, ctx.snapshot, ctx.steps, ctx.step_ns, ctx.stats)
        if read is not None:
            return read
        return ranges.range_aggregation(expr, ctx.snapshot, ctx.steps, ctx.step_ns, ctx.stats)
    if isinstance(expr, ast.VectorAggregation):
        summed = fielded.sum_by_fields(expr, ctx.snapshot, ctx.steps, ctx.step_ns, ctx.stats)
        if summed is not None:
            return vectors.aggregate(expr, summed)
        return vectors.aggregate(expr, _matrix(evaluate(expr.expr, ctx), ctx))
    if isinstance(expr, ast.BinaryOp):
        return binary.binary(expr, evaluate(expr.left, ctx), evaluate(expr.right, ctx))
    if isinstance(expr, ast.Literal):
        return Scalar(expr.value)
    if isinstance(expr, ast.Vector):
        return constant(ctx.steps, expr.value)
    if isinstance(expr, ast.LabelReplace):
        return vectors.label_replace(expr, _matrix(evaluate(expr.expr, ctx), ctx))
    raise BadRequest(f"unexpected expression {type(expr).__name__}")


def _matrix(value: Matrix | Scalar, ctx: Context) -> Matrix:
    return value if isinstance(value, Matrix) else constant(ctx.steps, value.value)
