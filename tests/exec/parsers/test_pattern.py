from __future__ import annotations

import pytest

from lokiarrow.errors import ParseError
from lokiarrow.exec.parsers.pattern import compile_pattern
from lokiarrow.logql import ast
from tests.exec.parsers.helpers import run, run_one

ACCESS = '10.0.0.1 - - [19/Jan/2026:22:00:00 +0000] "GET /api HTTP/1.1" 200 512'


@pytest.mark.parametrize(("pattern", "line", "existing", "want"), [
    ('<ip> - - [<_>] "<method> <path> <_>" <status> <size>', ACCESS, set(),
     {"ip": "10.0.0.1", "method": "GET", "path": "/api", "status": "200", "size": "512"}),
    ("<ip> - <_>", ACCESS, {"ip"}, {"ip_extracted": "10.0.0.1"}),
    # a leading literal must start the line
    ("[<a>]", ACCESS, set(), {}),
    ("10.<a> ", ACCESS, set(), {"a": "0.0.1"}),
    # a missing literal: the capture takes the rest and matching stops
    ("<a> | <b> x", "foo bar", set(), {"a": "foo bar"}),
    ("<a> <b> | <c>", "foo bar baz", set(), {"a": "foo", "b": "bar baz"}),
    # a final literal is only searched for
    ("<a> bar", "foo bar baz", set(), {"a": "foo"}),
    ("<_> bar <b>", "foo bar baz", set(), {"b": "baz"}),
    ("<a>", "", set(), {}),
    ("<a>=<b>", "k=v=w", set(), {"a": "k", "b": "v=w"}),
    ("<1a> <b>", "<1a> y", set(), {"b": "y"}),  # `<1a>` is a literal
    ("<a>é<b>", "xéy", set(), {"a": "x", "b": "y"}),
])
def test_pattern(pattern: str, line: str, existing: set[str], want: dict[str, str]) -> None:
    assert run_one(ast.PatternParser(pattern), line, existing) == want


def test_batch() -> None:
    got = run(ast.PatternParser("<a> <b>"), ["1 2", "x", None, "p q r"])
    assert got == [{"a": "1", "b": "2"}, {"a": "x"}, {}, {"a": "p", "b": "q r"}]


@pytest.mark.parametrize(("pattern", "error"), [
    ("foo", "at least one capture is required"),
    ("<_> foo", "at least one capture is required"),
    ("<a><b>", "found consecutive capture '<a><b>': invalid expression"),
    ("<a> <a>", "duplicate capture name (a): invalid expression"),
])
def test_pattern_errors(pattern: str, error: str) -> None:
    with pytest.raises(ParseError) as exc:
        compile_pattern(pattern)
    assert exc.value.msg == error
