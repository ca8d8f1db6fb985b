"""The parser: trees for valid queries, and Loki's exact error text for invalid ones."""

from __future__ import annotations

import pytest

from lokiarrow.errors import BadRequest, ParseError
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr, parse_matchers
from lokiarrow.logql.printer import format_expr
from lokiarrow.model import Matcher

EMPTY = ("parse error : queries require at least one regexp or equality matcher that does not have an "
         "empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will")
APP = Matcher("app", "=", "foo")
M5 = 5 * 60 * 10**9


def sel(*stages: ast.Stage) -> ast.LogExpr:
    return ast.LogExpr((APP,), stages)


@pytest.mark.parametrize(("query", "tree"), [
    ('{app="foo"}', sel()),
    ('{app="foo", env=~"a|b", pod!="x", ns!~"k.*"}', ast.LogExpr((
        APP, Matcher("env", "=~", "a|b"), Matcher("pod", "!=", "x"), Matcher("ns", "!~", "k.*")))),
    ('{app="foo"} |= "x" != "y"', sel(ast.LineFilter("|=", ("x",)), ast.LineFilter("!=", ("y",)))),
    ('{app="foo"} |~ "a" or "b"', sel(ast.LineFilter("|~", ("a", "b")))),
    ('{app="foo"} !~ "a" or "b"', sel(ast.LineFilter("!~", ("a",)), ast.LineFilter("!~", ("b",)))),
    ('{app="foo"} |> "<_> a" !> "b"', sel(ast.LineFilter("|>", ("<_> a",)), ast.LineFilter("!>", ("b",)))),
    ('{app="foo"} |= ip("10.0.0.0/8") or ip("::1")', sel(ast.LineFilter("|=", ("10.0.0.0/8", "::1"), ip=True))),
    ('({app="foo"})', sel()),
    ('{app="foo"} | json | logfmt --keep-empty a, b="c"', sel(
        ast.JsonParser(), ast.LogfmtParser(keep_empty=True, extractions=(
            ast.LabelExtraction("a", "a"), ast.LabelExtraction("b", "c"))))),
    ('{app="foo"} | regexp "(?P<x>.)" | pattern "<x>" | unpack', sel(
        ast.RegexpParser("(?P<x>.)"), ast.PatternParser("<x>"), ast.UnpackParser())),
    ('{app="foo"} | a="b" or c=~"d" and e>5.5', sel(ast.LabelFilterStage(ast.OrFilter(
        ast.LabelMatch(Matcher("a", "=", "b")),
        ast.AndFilter(ast.LabelMatch(Matcher("c", "=~", "d")), ast.NumberFilter("e", ">", 5.5)))))),
    ('{app="foo"} | d>=5s, s<1KB x=ip("1.2.3.4")', sel(ast.LabelFilterStage(ast.AndFilter(
        ast.DurationFilter("d", ">=", 5 * 10**9),
        ast.AndFilter(ast.BytesFilter("s", "<", 1000), ast.IpFilter("x", "=", "1.2.3.4")))))),
    ('{app="foo"} | n == -1', sel(ast.LabelFilterStage(ast.NumberFilter("n", "==", -1.0)))),
    ('{app="foo"} | line_format "{{.a}}" | label_format a=b, c="{{.d}}" | decolorize', sel(
        ast.LineFormat("{{.a}}"), ast.LabelFormat((ast.LabelFmt("a", "b", True), ast.LabelFmt("c", "{{.d}}", False))),
        ast.Decolorize())),
    ('{app="foo"} | drop a, b="c" | keep d', sel(
        ast.DropLabels(("a", Matcher("b", "=", "c"))), ast.KeepLabels(("d",)))),
    ('rate({app="foo"}[5m])', ast.RangeAggregation("rate", ast.LogRange(sel(), M5))),
    ('count_over_time({app="foo"} |= "x" [5m] offset 1h)', ast.RangeAggregation(
        "count_over_time", ast.LogRange(sel(ast.LineFilter("|=", ("x",))), M5, 3600 * 10**9))),
    ('quantile_over_time(0.5, {app="foo"} | unwrap duration(d) | d > 1 [5m]) by (a)', ast.RangeAggregation(
        "quantile_over_time",
        ast.LogRange(sel(), M5, unwrap=ast.Unwrap("d", "duration", (ast.NumberFilter("d", ">", 1.0),))),
        0.5, ast.Grouping(("a",)))),
    ('topk(3, sum without (a) (rate({app="foo"}[5m])))', ast.VectorAggregation(
        "topk", ast.VectorAggregation("sum", ast.RangeAggregation("rate", ast.LogRange(sel(), M5)),
                                      grouping=ast.Grouping(("a",), without=True)), 3)),
    ('sum(rate({app="foo"}[5m])) / on (a) group_left (b) sum(rate({app="foo"}[5m])) > bool 1', ast.BinaryOp(
        ">",
        ast.BinaryOp("/", ast.VectorAggregation("sum", ast.RangeAggregation("rate", ast.LogRange(sel(), M5))),
                     ast.VectorAggregation("sum", ast.RangeAggregation("rate", ast.LogRange(sel(), M5))),
                     matching=ast.VectorMatching(True, ("a",), "many-to-one", ("b",))),
        ast.Literal(1.0), return_bool=True)),
    ("vector(1) + -2", ast.BinaryOp("+", ast.Vector(1.0), ast.Literal(-2.0))),
    ("vector(1) + ignoring () vector(2)", ast.BinaryOp("+", ast.Vector(1.0), ast.Vector(2.0))),
    ('label_replace(vector(1), "a", "$1", "b", "(.*)")', ast.LabelReplace(ast.Vector(1.0), "a", "$1", "b", "(.*)")),
])
def test_trees(query: str, tree: ast.Expr) -> None:
    parsed = parse_expr(query)
    assert parsed == tree
    assert parse_expr(format_expr(parsed)) == parsed


def test_positions() -> None:
    expr = parse_expr('sum(rate({app="foo"} |= "x" [5m]))')
    assert isinstance(expr, ast.VectorAggregation) and isinstance(expr.expr, ast.RangeAggregation)
    assert (expr.pos, expr.expr.pos, expr.expr.range.selector.pos, expr.expr.range.selector.stages[0].pos) == (0, 4, 9, 21)


# Texts a real Loki answered (status 400); then texts its grammar gives at other points.
ERRORS = [
    ('app="bff"}', "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"),
    ('{app=~"("}', "parse error : error parsing regexp: missing closing ): `(`"),
    ("{}", EMPTY),
    ('{app="bff"} |= ', "parse error at line 1, col 16: syntax error: unexpected $end, expecting STRING or ip"),
    ('count_over_time({app="bff"})', "parse error at line 1, col 28: syntax error: unexpected )"),
    ('sum by app (count_over_time({app="bff"}[5m]))', "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"),
    ('rate({app="bff"}[5x])', 'parse error at line 0, col 17: unknown unit "x" in duration "5x"'),
    ('{app="bff"} | unknown_parser', "parse error at line 1, col 29: syntax error: unexpected $end"),
    ('topk(x, count_over_time({app="bff"}[5m]))', "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER"),
    ('sum(count_over_time({app="bff"}[5m]) by (app)', "parse error at line 1, col 46: syntax error: unexpected $end"),
    ('sum_over_time({app="bff"} | json | unwrap status [5m]) by (level)',
     "parse error : grouping not allowed for sum_over_time aggregation"),
    ('sum by (pod) (count_over_time({app="auth"} | json | unwrap http_status | __error__="" [10m]))',
     "parse error : invalid aggregation count_over_time with unwrap"),
    # from here on: derived from Loki's grammar and lexer
    ('{app="bff"', "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,"),
    ("{app}", "parse error at line 1, col 5: syntax error: unexpected }, expecting = or =~ or !~ or !="),
    ('{app="a",}', "parse error at line 1, col 10: syntax error: unexpected }, expecting IDENTIFIER"),
    ("{app=foo}", "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting STRING"),
    ("{by=\"x\"}", "parse error at line 1, col 2: syntax error: unexpected by, expecting IDENTIFIER or }"),
    ('{app="bff"}\n  |= ', "parse error at line 2, col 6: syntax error: unexpected $end, expecting STRING or ip"),
    ('{app="bff"} "x"', "parse error at line 1, col 13: syntax error: unexpected STRING"),
    ('{app="bff"} |= "a" or', "parse error at line 1, col 22: syntax error: unexpected $end, expecting STRING or ip"),
    ('{app="bff"} | regexp', "parse error at line 1, col 21: syntax error: unexpected $end, expecting STRING"),
    ('{app="bff"} | label_format a', "parse error at line 1, col 29: syntax error: unexpected $end, expecting ="),
    ('{app="bff"} | json a=b', "parse error at line 1, col 22: syntax error: unexpected IDENTIFIER, expecting STRING"),
    ('{app="bff"} | a = "b" or', "parse error at line 1, col 25: syntax error: unexpected $end, expecting IDENTIFIER or ("),
    ('{app="bff"} | regexp "(.)"', "parse error : invalid regexp parser: at least one named capture must be supplied"),
    ('{app="bff"} |~ "("', "parse error : error parsing regexp: missing closing ): `(`"),
    ('{app="bff"} | unwrap x', "parse error at line 1, col 15: syntax error: unexpected unwrap"),
    ('min({app="bff"}[5m])', "parse error at line 0, col 16: syntax error: unexpected RANGE"),
    ('stddev({app="bff"})', "parse error at line 1, col 19: syntax error: unexpected )"),
    ('rate({app="bff"}[5m)', "parse error at line 0, col 17: missing closing ']' in duration"),
    ('rate({app="bff"}[1.5m])', 'parse error at line 0, col 17: unknown unit "." in duration "1.5m"'),
    ('rate({app="bff"}[5s1m])', 'parse error at line 0, col 17: not a valid duration string: "5s1m"'),
    ('rate(x, {app="bff"}[5m])', "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting NUMBER or { or ("),
    ('rate({app="bff"}[5m] x)', "parse error at line 1, col 22: syntax error: unexpected IDENTIFIER, expecting )"),
    ('rate({app="bff"} | unwrap x)', "parse error at line 1, col 28: syntax error: unexpected ), expecting RANGE or |"),
    ('rate({app="bff"} offset 5m)', "parse error at line 1, col 18: syntax error: unexpected offset"),
    ('count without (rate({app="bff"}[5m]))', "parse error at line 1, col 16: syntax error: unexpected RATE, expecting IDENTIFIER or )"),
    ("vector(x)", "parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting NUMBER"),
    ('label_replace(vector(1), "a")', "parse error at line 1, col 29: syntax error: unexpected ), expecting ,"),
    ("bool 1 > 1", "parse error at line 1, col 1: syntax error: unexpected bool"),
    ("-x", "parse error at line 1, col 2: syntax error: unexpected IDENTIFIER, expecting NUMBER"),
    ("1 +", "parse error at line 1, col 4: syntax error: unexpected $end"),
    ("", "parse error : syntax error: unexpected $end"),
    ('#{app="foo"} | json', "parse error at line 1, col 20: syntax error: unexpected $end"),
    ('{app=~".*"}', EMPTY),
    ('{app="", env!="x"}', EMPTY),
    ('sum(rate({app=~".*"}[5m]))', EMPTY),
    ('topk(rate({app="bff"}[5m]))', "parse error : parameter required for operation topk"),
    ('topk(0, rate({app="bff"}[5m]))', "parse error : invalid parameter (must be greater than 0) topk(0"),
    ('sum(3, rate({app="bff"}[5m]))', "parse error : unsupported parameter for operation sum(3,"),
    ('rate(3, {app="bff"}[5m])', "parse error : parameter 3 not supported for operation rate"),
    ('quantile_over_time({app="bff"} | unwrap x [5m])', "parse error : parameter required for operation quantile_over_time"),
    ('sum_over_time({app="bff"}[5m])', "parse error : invalid aggregation sum_over_time without unwrap"),
    ('{app="bff"} + 1', "parse error : unexpected type for left leg of binary operation (+): *syntax.MatchersExpr"),
    ('1 - {app="bff"} |= "x"', "parse error : unexpected type for right leg of binary operation (-): *syntax.PipelineExpr"),
    ('vector(1) or 1', "parse error : unexpected literal for right leg of logical/set binary operation (or): 1.000000"),
    ("1 + 0x10", 'parse error : unable to parse literal as a float: strconv.ParseFloat: parsing "0x10": invalid syntax'),
    ('label_replace(vector(1), "a", "b", "c", "\\\\q")',
     "parse error : invalid regex in label_replace: error parsing regexp: invalid escape sequence: `\\q`"),
]


@pytest.mark.parametrize(("query", "message"), ERRORS)
def test_errors(query: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_expr(query)
    assert info.value.message == message
    assert info.value.status == 400


def test_mixed_ip_alternatives_are_refused_not_misread() -> None:
    with pytest.raises(BadRequest, match="not supported"):
        parse_expr('{app="foo"} |= "a" or ip("b")')


@pytest.mark.parametrize(("text", "validate", "expected"), [
    ('{app="foo"}', True, (APP,)),
    ('{app="foo", env=~"a|b"}', True, (APP, Matcher("env", "=~", "a|b"))),
    ('{app=~".*"}', False, (Matcher("app", "=~", ".*"),)),
    ("{}", False, ()),
])
def test_parse_matchers(text: str, validate: bool, expected: tuple[Matcher, ...]) -> None:
    assert parse_matchers(text, validate=validate) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("{}", EMPTY),
    ('{app=~".*"}', EMPTY),
    ('{app="foo"} |= "x"', "only label matchers are supported"),
    ('rate({app="foo"}[5m])', "only label matchers are supported"),
    ('{app="foo"', "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,"),
])
def test_parse_matchers_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_matchers(text)
    assert info.value.message == message
