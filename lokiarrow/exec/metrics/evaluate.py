"""Evaluate a metric expression tree at the query's steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lokiarrow.errors import BadRequest
from lokiarrow.exec import multitenant
from lokiarrow.exec.logs import ScanStats
from lokiarrow.exec.metrics import binary, fielded, ranges, unwrapped, vectors
from lokiarrow.exec.metrics.series import Matrix, Scalar, constant
from lokiarrow.logql import ast
from lokiarrow.store.tenant import Snapshot


@dataclass
class Context:
    snapshot: Snapshot | None    # the tenant's; None for a multi-tenant query
    steps: np.ndarray            # int64 ns
    step_ns: int                 # 0 for an instant query
    stats: ScanStats
    tenants: tuple[tuple[str, Snapshot], ...] = ()   # a multi-tenant query's (lokiarrow/exec/multitenant.py)


def evaluate(expr: ast.Expr, ctx: Context) -> Matrix | Scalar:
    if isinstance(expr, ast.RangeAggregation):
        if ctx.snapshot is None:
            return multitenant.range_over_tenants(expr, ctx.tenants, lambda e, s: _range(e, s, ctx), ctx.steps)
        return _range(expr, ctx.snapshot, ctx)
    if isinstance(expr, ast.VectorAggregation):
        summed = (None if ctx.snapshot is None else
                  fielded.sum_by_fields(expr, ctx.snapshot, ctx.steps, ctx.step_ns, ctx.stats))
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


def _range(expr: ast.RangeAggregation, snapshot: Snapshot, ctx: Context) -> Matrix:
    read = unwrapped.unwrapped_by_fields(expr, snapshot, ctx.steps, ctx.step_ns, ctx.stats)
    if read is not None:
        return read
    return ranges.range_aggregation(expr, snapshot, ctx.steps, ctx.step_ns, ctx.stats)


def _matrix(value: Matrix | Scalar, ctx: Context) -> Matrix:
    return value if isinstance(value, Matrix) else constant(ctx.steps, value.value)
