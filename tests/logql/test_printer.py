"""The printer: canonical text as Loki prints it, and parse(print(q)) == parse(q) for any query."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr
from lokiarrow.logql.printer import _PRINTERS, format_expr, go_duration, go_float_f, go_float_v
from lokiarrow.logql.tokens import FUNCTION_TOKENS, TOKENS
from lokiarrow.model import Matcher

IDENTITY = [line for line in (Path(__file__).parent / "identity.logql").read_text().splitlines()
            if line and not line.startswith("#")]


@pytest.mark.parametrize("query", IDENTITY)
def test_identity(query: str) -> None:
    assert format_expr(parse_expr(query)) == query


@pytest.mark.parametrize(("query", "canonical"), [
    ('{ app = "foo" , env =~ `a|b` }', '{app="foo", env=~"a|b"}'),
    ('{app="foo"}|="x"!="y"', '{app="foo"} |= "x" != "y"'),
    ('{app="foo"} != "a" or "b"', '{app="foo"} != "a" != "b"'),
    ('{app="foo"} # a comment', '{app="foo"}'),
    ('{app="foo"}\n  |= "x"  // go comment\n', '{app="foo"} |= "x"'),
    ('sum(rate({app="foo"}[5m])) by (app)', 'sum by (app)(rate({app="foo"}[5m]))'),
    ('sum by () (rate({app="foo"}[5m]))', 'sum(rate({app="foo"}[5m]))'),
    ('count_over_time(({app="foo"} |= "x")[5m])', 'count_over_time({app="foo"} |= "x"[5m])'),
    ('count_over_time({app="foo"}[5m] |= "x")', 'count_over_time({app="foo"} |= "x"[5m])'),
    ('{app="foo"} | json | a="b", c="d" or e="f"', '{app="foo"} | json | ( a="b" , ( c="d" or e="f" ) )'),
    ('{app="foo"} | json | a="b" and c="d" or e="f"', '{app="foo"} | json | ( ( a="b" , c="d" ) or e="f" )'),
    ('1 + 2 * 3', "(1 + (2 * 3))"),
    ("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"),
    ("1 - 2 - 3", "((1 - 2) - 3)"),
    ("1000000", "1e+06"),
    ("0.00001", "1e-05"),
    ("123456", "123456"),
])
def test_canonical_form(query: str, canonical: str) -> None:
    assert format_expr(parse_expr(query)) == canonical


def test_every_node_has_a_printer() -> None:
    nodes = [cls for cls in vars(ast).values()
             if isinstance(cls, type) and issubclass(cls, ast.Node) and cls not in (ast.Node, ast.Expr, ast.Stage, ast.LabelFilter)]
    assert sorted(cls.__name__ for cls in nodes if cls not in _PRINTERS) == []


@pytest.mark.parametrize(("ns", "text"), [(0, "0s"), (5 * 60 * 10**9, "5m0s"), (3600 * 10**9, "1h0m0s"),
                                          (1_500_000_000, "1.5s"), (250_000_000, "250ms"), (1_500, "1.5µs"),
                                          (90 * 10**9, "1m30s"), (-5 * 10**9, "-5s")])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


@pytest.mark.parametrize(("value", "v", "f"), [(1.0, "1", "1"), (0.5, "0.5", "0.5"), (1e6, "1e+06", "1000000"),
                                               (1234567.0, "1.234567e+06", "1234567"), (1e-5, "1e-05", "0.00001"),
                                               (-2.5, "-2.5", "-2.5"), (1e21, "1e+21", "1000000000000000000000")])
def test_go_floats(value: float, v: str, f: str) -> None:
    assert (go_float_v(value), go_float_f(value)) == (v, f)


# --- properties ----------------------------------------------------------------------------------

KEYWORDS = set(TOKENS) | set(FUNCTION_TOKENS)
names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda n: n.lower() not in KEYWORDS)
values = st.text(max_size=20)
tricky = st.sampled_from(['"', "\\", "\n", "\t", "`", "\x00", "\x7f", "é", "☃", "\U0001f600", "\u200b", "{}", "or"])
label_values = st.one_of(values, st.lists(st.one_of(values, tricky), max_size=6).map("".join))


@st.composite
def selectors(draw: st.DrawFn) -> ast.LogExpr:
    first = Matcher(draw(names), "=", draw(label_values.filter(bool)))
    rest = draw(st.lists(st.builds(Matcher, names, st.sampled_from(["=", "!="]), label_values), max_size=4))
    stages = draw(st.lists(st.builds(lambda op, vs: ast.LineFilter(op, tuple(vs)),
                                     st.sampled_from(["|=", "|>"]), st.lists(label_values, min_size=1, max_size=3)),
                           max_size=3))
    return ast.LogExpr((first, *rest), tuple(stages))


@settings(max_examples=300)
@given(selectors())
def test_selectors_round_trip(expr: ast.LogExpr) -> None:
    text = format_expr(expr)
    assert parse_expr(text) == expr
    assert format_expr(parse_expr(text)) == text
