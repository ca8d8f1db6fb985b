"""Push-request label text (`{a="b", c="d"}`), parsed as Loki's `syntax.ParseLabels` does.

Loki does not use its LogQL parser here: it calls Prometheus' `ParseMetric`, so the accepted syntax
(an optional metric name, `'single'` and `` `raw` `` quotes, quoted label names, a trailing comma)
and the error texts (`1:4: parse error: unterminated quoted string`) are Prometheus'. Labels with
an empty value are dropped, as Loki does before hashing a stream.

Steps: 1. a small state lexer (outside braces / inside braces) yields items with byte offsets;
2. a recursive descent over `metric_identifier? ('{' items '}')?` reports the first error with
the message Prometheus' error productions give at that point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lokiarrow.errors import BadRequest, ParseError
from lokiarrow.logql.quoting import quote_rune, unicode_rune, unquote
from lokiarrow.model import go_quote

MAX_LABELS_SIZE = (1 << 24) - 1  # Prometheus' label structures panic beyond this

_OPERATOR_WORDS = frozenset({"and", "or", "unless", "atan2"})
_AGGREGATOR_WORDS = frozenset({"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk",
                               "bottomk", "count_values", "quantile", "limitk", "limit_ratio"})
_KEYWORD_WORDS = frozenset({"offset", "smoothed", "anchored", "by", "without", "on", "ignoring", "group_left",
                            "group_right", "fill", "fill_left", "fill_right", "bool"})
_PREPROCESSOR_WORDS = frozenset({"start", "end", "step", "range", "max_of", "min_of"})
# Keywords the grammar refuses as a metric name (`metric_identifier` lists every other one).
_NOT_METRIC_NAMES = frozenset({"atan2", "on", "ignoring", "group_left", "group_right", "bool"})
_SINGLE_OPERATORS = {"*": "*", "/": "/", "%": "%", "+": "+", "-": "-", "^": "^", "@": "@"}
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F_]+|[0-9_]*\.?[0-9_]*(?:[eE][+-]?[0-9]+)?)")
_DURATION = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_SPACE = " \t\n\r"


class MetricParseError(ParseError):
    """A Prometheus parse error: `L:C: parse error: msg`, column counted in bytes."""

    def __init__(self, msg: str, text: str, pos: int) -> None:
        super().__init__(msg)
        before = text[:pos]
        line = before.count("\n") + 1
        col = len(before[before.rfind("\n") + 1:].encode("utf-8", "surrogateescape")) + 1
        self.message = f"{line}:{col}: parse error: {msg}"
        self.args = (self.message,)


@dataclass(frozen=True)
class _Item:
    """One lexer item: kind is `IDENTIFIER`, `METRIC_IDENTIFIER`, `STRING`, `EOF`, `KEYWORD`, … or the punctuation."""

    kind: str
    pos: int
    text: str

    def desc(self) -> str:
        """Describe the item as Prometheus' `Item.desc()` does in `unexpected …` messages."""
        if self.kind == "EOF":
            return "end of input"
        if self.kind in ("IDENTIFIER", "METRIC_IDENTIFIER"):
            kind = "identifier" if self.kind == "IDENTIFIER" else "metric identifier"
            return f"{kind} {go_quote(self.text)}"
        if self.kind in ("STRING", "NUMBER", "DURATION"):
            shown = go_quote(self.text[:10]) + "..." if len(self.text) > 10 else go_quote(self.text)
            return f"{self.kind.lower()} {shown}"
        word = self.text.lower()
        if self.kind == "OPERATOR" or word in _OPERATOR_WORDS:
            return f"<op:{self.text}>"
        if word in _AGGREGATOR_WORDS:
            return f"<aggr:{self.text}>"
        if word in _KEYWORD_WORDS:
            return f"<{self.text}>"
        return go_quote(self.text)


class _Lexer:
    """Prometheus' lexer, reduced to what a label set can meet; errors raise at once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.in_braces = False
        self.paren_depth = 0

    def next(self) -> _Item:
        while True:
            item = self._lex_inside() if self.in_braces else self._lex_outside()
            if item is not None:
                return item

    def _error(self, msg: str, start: int) -> MetricParseError:
        return MetricParseError(msg, self.text, start)

    def _skip_comment_or_space(self) -> bool:
        text, pos = self.text, self.pos
        if text.startswith("#", pos):
            end = pos + 1
            while end < len(text) and text[end] not in "\r\n":
                end += 1
            self.pos = end
            return True
        if pos < len(text) and text[pos] in _SPACE:
            while self.pos < len(text) and text[self.pos] in _SPACE:
                self.pos += 1
            return True
        return False

    def _lex_inside(self) -> _Item | None:
        if self._skip_comment_or_space():
            return None
        text, start = self.text, self.pos
        if start >= len(text):
            raise self._error("unexpected end of input inside braces", start)
        ch = text[start]
        self.pos += 1
        if ch == "_" or ch.isascii() and ch.isalpha():
            while self.pos < len(text) and _is_alnum(text[self.pos]):
                self.pos += 1
            return _Item("IDENTIFIER", start, text[start:self.pos])
        if ch in "\"'`":
            return self._lex_string(ch, start)
        if ch == ",":
            return _Item(",", start, ch)
        if ch == "=":
            if text.startswith("~", self.pos):
                self.pos += 1
                return _Item("OPERATOR", start, "=~")
            return _Item("=", start, ch)
        if ch == "!":
            nxt = text[self.pos] if self.pos < len(text) else ""
            if nxt in ("~", "="):
                self.pos += 1
                return _Item("OPERATOR", start, "!" + nxt)
            raise self._error(f"unexpected character after '!' inside braces: {_rune_or_eof(nxt)}", start)
        if ch == "{":
            raise self._error(f"unexpected left brace {quote_rune(ch)}", start)
        if ch == "}":
            self.in_braces = False
            return _Item("}", start, ch)
        raise self._error(f"unexpected character inside braces: {quote_rune(ch)}", start)

    def _lex_outside(self) -> _Item | None:
        if self._skip_comment_or_space():
            return None
        text, start = self.text, self.pos
        if start >= len(text):
            if self.paren_depth:
                raise self._error("unclosed left parenthesis", start)
            return _Item("EOF", start, "")
        ch = text[start]
        self.pos += 1
        if ch == "_" or ch == ":" or ch.isascii() and ch.isalpha():
            return self._lex_word(start)
        if ch.isascii() and ch.isdigit() or ch == "." and text[self.pos:self.pos + 1].isdigit():
            return self._lex_number(start)
        if ch in "\"'`":
            return self._lex_string(ch, start)
        if ch == "{":
            self.in_braces = True
            return _Item("{", start, ch)
        if ch in ",[(":
            self.paren_depth += ch == "("
            return _Item(ch, start, ch)
        if ch in _SINGLE_OPERATORS:
            return _Item("OPERATOR", start, ch)
        return self._lex_other(ch, start)

    def _lex_other(self, ch: str, start: int) -> _Item:
        text = self.text
        nxt = text[self.pos] if self.pos < len(text) else ""
        if ch == "=":
            if nxt == "~":
                raise self._error(f"unexpected character after '=': {quote_rune(nxt)}", start)
            self.pos += nxt == "="
            return _Item("OPERATOR" if nxt == "=" else "=", start, text[start:self.pos])
        if ch == "!":
            if nxt != "=":
                raise self._error(f"unexpected character after '!': {_rune_or_eof(nxt)}", start)
            self.pos += 1
            return _Item("OPERATOR", start, "!=")
        if ch in "<>":
            self.pos += nxt in ("=", "/")
            return _Item("OPERATOR", start, text[start:self.pos])
        if ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                raise self._error(f"unexpected right parenthesis {quote_rune(ch)}", start)
            return _Item(")", start, ch)
        if ch == "]":
            raise self._error(f"unexpected right bracket {quote_rune(ch)}", start)
        raise self._error(f"unexpected character: {quote_rune(ch)}", start)

    def _lex_word(self, start: int) -> _Item:
        text = self.text
        while self.pos < len(text) and (_is_alnum(text[self.pos]) or text[self.pos] == ":"):
            self.pos += 1
        word = text[start:self.pos]
        lower = word.lower()
        if lower in ("inf", "nan"):
            return _Item("NUMBER", start, word)
        if lower.startswith("fill") and lower in _KEYWORD_WORDS and not text[self.pos:].lstrip(_SPACE).startswith("("):
            return _Item("IDENTIFIER", start, word)
        if lower in _OPERATOR_WORDS | _AGGREGATOR_WORDS | _KEYWORD_WORDS | _PREPROCESSOR_WORDS:
            return _Item("KEYWORD", start, word)
        return _Item("METRIC_IDENTIFIER" if ":" in word else "IDENTIFIER", start, word)

    def _lex_number(self, start: int) -> _Item:
        text = self.text
        match = _NUMBER.match(text, start)
        assert match is not None
        end = match.end()
        word_end = end
        while word_end < len(text) and _is_alnum(text[word_end]):
            word_end += 1
        self.pos = word_end
        if word_end == end:
            return _Item("NUMBER", start, text[start:end])
        if _DURATION.fullmatch(text, start, word_end):
            return _Item("DURATION", start, text[start:word_end])
        raise self._error(f"bad number or duration syntax: {go_quote(text[start:word_end])}", start)

    def _lex_string(self, quote: str, start: int) -> _Item:
        text = self.text
        while True:
            if self.pos >= len(text) or quote != "`" and text[self.pos] == "\n":
                msg = "unterminated raw string" if quote == "`" else "unterminated quoted string"
                raise self._error(msg, start)
            ch = text[self.pos]
            self.pos += 1
            if ch == "\ufffd":
                raise self._error("invalid UTF-8 rune", start)
            if ch == quote:
                return _Item("STRING", start, text[start:self.pos])
            if ch == "\\" and quote != "`":
                self._lex_escape(quote, start)

    def _lex_escape(self, quote: str, start: int) -> None:
        text = self.text
        if self.pos >= len(text):
            raise self._error("escape sequence not terminated", start)
        ch = text[self.pos]
        self.pos += 1
        if ch in "abfnrtv\\" or ch == quote:
            return
        sizes = {"x": (2, 16, 255), "u": (4, 16, 0x10FFFF), "U": (8, 16, 0x10FFFF)}
        if ch in "01234567":
            count, base, limit = 3, 8, 255
            self.pos -= 1
        elif ch in sizes:
            count, base, limit = sizes[ch]
        else:
            raise self._error(f"unknown escape sequence {unicode_rune(ch)}", start)
        value = 0
        for _ in range(count):
            if self.pos >= len(text):
                raise self._error("escape sequence not terminated", start)
            digit = int(text[self.pos], 16) if text[self.pos] in "0123456789abcdefABCDEF" else 16
            if digit >= base:
                raise self._error(f"illegal character {unicode_rune(text[self.pos])} in escape sequence", start)
            value = value * base + digit
            self.pos += 1
        if value > limit or 0xD800 <= value < 0xE000:
            raise self._error("escape sequence is an invalid Unicode code point", start)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isascii() and ch.isalnum()


def _rune_or_eof(ch: str) -> str:
    return quote_rune(ch or "\ufffd")  # Go prints the end of input (rune -1) as U+FFFD


def parse_labels(text: str) -> dict[str, str]:
    """Parse push label text into a dict, as Loki's ParseLabels; empty values are dropped.

    Raises MetricParseError (a ParseError whose message is Prometheus' `L:C: parse error: …`).
    A repeated name keeps its last value: use parse_label_pairs to refuse duplicates.
    """
    return dict(parse_label_pairs(text))


def parse_label_pairs(text: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of push label text, sorted by name, duplicates kept, empty values dropped."""
    if len(text) > MAX_LABELS_SIZE:
        raise BadRequest(f"labels size {len(text) >> 20} MiB exceeds limit of {MAX_LABELS_SIZE >> 20}")
    lexer = _Lexer(text)
    pairs: list[tuple[str, str]] = []
    item = lexer.next()
    if item.kind in ("IDENTIFIER", "METRIC_IDENTIFIER") or item.kind == "KEYWORD" and item.text.lower() not in _NOT_METRIC_NAMES:
        pairs.append(("__name__", item.text))
        item = lexer.next()
    if item.kind == "{":
        pairs.extend(_parse_label_set(lexer))
        item = lexer.next()
    if item.kind != "EOF":
        raise _unexpected(text, item, "", "")
    return sorted((pair for pair in pairs if pair[1] != ""), key=lambda pair: pair[0])


def _parse_label_set(lexer: _Lexer) -> list[tuple[str, str]]:
    """The items after `{` up to and including `}`."""
    pairs: list[tuple[str, str]] = []
    item = lexer.next()
    if item.kind == "}":
        return pairs
    while True:
        pair, item = _parse_label_item(lexer, item)
        pairs.append(pair)
        if item.kind == ",":
            item = lexer.next()
            if item.kind == "}":
                return pairs
            continue
        if item.kind == "}":
            return pairs
        raise _unexpected(lexer.text, item, "label set", '"," or "}"')


def _parse_label_item(lexer: _Lexer, item: _Item) -> tuple[tuple[str, str], _Item]:
    """One `name="value"` (or a bare quoted metric name); returns it and the item after it."""
    text = lexer.text
    if item.kind == "IDENTIFIER":
        eq = lexer.next()
        if eq.kind != "=":
            raise _unexpected(text, eq, "label set", '"="')
        value = lexer.next()
        if value.kind != "STRING":
            raise _unexpected(text, value, "label set", "string")
        return (item.text, unquote(value.text)), lexer.next()
    if item.kind == "STRING":
        name = unquote(item.text)
        after = lexer.next()
        if after.kind != "=":
            return ("__name__", name), after
        value = lexer.next()
        if value.kind != "STRING":
            raise _unexpected(text, value, "label set", "string")
        return (name, unquote(value.text)), lexer.next()
    raise _unexpected(text, item, "label set", 'identifier or "}"')


def _unexpected(text: str, item: _Item, context: str, expected: str) -> MetricParseError:
    msg = f"unexpected {item.desc()}"
    if context:
        msg += f" in {context}"
    if expected:
        msg += f", expected {expected}"
    return MetricParseError(msg, text, item.pos)
