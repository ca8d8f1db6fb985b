"""LogQL's tokens, lexed exactly as Loki's lexer (Go's text/scanner plus Loki's rules) lexes them.

Error texts quote token names as Loki's goyacc parser does, and error positions follow Go's
scanner: line and column (1-based, in characters) of the token's start, except that the line
reads 0 once the lexer has consumed characters past a token with `Next()` (two-character
operators, durations, bytes, flags and `[range]`), as in Loki.

Steps of `Lexer.next()`: 1. `_scan()` reads one Go token (identifier, number, string, raw string,
char, or one character), skipping whitespace and `//`, `/* */` comments; 2. Loki's rules turn it
into a LogQL token: `#` comments, numbers that are durations or byte sizes, `--flags`, unquoted
strings, `[duration]` ranges, functions (a name followed by `(` or `by (`), keywords and
two-character operators.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from lokiarrow.errors import ParseError
from lokiarrow.logql.quoting import quote_rune, unquote
from lokiarrow.units import parse_bytes, parse_duration_ns, parse_prometheus_duration_ns

# Keywords and punctuation (lower case); goyacc names these tokens by this text in its errors.
TOKENS = {
    ",": "COMMA", ".": "DOT", "{": "OPEN_BRACE", "}": "CLOSE_BRACE", "=": "EQ", "!=": "NEQ", "=~": "RE",
    "!~": "NRE", "!>": "NPA", "|=": "PIPE_EXACT", "|~": "PIPE_MATCH", "|>": "PIPE_PATTERN", "|": "PIPE",
    "unwrap": "UNWRAP", "(": "OPEN_PARENTHESIS", ")": "CLOSE_PARENTHESIS", "by": "BY", "without": "WITHOUT",
    "bool": "BOOL", "[": "OPEN_BRACKET", "]": "CLOSE_BRACKET", "label_replace": "LABEL_REPLACE",
    "offset": "OFFSET", "on": "ON", "ignoring": "IGNORING", "group_left": "GROUP_LEFT",
    "group_right": "GROUP_RIGHT", "or": "OR", "and": "AND", "unless": "UNLESS", "+": "ADD", "-": "SUB",
    "*": "MUL", "/": "DIV", "%": "MOD", "^": "POW", "==": "CMP_EQ", ">": "GT", ">=": "GTE", "<": "LT",
    "<=": "LTE", "json": "JSON", "regexp": "REGEXP", "logfmt": "LOGFMT", "unpack": "UNPACK",
    "pattern": "PATTERN", "label_format": "LABEL_FMT", "line_format": "LINE_FMT", "ip": "IP",
    "decolorize": "DECOLORIZE", "drop": "DROP", "keep": "KEEP",
}

# Names that are tokens only when a `(` (or `by (` / `without (`) follows; otherwise identifiers.
RANGE_OPS = {
    "rate": "RATE", "rate_counter": "RATE_COUNTER", "count_over_time": "COUNT_OVER_TIME",
    "bytes_rate": "BYTES_RATE", "bytes_over_time": "BYTES_OVER_TIME", "avg_over_time": "AVG_OVER_TIME",
    "sum_over_time": "SUM_OVER_TIME", "min_over_time": "MIN_OVER_TIME", "max_over_time": "MAX_OVER_TIME",
    "stdvar_over_time": "STDVAR_OVER_TIME", "stddev_over_time": "STDDEV_OVER_TIME",
    "quantile_over_time": "QUANTILE_OVER_TIME", "first_over_time": "FIRST_OVER_TIME",
    "last_over_time": "LAST_OVER_TIME", "absent_over_time": "ABSENT_OVER_TIME",
}
VECTOR_OPS = {
    "sum": "SUM", "avg": "AVG", "max": "MAX", "min": "MIN", "count": "COUNT", "stddev": "STDDEV",
    "stdvar": "STDVAR", "bottomk": "BOTTOMK", "topk": "TOPK", "sort": "SORT", "sort_desc": "SORT_DESC",
    "approx_topk": "APPROX_TOPK",
}
CONVERSIONS = {"bytes": "BYTES_CONV", "duration": "DURATION_CONV", "duration_seconds": "DURATION_SECONDS_CONV"}
FUNCTION_TOKENS = {**RANGE_OPS, **VECTOR_OPS, **CONVERSIONS, "vector": "VECTOR",
                   "label_replace": "LABEL_REPLACE", "ip": "IP"}
PARSER_FLAGS = frozenset({"--strict", "--keep-empty"})

# Terminals in the order the grammar declares them: goyacc lists expected tokens in this order.
TOKEN_ORDER = (
    "BYTES IDENTIFIER STRING NUMBER FUNCTION_FLAG DURATION RANGE MATCHERS LABELS EQ RE NRE NPA OPEN_BRACE "
    "CLOSE_BRACE OPEN_BRACKET CLOSE_BRACKET COMMA DOT PIPE_MATCH PIPE_EXACT PIPE_PATTERN OPEN_PARENTHESIS "
    "CLOSE_PARENTHESIS BY WITHOUT COUNT_OVER_TIME RATE RATE_COUNTER SUM SORT SORT_DESC AVG MAX MIN COUNT "
    "STDDEV STDVAR BOTTOMK TOPK APPROX_TOPK BYTES_OVER_TIME BYTES_RATE BOOL JSON REGEXP LOGFMT PIPE LINE_FMT "
    "LABEL_FMT UNWRAP AVG_OVER_TIME SUM_OVER_TIME MIN_OVER_TIME MAX_OVER_TIME STDVAR_OVER_TIME "
    "STDDEV_OVER_TIME QUANTILE_OVER_TIME BYTES_CONV DURATION_CONV DURATION_SECONDS_CONV FIRST_OVER_TIME "
    "LAST_OVER_TIME ABSENT_OVER_TIME VECTOR LABEL_REPLACE UNPACK OFFSET PATTERN IP ON IGNORING GROUP_LEFT "
    "GROUP_RIGHT DECOLORIZE DROP KEEP OR AND UNLESS CMP_EQ NEQ LT LTE GT GTE ADD SUB MUL DIV MOD POW"
).split()
_RANK = {kind: rank for rank, kind in enumerate(TOKEN_ORDER)}
DISPLAY = {kind: text for text, kind in TOKENS.items()} | {"$end": "$end"}

EOF = ""  # the scanner's end-of-input character
_INT, _FLOAT, _STRING, _RAW, _CHAR, _IDENT = "Int", "Float", "String", "RawString", "Char", "Ident"
_WHITESPACE = ("\t", "\n", "\r", " ")
_DURATION_RUNES = frozenset("numsµhdwy")
_BYTES_RUNES = frozenset("BikKMGTP")


def display(kind: str) -> str:
    """A token kind as goyacc names it in `unexpected …` errors."""
    return DISPLAY.get(kind, kind)


def expected_text(kinds: tuple[str, ...]) -> str:
    """goyacc's `, expecting A or B` (tokens in grammar order), or "" beyond four tokens."""
    if not kinds or len(kinds) > 4:
        return ""
    return ", expecting " + " or ".join(display(k) for k in sorted(kinds, key=_RANK.__getitem__))


@dataclass(frozen=True)
class Token:
    """A LogQL token: kind is goyacc's name (`IDENTIFIER`, `STRING`, `OPEN_BRACE`, `SUM`, `$end`…).

    text is the unquoted value of a STRING, the source text otherwise; value holds nanoseconds
    for DURATION and RANGE, bytes for BYTES. pos is the character offset; line and col are
    what Loki reports for an error at this token.
    """

    kind: str
    text: str
    pos: int
    line: int
    col: int
    value: int = 0


def _is_letter(ch: str) -> bool:
    return ch == "_" or ch.isalpha()


def _is_digit(ch: str) -> bool:
    return ch != EOF and unicodedata.category(ch) == "Nd"


def _is_number(ch: str) -> bool:
    return ch != EOF and unicodedata.category(ch) in ("Nd", "Nl", "No")


def _is_space(ch: str) -> bool:
    return ch != EOF and (ch.isspace() or ch in "\x85\xa0")


def _is_decimal(ch: str) -> bool:
    return ch != EOF and "0" <= ch <= "9"


def _digit_value(ch: str) -> int:
    if _is_decimal(ch):
        return ord(ch) - ord("0")
    if ch != EOF and "a" <= ch.lower() <= "f":
        return ord(ch.lower()) - ord("a") + 10
    return 16


def _literal_name(prefix: str) -> str:
    return {"x": "hexadecimal literal", "o": "octal literal", "0": "octal literal",
            "b": "binary literal"}.get(prefix, "decimal literal")


def _lexer_duration(text: str) -> int | None:
    """Loki's lexer durations: Prometheus' syntax first, then Go's time.ParseDuration."""
    try:
        return parse_prometheus_duration_ns(text)
    except ValueError:
        pass
    if any(unit in text for unit in "dwy"):
        return None
    try:
        return parse_duration_ns(text)
    except ValueError:
        return None


def _lexer_bytes(text: str) -> int | None:
    try:
        return parse_bytes(text)
    except ValueError:
        return None


class _Scanner:
    """Go's text/scanner in GoTokens mode: one rune of lookahead in `ch`, Go's line/column rules."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.i = 0  # index of the next character to read
        self.line, self.column, self.last_line_len, self.last_char_len = 1, 0, 0, 0
        self.ch: str | None = None  # the character read ahead; None before the first read
        self.tok_line, self.tok_col, self.tok_start, self.tok_end = 0, 0, 0, 0

    def error(self, msg: str) -> ParseError:
        return ParseError(msg, self.tok_line, self.tok_col)

    def _next(self) -> str:
        if self.i >= len(self.src):
            if self.last_char_len > 0:
                self.column += 1
            self.last_char_len = 0
            return EOF
        ch = self.src[self.i]
        self.i += 1
        self.last_char_len = 1
        self.column += 1
        if ch == "\x00":
            raise self.error("invalid character NUL")
        if ch == "\n":
            self.line += 1
            self.last_line_len = self.column
            self.column = 0
        return ch

    def peek(self) -> str:
        if self.ch is None:
            self.ch = self._next()
            if self.ch == "\ufeff":
                self.ch = self._next()
        return self.ch

    def next_char(self) -> str:
        """Go's Scanner.Next(): consume the read-ahead character; invalidates the token line."""
        self.tok_line = 0
        ch = self.peek()
        if ch != EOF:
            self.ch = self._next()
        return ch

    def rest(self) -> int:
        """Index in src of the read-ahead character (len(src) at the end)."""
        self.peek()
        return self.i - self.last_char_len

    def text(self) -> str:
        return self.src[self.tok_start:self.tok_end]

    def scan(self) -> str:
        """Read one Go token; returns its class (`Ident`, `Int`, …) or the character itself."""
        ch = self.peek()
        self.tok_line = 0
        while True:
            while ch in _WHITESPACE:
                ch = self._next()
            self.tok_start = self.i - self.last_char_len
            if self.column > 0:
                self.tok_line, self.tok_col = self.line, self.column
            else:
                self.tok_line, self.tok_col = self.line - 1, self.last_line_len
            if ch == "/":
                ch = self._next()
                if ch in ("/", "*"):
                    ch = self._scan_comment(ch)
                    continue
                kind = "/"
            else:
                kind, ch = self._scan_token(ch)
            break
        self.tok_end = self.i - self.last_char_len
        self.ch = ch
        return kind

    def _scan_token(self, ch: str) -> tuple[str, str]:
        if ch != EOF and _is_letter(ch):
            ch = self._next()
            while ch != EOF and (_is_letter(ch) or _is_digit(ch)):
                ch = self._next()
            return _IDENT, ch
        if _is_decimal(ch):
            return self._scan_number(ch, seen_dot=False)
        if ch == '"':
            self._scan_string('"')
            return _STRING, self._next()
        if ch == "'":
            if self._scan_string("'") != 1:
                raise self.error("invalid char literal")
            return _CHAR, self._next()
        if ch == "`":
            ch = self._next()
            while ch != "`":
                if ch == EOF:
                    raise self.error("literal not terminated")
                ch = self._next()
            return _RAW, self._next()
        if ch == ".":
            ch = self._next()
            if _is_decimal(ch):
                return self._scan_number(ch, seen_dot=True)
            return ".", ch
        if ch == EOF:
            return EOF, ch
        return ch, self._next()

    def _scan_comment(self, ch: str) -> str:
        if ch == "/":
            while ch not in ("\n", EOF):
                ch = self._next()
            return ch
        ch = self._next()
        while True:
            if ch == EOF:
                raise self.error("comment not terminated")
            previous, ch = ch, self._next()
            if previous == "*" and ch == "/":
                return self._next()

    def _scan_string(self, quote: str) -> int:
        count = 0
        ch = self._next()
        while ch != quote:
            if ch in ("\n", EOF):
                raise self.error("literal not terminated")
            ch = self._scan_escape(quote) if ch == "\\" else self._next()
            count += 1
        return count

    def _scan_escape(self, quote: str) -> str:
        ch = self._next()
        if ch != EOF and (ch in "abfnrtv\\" or ch == quote):
            return self._next()
        if ch != EOF and ch in "01234567":
            return self._scan_digits(ch, 8, 3)
        sizes = {"x": 2, "u": 4, "U": 8}
        if ch != EOF and ch in sizes:
            return self._scan_digits(self._next(), 16, sizes[ch])
        raise self.error("invalid char escape")

    def _scan_digits(self, ch: str, base: int, count: int) -> str:
        while count > 0 and _digit_value(ch) < base:
            ch = self._next()
            count -= 1
        if count > 0:
            raise self.error("invalid char escape")
        return ch

    def _digits(self, ch: str, base: int, invalid: list[str]) -> tuple[str, int]:
        """Consume digits (and `_`) of a base; bit 0 of the result: a digit seen, bit 1: a `_` seen."""
        seen = 0
        while ch == "_" or (_is_decimal(ch) if base <= 10 else _digit_value(ch) < 16):
            seen |= 2 if ch == "_" else 1
            if ch != "_" and base <= 10 and _digit_value(ch) >= base and not invalid:
                invalid.append(ch)
            ch = self._next()
        return ch, seen

    def _scan_number(self, ch: str, seen_dot: bool) -> tuple[str, str]:
        base, prefix, seen = 10, "", 0
        invalid: list[str] = []
        kind = _FLOAT
        if not seen_dot:
            kind = _INT
            if ch == "0":
                ch = self._next()
                lower = ch.lower() if ch != EOF else EOF
                if lower in ("x", "o", "b"):
                    ch = self._next()
                    base, prefix = {"x": 16, "o": 8, "b": 2}[lower], lower
                else:
                    base, prefix, seen = 8, "0", 1
            ch, more = self._digits(ch, base, invalid)
            seen |= more
            if ch == ".":
                ch = self._next()
                seen_dot = True
        if seen_dot:
            kind = _FLOAT
            if prefix in ("o", "b"):
                raise self.error("invalid radix point in " + _literal_name(prefix))
            ch, more = self._digits(ch, base, invalid)
            seen |= more
        if not seen & 1:
            raise self.error(_literal_name(prefix) + " has no digits")
        exponent = ch.lower() if ch != EOF else EOF
        if exponent == "e" or exponent == "p" and prefix == "x":
            if exponent == "e" and prefix not in ("", "0"):
                raise self.error(f"{quote_rune(ch)} exponent requires decimal mantissa")
            ch = self._next()
            kind = _FLOAT
            if ch in ("+", "-"):
                ch = self._next()
            ch, more = self._digits(ch, 10, [])
            seen |= more
            if not more & 1:
                raise self.error("exponent has no digits")
        elif prefix == "x" and kind == _FLOAT:
            raise self.error("hexadecimal mantissa requires a 'p' exponent")
        if kind == _INT and invalid:
            raise self.error(f"invalid digit {quote_rune(invalid[0])} in {_literal_name(prefix)}")
        if seen & 2 and _invalid_separator(self.src[self.tok_start:self.i - self.last_char_len]):
            raise self.error("'_' must separate successive digits")
        return kind, ch


def _invalid_separator(text: str) -> bool:
    """Whether a `_` in a number literal does not sit between two digits (Go's rule)."""
    body = text[2:] if text[:2].lower() in ("0x", "0o", "0b") else text
    hexadecimal = text[:2].lower() == "0x"
    previous = "0" if body is not text else "."
    for ch in body:
        is_digit = _is_decimal(ch) or hexadecimal and _digit_value(ch) < 16
        if ch == "_" and previous != "0" or ch != "_" and not is_digit and previous == "_":
            return True
        previous = "_" if ch == "_" else "0" if is_digit else "."
    return previous == "_"


class Lexer:
    """Loki's LogQL lexer: `next()` returns one Token at a time, raising ParseError as Loki reports it."""

    def __init__(self, src: str) -> None:
        self._scanner = _Scanner(src)

    def next(self) -> Token:
        sc = self._scanner
        kind = sc.scan()
        while kind == "#":  # a comment runs to the end of the line
            while sc.peek() not in ("\n", EOF):
                sc.next_char()
            kind = sc.scan()
        if kind == EOF:
            return self._token("$end", "")
        if kind in (_INT, _FLOAT):
            return self._number(sc.text())
        if kind == "-":
            token = self._flag_or_negative_duration()
            if token is not None:
                return token
        if kind in (_STRING, _RAW):
            try:
                return self._token("STRING", unquote(sc.text()))
            except ValueError as exc:
                raise sc.error(str(exc)) from None
        if kind == "[":
            return self._range()
        return self._word(sc.text())

    def _token(self, kind: str, text: str, value: int = 0) -> Token:
        sc = self._scanner
        return Token(kind, text, sc.tok_start, sc.tok_line, sc.tok_col, value)

    def _run(self, accept: frozenset[str] | None, number_runes: bool) -> str:
        """The characters ahead (up to a space) that a duration, byte size or flag may continue with."""
        sc = self._scanner
        src, start = sc.src, sc.rest()
        end = start
        while end < len(src) and not _is_space(src[end]):
            ch = src[end]
            if accept is None:
                if not (ch.isalpha() or ch == "-"):
                    break
            elif not (number_runes and _is_number(ch) or ch in accept or ch == "."):
                break
            end += 1
        return src[start:end]

    def _consume(self, count: int) -> None:
        for _ in range(count):
            self._scanner.next_char()

    def _number(self, text: str) -> Token:
        run = self._run(_DURATION_RUNES, number_runes=True)
        if run and (ns := _lexer_duration(text + run)) is not None:
            self._consume(len(run))
            return self._token("DURATION", text + run, ns)
        run = self._run(_BYTES_RUNES, number_runes=True)
        if run and (size := _lexer_bytes(text + run)) is not None:
            self._consume(len(run))
            return self._token("BYTES", text + run, size)
        return self._token("NUMBER", text)

    def _flag_or_negative_duration(self) -> Token | None:
        sc = self._scanner
        if sc.peek() == "-":
            run = self._run(None, number_runes=False)
            if "-" + run in PARSER_FLAGS:
                self._consume(len(run))
                return self._token("FUNCTION_FLAG", "-" + run)
        run = self._run(_DURATION_RUNES, number_runes=True)
        if run and (ns := _lexer_duration("-" + run)) is not None:
            self._consume(len(run))
            return self._token("DURATION", "-" + run, ns)
        return None

    def _range(self) -> Token:
        sc = self._scanner
        chars: list[str] = []
        while (ch := sc.next_char()) != EOF:
            if ch == "]":
                text = "".join(chars)
                try:
                    return self._token("RANGE", text, parse_prometheus_duration_ns(text))
                except ValueError as exc:
                    raise sc.error(str(exc)) from None
            chars.append(ch)
        raise sc.error("missing closing ']' in duration")

    def _word(self, text: str) -> Token:
        sc = self._scanner
        lower = text.lower()
        if lower in FUNCTION_TOKENS:
            if _is_function(sc.src, sc.rest()):
                return self._token(FUNCTION_TOKENS[lower], text)
            return self._token("IDENTIFIER", text)
        ahead = sc.peek()
        pair = lower + ahead.lower()
        if ahead != EOF and pair in TOKENS:
            sc.next_char()
            return self._token(TOKENS[pair], pair)
        if lower in TOKENS:
            return self._token(TOKENS[lower], lower)
        return self._token("IDENTIFIER", text)


def _is_function(src: str, start: int) -> bool:
    """Whether a name is called: `(` follows, or `by (` / `without (` does (Loki's isFunction)."""
    i = _skip_spaces(src, start)
    if src.startswith("(", i):
        return True
    for keyword in ("by", "without"):
        if src[i:i + len(keyword)].lower() == keyword:
            return src.startswith("(", _skip_spaces(src, i + len(keyword)))
    return False


def _skip_spaces(src: str, i: int) -> int:
    while i < len(src) and _is_space(src[i]):
        i += 1
    return i
