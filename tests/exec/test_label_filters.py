"""Loki's label-filter rules on columns: absent labels, conversion errors, and/or short-circuits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lokiarrow.exec.label_filters import LABEL_FILTER_ERROR, FilterState, evaluate
from lokiarrow.logql.ast import LabelFilterStage, LogExpr
from lokiarrow.logql.parser import parse_expr

STATUS = ["200", "503", None, "oops", "500"]
LATENCY = ["1.5s", "20ms", "2s", None, "bad"]


def run(filter_text: str, error: list[str | None] | None = None) -> tuple[list[bool], list[str | None]]:
    expr = parse_expr('{a="b"} | ' + filter_text)
    assert isinstance(expr, LogExpr)
    stage = expr.stages[0]
    assert isinstance(stage, LabelFilterStage)
    n = len(STATUS)
    state = FilterState({"status": pa.array(STATUS, pa.string()), "latency": pa.array(LATENCY, pa.string())},
                        pa.array(error or [None] * n, pa.string()), pa.nulls(n, pa.string()))
    keep = evaluate(stage.filter, state, np.ones(n, dtype=bool))
    return keep.tolist(), state.error.to_pylist()


@pytest.mark.parametrize(("text", "keep", "errors"), [
    # absent label: dropped; unconvertible: kept and marked
    ("status >= 500", [False, True, False, True, True], [None, None, None, LABEL_FILTER_ERROR, None]),
    ("status == 200", [True, False, False, True, False], [None, None, None, LABEL_FILTER_ERROR, None]),
    # string filters compare "" for an absent label and never mark errors
    ('status = ""', [False, False, True, False, False], [None] * 5),
    ('status =~ "5.."', [False, True, False, False, True], [None] * 5),
    ('status !~ "5.."', [True, False, True, True, False], [None] * 5),
    ("latency > 1s", [True, False, True, False, True], [None, None, None, None, LABEL_FILTER_ERROR]),
    # `and` evaluates its right side only where the left kept the row
    ('status = "oops" and latency > 1s', [False, False, False, False, False], [None] * 5),
    # `or` evaluates its right side only where the left dropped the row
    ('status = "200" or status >= 500', [True, True, False, True, True], [None, None, None, LABEL_FILTER_ERROR, None]),
])
def test_label_filter_rules(text: str, keep: list[bool], errors: list[str | None]) -> None:
    assert run(text) == (keep, errors)


def test_an_existing_error_is_not_overwritten_and_error_filters_read_it() -> None:
    keep, errors = run("status > 1", error=[None, None, None, "JSONParserErr", None])
    assert errors[3] == "JSONParserErr" and keep[3]
    keep, _ = run('__error__ = ""', error=[None, "JSONParserErr", None, None, None])
    assert keep == [True, False, True, True, True]
