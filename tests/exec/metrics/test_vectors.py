"""Vector aggregations and label_replace on hand-built matrices, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from lokiarrow.errors import BadRequest, ParseError
from lokiarrow.exec.metrics.series import Matrix
from lokiarrow.exec.metrics.vectors import SAME_LABELSET, aggregate, label_replace
from lokiarrow.logql import ast
from tests.exec.metrics.helpers import matrix, node, rows

NAN = float("nan")
INF = float("inf")

# Three steps; app=x has two pods that are not always both present.
PODS = matrix(
    ("app=x,pod=1", [1.0, 2.0, None]),
    ("app=x,pod=2", [5.0, None, 5.0]),
    ("app=y,pod=1", [10.0, 20.0, 30.0]),
)


def agg(query: str, m: Matrix = PODS) -> dict[str, list[float | str | None]]:
    expr = node(query)
    assert isinstance(expr, ast.VectorAggregation)
    return rows(aggregate(expr, m))


@pytest.mark.parametrize(("query", "expected"), [
    ("sum by (app) (X)", {"app=x": [6.0, 2.0, 5.0], "app=y": [10.0, 20.0, 30.0]}),
    ("sum without (pod) (X)", {"app=x": [6.0, 2.0, 5.0], "app=y": [10.0, 20.0, 30.0]}),
    ("sum(X)", {"": [16.0, 22.0, 35.0]}),
    ("sum by (missing) (X)", {"": [16.0, 22.0, 35.0]}),
    ("sum without (app, pod) (X)", {"": [16.0, 22.0, 35.0]}),
    ("sum by (pod) (X)", {"pod=1": [11.0, 22.0, 30.0], "pod=2": [5.0, None, 5.0]}),
    ("avg by (app) (X)", {"app=x": [3.0, 2.0, 5.0], "app=y": [10.0, 20.0, 30.0]}),
    ("min by (app) (X)", {"app=x": [1.0, 2.0, 5.0], "app=y": [10.0, 20.0, 30.0]}),
    ("max by (app) (X)", {"app=x": [5.0, 2.0, 5.0], "app=y": [10.0, 20.0, 30.0]}),
    ("count by (app) (X)", {"app=x": [2.0, 1.0, 1.0], "app=y": [1.0, 1.0, 1.0]}),
    ("count(X)", {"": [3.0, 2.0, 2.0]}),
    ("stdvar by (app) (X)", {"app=x": [4.0, 0.0, 0.0], "app=y": [0.0, 0.0, 0.0]}),
    ("stddev by (app) (X)", {"app=x": [2.0, 0.0, 0.0], "app=y": [0.0, 0.0, 0.0]}),
])
def test_aggregations(query: str, expected: dict) -> None:
    assert agg(query) == expected


def test_population_deviation_of_three() -> None:
    m = matrix(("i=1", [2.0]), ("i=2", [4.0]), ("i=3", [9.0]))
    assert agg("stdvar(X)", m)[""][0] == pytest.approx(26 / 3)
    assert agg("stddev(X)", m)[""][0] == pytest.approx(math.sqrt(26 / 3))


def test_nan_and_infinities() -> None:
    m = matrix(("i=1", [NAN, NAN, INF, 1e308, NAN]), ("i=2", [1.0, NAN, 1.0, 1e308, None]),
               ("i=3", [3.0, NAN, -INF, None, None]))
    # min/max skip NaN unless all are NaN; sum and avg propagate it
    assert agg("max(X)", m)[""] == [3.0, "NaN", INF, 1e308, "NaN"]
    assert agg("min(X)", m)[""] == [1.0, "NaN", -INF, 1e308, "NaN"]
    assert agg("sum(X)", m)[""] == ["NaN", "NaN", "NaN", INF, "NaN"]
    # avg of two huge finite values does not overflow; +Inf and -Inf give NaN
    assert agg("avg(X)", m)[""] == ["NaN", "NaN", "NaN", 1e308, "NaN"]
    # a group of one has no spread, whatever its value (Loki starts the running sum at 0)
    assert agg("stddev(X)", m)[""][4] == 0.0


def test_avg_of_an_infinity_and_finite_values() -> None:
    m = matrix(("i=1", [INF]), ("i=2", [1.0]), ("i=3", [2.0]))
    assert agg("avg(X)", m) == {"": [INF]}


# --- topk / bottomk --------------------------------------------------------------------------

def test_topk_per_group_and_step_keeps_full_labels() -> None:
    assert agg("topk by (app) (1, X)") == {
        "app=x,pod=1": [None, 2.0, None],
        "app=x,pod=2": [5.0, None, 5.0],
        "app=y,pod=1": [10.0, 20.0, 30.0],
    }


def test_topk_without_grouping_across_all_series() -> None:
    assert agg("topk(2, X)") == {
        "app=x,pod=1": [None, 2.0, None],
        "app=x,pod=2": [5.0, None, 5.0],
        "app=y,pod=1": [10.0, 20.0, 30.0],
    }
    assert agg("topk(1, X)") == {"app=y,pod=1": [10.0, 20.0, 30.0]}


def test_bottomk() -> None:
    assert agg("bottomk(1, X)") == {"app=x,pod=1": [1.0, 2.0, None], "app=x,pod=2": [None, None, 5.0]}
    assert agg("bottomk without (pod) (1, X)") == {
        "app=x,pod=1": [1.0, 2.0, None], "app=x,pod=2": [None, None, 5.0], "app=y,pod=1": [10.0, 20.0, 30.0]}


def test_topk_ties_go_to_the_labels_sorting_first() -> None:
    # series ids deliberately not in label order
    m = matrix(("i=2", [2.0]), ("i=3", [1.0]), ("i=1", [2.0]))
    assert agg("topk(1, X)", m) == {"i=1": [2.0]}
    assert agg("bottomk(2, X)", m) == {"i=1": [2.0], "i=3": [1.0]}


def test_topk_ranks_nan_last_both_ways() -> None:
    m = matrix(("i=1", [NAN]), ("i=2", [0.0]), ("i=3", [-1.0]))
    assert agg("topk(1, X)", m) == {"i=2": [0.0]}
    assert agg("bottomk(1, X)", m) == {"i=3": [-1.0]}
    assert agg("topk(3, X)", m) == {"i=1": ["NaN"], "i=2": [0.0], "i=3": [-1.0]}
    assert agg("bottomk(2, X)", m) == {"i=2": [0.0], "i=3": [-1.0]}


def test_topk_k_larger_than_series_and_below_one() -> None:
    assert agg("topk(10, X)") == rows(PODS)
    expr = ast.VectorAggregation("topk", ast.Literal(0.0), 0)
    assert aggregate(expr, PODS).points.height == 0


def test_approx_topk_is_exact_topk_without_grouping() -> None:
    assert agg("approx_topk(1, X)") == {"app=y,pod=1": [10.0, 20.0, 30.0]}


@pytest.mark.parametrize("op", ["sort", "sort_desc"])
def test_sort_leaves_series_alone(op: str) -> None:
    assert agg(f"{op}(X)") == rows(PODS)


def test_empty_input() -> None:
    empty = Matrix.empty(PODS.steps)
    assert agg("sum by (app) (X)", empty) == {}
    assert agg("topk(2, X)", empty) == {}


# --- label_replace ---------------------------------------------------------------------------

def replace(dst: str, replacement: str, src: str, regex: str, m: Matrix = PODS) -> dict:
    expr = node(f'label_replace(X, "{dst}", "{replacement}", "{src}", "{regex}")')
    assert isinstance(expr, ast.LabelReplace)
    return rows(label_replace(expr, m))


def test_label_replace_groups_and_names() -> None:
    m = matrix(("host=web-01.eu", [1.0]))
    assert replace("dc", "$2/${1}", "host", "([a-z]+)-[0-9]+\\\\.(.*)", m) == {"dc=eu/web,host=web-01.eu": [1.0]}
    assert replace("dc", "<$name>", "host", "(?P<name>[a-z]+)-.*", m) == {"dc=<web>,host=web-01.eu": [1.0]}


def test_label_replace_is_anchored() -> None:
    m = matrix(("host=web-01", [1.0]))
    assert replace("dc", "x", "host", "web", m) == {"host=web-01": [1.0]}


def test_label_replace_overwrites_and_removes() -> None:
    m = matrix(("a=1,b=2", [1.0]))
    assert replace("b", "new-$1", "a", "(.*)", m) == {"a=1,b=new-1": [1.0]}
    assert replace("b", "$1", "missing", "(.*)", m) == {"a=1": [1.0]}
    # a missing source label is the empty string, which `.*` matches
    assert replace("c", "set", "missing", ".*", m) == {"a=1,b=2,c=set": [1.0]}


def test_label_replace_go_expand_rules() -> None:
    m = matrix(("a=xy", [1.0]))
    # `$1y` names group "1y" (absent: empty), `$$` is a dollar, a malformed `$` stays, `$01` is no number
    assert replace("b", "[$1y][$$1][$-][${1}][$01]", "a", "(x)(y)", m) == {"a=xy,b=[][$1][$-][x][]": [1.0]}
    assert replace("b", "${1", "a", "(x)(y)", m) == {"a=xy,b=${1": [1.0]}


def test_label_replace_merges_series_without_overlap() -> None:
    m = matrix(("app=x,pod=1", [1.0, None]), ("app=x,pod=2", [None, 2.0]))
    assert replace("pod", "", "pod", ".*", m) == {"app=x": [1.0, 2.0]}


def test_label_replace_same_labelset_at_one_step() -> None:
    with pytest.raises(BadRequest, match=SAME_LABELSET):
        replace("pod", "", "pod", ".*")


def test_label_replace_empty_destination() -> None:
    with pytest.raises(BadRequest, match="invalid destination label name in label_replace"):
        label_replace(ast.LabelReplace(ast.Literal(0.0), "", "x", "a", ".*"), PODS)


def test_label_replace_invalid_regex_reads_as_loki_parse_error() -> None:
    with pytest.raises(ParseError) as err:
        label_replace(ast.LabelReplace(ast.Literal(0.0), "a", "x", "b", "(a"), PODS)
    assert err.value.message == ("parse error : invalid regex in label_replace: error parsing regexp: "
                                 "missing closing ): `^(?:(a)$`")
