"""Binary operators on hand-built matrices and scalars, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from lokiarrow.errors import BadRequest, ParseError
from lokiarrow.exec.metrics.binary import AMBIGUOUS_GROUPING, binary
from lokiarrow.exec.metrics.series import Matrix, Scalar
from lokiarrow.logql import ast
from tests.exec.metrics.helpers import matrix, node, rows

NAN = float("nan")

PODS = matrix(
    ("app=x,pod=1", [1.0, 2.0, None]),
    ("app=x,pod=2", [3.0, None, 4.0]),
    ("app=y,pod=1", [10.0, 20.0, 30.0]),
)


def _operand(expr: ast.Expr, m: Matrix | None) -> Matrix | Scalar:
    if isinstance(expr, ast.Literal):
        return Scalar(expr.value)
    assert m is not None
    return m


def binop(query: str, left: Matrix | None = None, right: Matrix | None = None) -> dict:
    """`query` with each `X` evaluated to the given matrix and each literal to a Scalar."""
    expr = node(query)
    assert isinstance(expr, ast.BinaryOp)
    out = binary(expr, _operand(expr.left, left), _operand(expr.right, right))
    assert isinstance(out, Matrix)
    return rows(out)


# --- scalars ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("1 + 2", 3.0), ("2 - 5", -3.0), ("3 * 4", 12.0), ("2 ^ 10", 1024.0), ("7 / 2", 3.5),
    ("7 % -3", 1.0), ("-7 % 3", -1.0), ("7.5 % 2", 1.5),
    # Loki guards divisions: no ±Inf
    ("1 / 0", NAN), ("-1 / 0", NAN), ("0 / 0", NAN), ("5 % 0", NAN),
    # between literals a comparison is 0/1 with or without bool (Loki folds it, never filters)
    ("1 > 2", 0.0), ("2 > 1", 1.0), ("1 == 1", 1.0), ("1 != 1", 0.0), ("2 <= bool 1", 0.0), ("1 >= bool 1", 1.0),
])
def test_scalar_scalar(query: str, expected: float) -> None:
    expr = node(query)
    assert isinstance(expr, ast.BinaryOp)
    assert isinstance(expr.left, ast.Literal) and isinstance(expr.right, ast.Literal)
    out = binary(expr, Scalar(expr.left.value), Scalar(expr.right.value))
    assert isinstance(out, Scalar)
    assert (math.isnan(out.value) and math.isnan(expected)) or out.value == expected


def test_set_operator_with_a_literal() -> None:
    expr = ast.BinaryOp("and", ast.Literal(1.0), ast.Literal(2.0))
    with pytest.raises(ParseError, match=r"unexpected literal for left leg of logical/set binary "
                                         r"operation \(and\): 1.000000"):
        binary(expr, Scalar(1.0), PODS)
    with pytest.raises(ParseError, match=r"right leg of logical/set binary operation \(and\): 2.000000"):
        binary(expr, PODS, Scalar(2.0))


# --- scalar and vector -----------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("X * 2", {"app=x,pod=1": [2.0, 4.0, None], "app=x,pod=2": [6.0, None, 8.0], "app=y,pod=1": [20.0, 40.0, 60.0]}),
    ("10 - X", {"app=x,pod=1": [9.0, 8.0, None], "app=x,pod=2": [7.0, None, 6.0], "app=y,pod=1": [0.0, -10.0, -20.0]}),
    ("X % 3", {"app=x,pod=1": [1.0, 2.0, None], "app=x,pod=2": [0.0, None, 1.0], "app=y,pod=1": [1.0, 2.0, 0.0]}),
    ("2 ^ X", {"app=x,pod=1": [2.0, 4.0, None], "app=x,pod=2": [8.0, None, 16.0],
               "app=y,pod=1": [1024.0, 2.0 ** 20, 2.0 ** 30]}),
    ("X / 0", {"app=x,pod=1": ["NaN", "NaN", None], "app=x,pod=2": ["NaN", None, "NaN"],
               "app=y,pod=1": ["NaN", "NaN", "NaN"]}),
    # filtering keeps the vector's own values, whichever side the literal is on
    ("X > 2", {"app=x,pod=2": [3.0, None, 4.0], "app=y,pod=1": [10.0, 20.0, 30.0]}),
    ("2 < X", {"app=x,pod=2": [3.0, None, 4.0], "app=y,pod=1": [10.0, 20.0, 30.0]}),
    ("X == 2", {"app=x,pod=1": [None, 2.0, None]}),
    ("4 <= X", {"app=x,pod=2": [None, None, 4.0], "app=y,pod=1": [10.0, 20.0, 30.0]}),
    ("X > bool 2", {"app=x,pod=1": [0.0, 0.0, None], "app=x,pod=2": [1.0, None, 1.0], "app=y,pod=1": [1.0, 1.0, 1.0]}),
    ("2 >= bool X", {"app=x,pod=1": [1.0, 1.0, None], "app=x,pod=2": [0.0, None, 0.0], "app=y,pod=1": [0.0, 0.0, 0.0]}),
    ("X > 100", {}),
])
def test_scalar_vector(query: str, expected: dict) -> None:
    assert binop(query, PODS, PODS) == expected


def test_division_of_zero_points_by_a_scalar_side() -> None:
    m = matrix(("a=1", [0.0, 2.0]))
    assert binop("0 / X", right=m) == {"a=1": ["NaN", 0.0]}
    assert binop("1 / X", right=m) == {"a=1": ["NaN", 0.5]}


# --- vector and vector, one-to-one -----------------------------------------------------------

SAME_L = matrix(("a=1", [1.0, 2.0, None]), ("a=2", [3.0, None, 4.0]))
SAME_R = matrix(("a=1", [10.0, None, 10.0]), ("a=3", [1.0, 1.0, 1.0]))


@pytest.mark.parametrize(("query", "expected"), [
    ("X + X", {"a=1": [11.0, None, None]}),     # matched per step: both need a point
    ("X - X", {"a=1": [-9.0, None, None]}),
    ("X < X", {"a=1": [1.0, None, None]}),      # the left value
    ("X > X", {}),
    ("X > bool X", {"a=1": [0.0, None, None]}),
])
def test_vectors_with_identical_labels(query: str, expected: dict) -> None:
    assert binop(query, SAME_L, SAME_R) == expected


def test_vector_division_and_modulo_by_zero() -> None:
    left, right = matrix(("a=1", [1.0, -1.0, 0.0, -7.0])), matrix(("a=1", [0.0, 0.0, 0.0, 3.0]))
    assert binop("X / X", left, right) == {"a=1": ["NaN", "NaN", "NaN", -7.0 / 3.0]}
    assert binop("X % X", left, right) == {"a=1": ["NaN", "NaN", "NaN", -1.0]}


def test_nan_compares_unequal() -> None:
    m = matrix(("a=1", [NAN]))
    assert binop("X == bool X", m, m) == {"a=1": [0.0]}
    assert binop("X != X", m, m) == {"a=1": ["NaN"]}
    assert binop("X == X", m, m) == {}


ONE_PER_APP_L = matrix(("app=x,pod=1", [1.0, 2.0, 3.0]), ("app=y,pod=2", [4.0, 5.0, 6.0]))
ONE_PER_APP_R = matrix(("app=x,team=a", [10.0, 10.0, 10.0]), ("app=y", [1.0, None, 2.0]))


def test_on_keeps_only_the_on_labels() -> None:
    assert binop("X + on (app) X", ONE_PER_APP_L, ONE_PER_APP_R) == {
        "app=x": [11.0, 12.0, 13.0], "app=y": [5.0, None, 8.0]}


def test_ignoring_drops_the_ignored_labels() -> None:
    assert binop("X + ignoring (pod, team) X", ONE_PER_APP_L, ONE_PER_APP_R) == {
        "app=x": [11.0, 12.0, 13.0], "app=y": [5.0, None, 8.0]}
    # ignoring pod alone: app=x still differs by team on the right
    assert binop("X + ignoring (pod) X", ONE_PER_APP_L, ONE_PER_APP_R) == {"app=y": [5.0, None, 8.0]}


def test_one_to_one_with_two_left_matches_at_a_step() -> None:
    right = matrix(("app=x", [1.0, 1.0, 1.0]))
    with pytest.raises(BadRequest) as err:
        binop("X + on (app) X", PODS, right)
    assert err.value.message == ("multiple matches for labels: many-to-one matching must be explicit "
                                 "(group_left/group_right)")


def test_one_to_one_series_sharing_a_key_at_different_steps() -> None:
    left = matrix(("app=x,pod=1", [1.0, None]), ("app=x,pod=2", [None, 2.0]))
    right = matrix(("app=x", [10.0, 10.0]))
    assert binop("X + on (app) X", left, right) == {"app=x": [11.0, 12.0]}


def test_duplicate_on_the_one_side_fails_even_unmatched() -> None:
    left = matrix(("app=y", [1.0]))
    right = matrix(("app=x,t=1", [1.0]), ("app=x,t=2", [2.0]))
    with pytest.raises(BadRequest) as err:
        binop("X + on (app) X", left, right)
    assert err.value.message == ("found duplicate series on the right hand-side;many-to-many matching not allowed: "
                                 "matching labels must be unique on one side")
    with pytest.raises(BadRequest, match="^found duplicate series on the left hand-side;"):
        binop("X + on (app) group_right X", right, left)


@pytest.mark.parametrize(("left_dup_step", "expected"), [(1, "found duplicate series"), (0, "multiple matches")])
def test_earliest_failing_step_decides_the_error(left_dup_step: int, expected: str) -> None:
    right_dup_step = 1 - left_dup_step
    left = matrix(*[(f"app=x,p={i}", [1.0 if s == left_dup_step else None for s in range(2)]) for i in (1, 2)])
    right = matrix(("app=x,t=1", [1.0, 1.0]),
                   ("app=x,t=2", [1.0 if s == right_dup_step else None for s in range(2)]))
    with pytest.raises(BadRequest, match=f"^{expected}"):
        binop("X + on (app) X", left, right)


# --- group_left / group_right ----------------------------------------------------------------

MANY = matrix(
    ("app=x,pod=1,team=old", [1.0, 2.0, None]),
    ("app=x,pod=2", [3.0, None, 4.0]),
    ("app=y,pod=1,team=old", [10.0, 20.0, 30.0]),
)
ONE = matrix(("app=x,team=a", [2.0, 0.0, 5.0]), ("app=y", [5.0, None, 3.0]))


def test_group_left_copies_include_labels_from_the_one_side() -> None:
    assert binop("X / on (app) group_left (team) X", MANY, ONE) == {
        "app=x,pod=1,team=a": [0.5, "NaN", None],
        "app=x,pod=2,team=a": [1.5, None, 0.8],
        "app=y,pod=1": [2.0, None, 10.0],          # the one side has no team: removed
    }


def test_group_left_without_include_keeps_the_many_labels() -> None:
    assert binop("X * on (app) group_left X", MANY, ONE) == {
        "app=x,pod=1,team=old": [2.0, 0.0, None],
        "app=x,pod=2": [6.0, None, 20.0],
        "app=y,pod=1,team=old": [50.0, None, 90.0],
    }


def test_group_left_with_ignoring() -> None:
    many = matrix(("app=x,pod=1", [1.0]), ("app=x,pod=2", [2.0]))
    one = matrix(("app=x,team=a", [10.0]))
    assert binop("X + ignoring (pod, team) group_left (team) X", many, one) == {
        "app=x,pod=1,team=a": [11.0], "app=x,pod=2,team=a": [12.0]}


def test_group_right_keeps_operand_order() -> None:
    # ONE - MANY, the result labelled as the many (right) side
    assert binop("X - on (app) group_right X", ONE, MANY) == {
        "app=x,pod=1,team=old": [1.0, -2.0, None],
        "app=x,pod=2": [-1.0, None, 1.0],
        "app=y,pod=1,team=old": [-5.0, None, -27.0],
    }
    assert binop("X - on (app) group_right (team) X", ONE, MANY) == {
        "app=x,pod=1,team=a": [1.0, -2.0, None],
        "app=x,pod=2,team=a": [-1.0, None, 1.0],
        "app=y,pod=1": [-5.0, None, -27.0],
    }


def test_group_right_comparison_keeps_the_left_value() -> None:
    assert binop("X > on (app) group_right X", ONE, MANY) == {
        "app=x,pod=1,team=old": [2.0, None, None],
        "app=x,pod=2": [None, None, 5.0],
    }
    assert binop("X > bool on (app) group_right X", ONE, MANY) == {
        "app=x,pod=1,team=old": [1.0, 0.0, None],
        "app=x,pod=2": [0.0, None, 1.0],
        "app=y,pod=1,team=old": [0.0, None, 0.0],
    }


def test_group_left_results_that_collide() -> None:
    many = matrix(("app=x,team=a", [1.0]), ("app=x,team=b", [2.0]))
    one = matrix(("app=x,team=c", [1.0]))
    with pytest.raises(BadRequest, match=f"^{AMBIGUOUS_GROUPING}$"):
        binop("X + on (app) group_left (team) X", many, one)
    # many-to-one without include labels never collides
    assert binop("X + on (app) group_left X", many, one) == {"app=x,team=a": [2.0], "app=x,team=b": [3.0]}


# --- and / or / unless -----------------------------------------------------------------------

SET_L = matrix(("app=x,pod=1", [1.0, 2.0, None]), ("app=y,pod=1", [3.0, None, 5.0]))
SET_R = matrix(("app=x,pod=9", [7.0, None, 7.0]), ("app=z", [8.0, 8.0, 8.0]))


@pytest.mark.parametrize(("query", "expected"), [
    ("X and on (app) X", {"app=x,pod=1": [1.0, None, None]}),
    ("X unless on (app) X", {"app=x,pod=1": [None, 2.0, None], "app=y,pod=1": [3.0, None, 5.0]}),
    ("X or on (app) X", {"app=x,pod=1": [1.0, 2.0, None], "app=y,pod=1": [3.0, None, 5.0],
                         "app=x,pod=9": [None, None, 7.0], "app=z": [8.0, 8.0, 8.0]}),
    ("X and X", {}),
    ("X and ignoring (pod) X", {"app=x,pod=1": [1.0, None, None]}),
    ("X unless X", {"app=x,pod=1": [1.0, 2.0, None], "app=y,pod=1": [3.0, None, 5.0]}),
    ("X and on () X", {"app=x,pod=1": [1.0, 2.0, None], "app=y,pod=1": [3.0, None, 5.0]}),
])
def test_set_operators(query: str, expected: dict) -> None:
    assert binop(query, SET_L, SET_R) == expected


def test_or_fills_a_series_from_the_right_where_the_left_has_no_point() -> None:
    left, right = matrix(("a=1", [1.0, None])), matrix(("a=1", [5.0, 6.0]))
    assert binop("X or X", left, right) == {"a=1": [1.0, 6.0]}


def test_set_operators_ignore_duplicates() -> None:
    right = matrix(("app=x,t=1", [1.0]), ("app=x,t=2", [1.0]))
    left = matrix(("app=x,pod=1", [4.0]), ("app=x,pod=2", [5.0]))
    assert binop("X and on (app) X", left, right) == {"app=x,pod=1": [4.0], "app=x,pod=2": [5.0]}


def test_empty_operands() -> None:
    empty = Matrix.empty(PODS.steps)
    assert binop("X + X", empty, PODS) == {}
    assert binop("X or X", empty, PODS) == rows(PODS)
    assert binop("X unless X", PODS, empty) == rows(PODS)
