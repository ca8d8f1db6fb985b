"""The lexer: Go string escapes, comments, numbers, durations and the positions Loki reports."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lokiarrow.errors import ParseError
from lokiarrow.logql.quoting import unquote
from lokiarrow.logql.tokens import Lexer, Token
from lokiarrow.model import go_quote


def lex(text: str) -> list[Token]:
    lexer, tokens = Lexer(text), []
    while True:
        tokens.append(lexer.next())
        if tokens[-1].kind == "$end":
            return tokens


def kinds(text: str) -> list[str]:
    return [t.kind for t in lex(text)][:-1]


@pytest.mark.parametrize(("literal", "value"), [
    (r'"plain"', "plain"),
    (r'"tab\there"', "tab\there"),
    (r'"nl\n cr\r bell\a bs\b ff\f vt\v"', "nl\n cr\r bell\a bs\b ff\f vt\v"),
    (r'"quote\" backslash\\"', 'quote" backslash\\'),
    (r'"\x41\u00e9\U0001F600"', "Aé\U0001f600"),
    (r'"\101\060"', "A0"),
    (r'"\xff"', "\udcff"),  # a raw byte that is not UTF-8, kept as a surrogate escape
    (r'"ünïcödé ☃"', "ünïcödé ☃"),
    (r"`raw \n \ string`", r"raw \n \ string"),
    ("`multi\nline`", "multi\nline"),
])
def test_string_escapes(literal: str, value: str) -> None:
    (token,) = lex(literal)[:-1]
    assert (token.kind, token.text) == ("STRING", value)


@pytest.mark.parametrize(("text", "message"), [
    ('{a="b', "parse error at line 1, col 4: literal not terminated"),
    ('{a="b\nc"}', "parse error at line 1, col 4: literal not terminated"),
    ('{a="\\q"}', "parse error at line 1, col 4: invalid char escape"),
    ('{a="\\x4"}', "parse error at line 1, col 4: invalid char escape"),
    ('{a="\\400"}', "parse error at line 1, col 4: invalid syntax"),
    ("{a=`b}", "parse error at line 1, col 4: literal not terminated"),
    ("{a='bc'}", "parse error at line 1, col 4: invalid char literal"),
    ("x > 09", "parse error at line 1, col 5: invalid digit '9' in octal literal"),
    ("/* open", "parse error at line 1, col 1: comment not terminated"),
])
def test_lexer_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        lex(text)
    assert info.value.message == message


def test_comments_and_whitespace() -> None:
    assert kinds('{a="b"} # |= "x"\n |= "y" // z\n /* w */') == [
        "OPEN_BRACE", "IDENTIFIER", "EQ", "STRING", "CLOSE_BRACE", "PIPE_EXACT", "STRING"]
    assert kinds("#only a comment") == []


@pytest.mark.parametrize(("text", "expected"), [
    ("5m", [("DURATION", 300 * 10**9)]),
    ("1h30m", [("DURATION", 5400 * 10**9)]),
    ("1.5s", [("DURATION", 1_500_000_000)]),
    ("-5m", [("DURATION", -300 * 10**9)]),
    ("20MB", [("BYTES", 20_000_000)]),
    ("1KiB", [("BYTES", 1024)]),
    ("5", [("NUMBER", 0)]),
    ("5 x", [("NUMBER", 0), ("IDENTIFIER", 0)]),
    ("0x10", [("NUMBER", 0)]),
    ("[5m]", [("RANGE", 300 * 10**9)]),
    ("--strict", [("FUNCTION_FLAG", 0)]),
])
def test_numbers_durations_bytes(text: str, expected: list[tuple[str, int]]) -> None:
    assert [(t.kind, t.value) for t in lex(text)[:-1]] == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("rate(", ["RATE", "OPEN_PARENTHESIS"]),
    ("rate", ["IDENTIFIER"]),
    ("sum by (a) (", ["SUM", "BY", "OPEN_PARENTHESIS", "IDENTIFIER", "CLOSE_PARENTHESIS", "OPEN_PARENTHESIS"]),
    ("sum by a", ["IDENTIFIER", "BY", "IDENTIFIER"]),
    ("ip", ["IDENTIFIER"]),
    ("JSON Or", ["JSON", "OR"]),
    ("|= |~ |> != !~ !> =~ == >= <= | = > <", ["PIPE_EXACT", "PIPE_MATCH", "PIPE_PATTERN", "NEQ", "NRE", "NPA",
                                               "RE", "CMP_EQ", "GTE", "LTE", "PIPE", "EQ", "GT", "LT"]),
])
def test_keywords_and_functions(text: str, expected: list[str]) -> None:
    assert kinds(text) == expected


def test_positions_follow_loki() -> None:
    """Line and column of each token; 0 for the line once the lexer read past the token's first rune."""
    tokens = lex('{a="b"}\n |= "x" | y > 5s')
    assert [(t.kind, t.line, t.col) for t in tokens] == [
        ("OPEN_BRACE", 1, 1), ("IDENTIFIER", 1, 2), ("EQ", 1, 3), ("STRING", 1, 4), ("CLOSE_BRACE", 1, 7),
        ("PIPE_EXACT", 0, 2), ("STRING", 2, 5), ("PIPE", 2, 9), ("IDENTIFIER", 2, 11), ("GT", 2, 13),
        ("DURATION", 0, 15), ("$end", 2, 17)]


@given(st.text())
def test_quote_then_lex_gives_the_string_back(value: str) -> None:
    (token,) = lex(go_quote(value))[:-1]
    assert token.text == value
    assert unquote(go_quote(value)) == value
