"""`| logfmt`: Loki's parser tests' cases (plain and `--strict`), keep-empty and parameters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.errors import ParseError
from lokiarrow.exec.parsers.logfmt import _pairs, parse_key, scan
from lokiarrow.logql import ast
from tests.exec.parsers.helpers import run, run_one

ERR = "LogfmtParserErr"

# (name, line, existing, labels, labels added by --strict)
CASES = [
    ("plain", "buzz=foo bar=baz", set(), {"buzz": "foo", "bar": "baz"}, {}),
    ("utf8 error rune", "buzz=foo bar=\ufffdf", set(), {"bar": " f", "buzz": "foo"}, {}),
    ("key alone", "buzz bar=foo", {"foo"}, {"bar": "foo"}, {}),
    ("quoted", 'foobar="foo bar"', set(), {"foobar": "foo bar"}, {}),
    ("escaped control chars", r'foobar="foo\nbar\tbaz"', set(), {"foobar": "foo\nbar\tbaz"}, {}),
    ("literal control chars", 'foobar="foo\nbar\tbaz"', set(), {"foobar": "foo\nbar\tbaz"}, {}),
    ("escaped backslash", r'foobar="foo ba\\r baz"', set(), {"foobar": r"foo ba\r baz"}, {}),
    ("newline and escaped backslash", 'foobar="foo bar\nb\\\\az"', set(), {"foobar": "foo bar\nb\\az"}, {}),
    ("unicode escapes", r'a="\u00e9\ud83d\ude00\ud800x" b="\'"', set(), {"a": "é😀 x", "b": "'"}, {}),
    ("two pairs", 'foobar="foo bar" latency=10ms', {"foo"}, {"foobar": "foo bar", "latency": "10ms"}, {}),
    ("first of two equal keys wins", 'foobar="foo bar" foobar=10ms', set(), {"foobar": "foo bar"}, {}),
    ("collision", 'foo="foo bar" foobar=10ms', {"foo"}, {"foo_extracted": "foo bar", "foobar": "10ms"}, {}),
    ("invalid key names", 'foo="foo bar" foo.bar=10ms test-dash=foo 1a=2', {"foo"},
     {"foo_extracted": "foo bar", "foo_bar": "10ms", "test_dash": "foo", "_1a": "2"}, {}),
    ("empty line", "", set(), {}, {}),
    ("blank line", " \t ", set(), {}, {}),
    ("empty key", 'foo="foo bar" =notkey bar=10ms', {"foo"}, {"foo_extracted": "foo bar", "bar": "10ms"},
     {"__error__": ERR, "__error_details__": "logfmt syntax error at pos 15 : unexpected '='"}),
    ("error rune in key", 'foo="foo bar" b\ufffdr=10ms', {"foo"}, {"foo_extracted": "foo bar"},
     {"__error__": ERR, "__error_details__": "logfmt syntax error at pos 20 : invalid key"}),
    ("double quote in key", 'foo="foo bar" bu"zz=10ms', {"foo"}, {"foo_extracted": "foo bar"},
     {"__error__": ERR, "__error_details__": "logfmt syntax error at pos 17 : unexpected '\"'"}),
    ("= in value", 'bar=bu=zz foo="foo bar"', {"foo"}, {"foo_extracted": "foo bar"},
     {"__error__": ERR, "__error_details__": "logfmt syntax error at pos 7 : unexpected '='"}),
    ("quote in value", 'a=b"c d=1', set(), {"d": "1"},
     {"__error__": ERR, "__error_details__": "logfmt syntax error at pos 4 : unexpected '\"'"}),
    ("unterminated quote", 'a=1 k="unterminated', set(), {"a": "1"},
     {"__error__": ERR, "__error_details__": "logfmt syntax error at pos 20 : unterminated quoted value"}),
    ("invalid escape, pos in bytes", 'ü=1 x="\\q" y=2', set(), {"_": "1", "y": "2"},
     {"__error__": ERR, "__error_details__": "logfmt syntax error at pos 12 : invalid quoted value"}),
    ("no space after a quoted value", 'a="x"b=2', set(), {"a": "x", "b": "2"}, {}),
]


@pytest.mark.parametrize(("name", "line", "existing", "want", "strict_extra"), CASES, ids=[c[0] for c in CASES])
def test_logfmt(name: str, line: str, existing: set[str], want: dict[str, str], strict_extra: dict[str, str]) -> None:
    assert run_one(ast.LogfmtParser(), line, existing) == want
    if strict_extra:  # --strict stops at the fault: only the labels before it, and the error
        strict = run_one(ast.LogfmtParser(strict=True), line, existing)
        assert {k: v for k, v in strict.items() if not k.startswith("__")}.items() <= want.items()
        assert {k: v for k, v in strict.items() if k.startswith("__")} == strict_extra
    else:
        assert run_one(ast.LogfmtParser(strict=True), line, existing) == want


def test_strict_keeps_labels_before_the_fault_only() -> None:
    assert run_one(ast.LogfmtParser(strict=True), "a=1 b=x=y c=3") == {
        "a": "1", "__error__": ERR, "__error_details__": "logfmt syntax error at pos 8 : unexpected '='"}


@pytest.mark.parametrize(("line", "plain", "keep"), [
    ("a= b c=1", {"c": "1"}, {"a": "", "b": "", "c": "1"}),
    ('a="" b=2', {"b": "2"}, {"a": "", "b": "2"}),
    ("a=x a= ", {"a": "x"}, {"a": "x"}),
    ("a= a=x", {"a": "x"}, {"a": ""}),  # an empty value counts as extracted only when kept
])
def test_keep_empty(line: str, plain: dict[str, str], keep: dict[str, str]) -> None:
    assert run_one(ast.LogfmtParser(), line) == plain
    assert run_one(ast.LogfmtParser(keep_empty=True), line) == keep


def _selected(*pairs: tuple[str, str], strict: bool = False) -> ast.LogfmtParser:
    return ast.LogfmtParser(strict=strict, extractions=tuple(ast.LabelExtraction(n, e) for n, e in pairs))


@pytest.mark.parametrize(("node", "line", "existing", "want"), [
    (_selected(("lvl", "level")), "level=info msg=x", set(), {"lvl": "info"}),
    (_selected(("lvl", "level")), "msg=x", set(), {"lvl": ""}),
    (_selected(("lvl", "level")), "", set(), {"lvl": ""}),
    (_selected(("a", "a")), "a=1 a=2", set(), {"a": "2"}),  # the last wins with parameters
    (_selected(("a", "a")), "a=1 a=", set(), {"a": ""}),
    (_selected(("a", "a")), "a=\ufffd", set(), {"a": ""}),
    (_selected(("app", "app")), "app=x", {"app"}, {"app_extracted": "x"}),
    (_selected(("app", "app"), ("b", "b")), "app=x app=y b=1", {"app"}, {"app_extracted": "x", "b": ""}),
    (_selected(("app", "app")), "other=1", {"app"}, {}),
    (_selected(("a", "b")), "a=1 b=2", set(), {"a": "2"}),
    # Loki compares the sanitised key (`a_b`) with the expression as written (`a.b`): no match
    (_selected(("ab", '"a.b"')), "a.b=1", set(), {"ab": ""}),
    (_selected(("ab", '"a_b"')), "a.b=1", set(), {"ab": "1"}),
    (_selected(("a", "a"), strict=True), "a=1 =x a=2", set(),
     {"a": "1", "__error__": ERR, "__error_details__": "logfmt syntax error at pos 5 : unexpected '='"}),
    (_selected(("a", "a")), "a=1 =x a=2", set(), {"a": "2"}),
])
def test_parameters(node: ast.LogfmtParser, line: str, existing: set[str], want: dict[str, str]) -> None:
    assert run_one(node, line, existing) == want


def test_parse_key() -> None:
    assert parse_key("a") == "a"
    assert parse_key(' "a.b" ') == "a.b"
    with pytest.raises(ParseError):
        parse_key("field with space")


def test_batch_matches_single_lines() -> None:
    lines = [c[1] for c in CASES]
    for node in (ast.LogfmtParser(), ast.LogfmtParser(strict=True), ast.LogfmtParser(keep_empty=True)):
        assert run(node, [*lines, None]) == [run_one(node, line) for line in lines] + [{}]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(['a', 'b', '=', '"', '\\', ' ', '\t', 'é', '\ufffd', 'u', '0', 'n']), max_size=16))
def test_fast_path_agrees_with_decoder(line: str) -> None:
    fast, fast_error = _pairs(line)
    slow, slow_error = scan(line)
    assert fast_error == slow_error or str(fast_error) == str(slow_error)
    if fast_error is None and slow_error is None:
        assert [p for p in fast if p is not None] == [p for p in slow if p is not None]
