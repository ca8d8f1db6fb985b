"""`| logfmt [--strict] [--keep-empty] [a="b", c]`, with the answers Loki gives.

Loki's decoder (go-logfmt's, on bytes) reads `key`, `key=value` and `key="quoted"` pairs separated
by bytes ≤ 0x20. A pair it cannot read (`=x`, `a=b=c`, `a"b`, an unterminated or badly escaped
quote) is skipped; with `--strict` parsing stops there and the line gets `__error__=LogfmtParserErr`
and `logfmt syntax error at pos N : …` (N counted in bytes, from 1), keeping the labels before it.

Per line:
1. Fast path: a regular expression checks the line is only well-formed pairs and blanks, and
   reads them.
2. Otherwise `scan` follows the decoder byte by byte, errors included.

Then, without parameters: names are sanitised and suffixed, the first of two equal names wins,
U+FFFD becomes a space and empty values are dropped unless `--keep-empty`. With parameters
(Loki's other logfmt stage): every wanted label starts as "", the last occurrence wins, a value
holding U+FFFD becomes "", and a key that is a label name already on the line is suffixed
(a second such key stops the line).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pyarrow as pa

from lokiarrow.errors import ParseError
from lokiarrow.exec.parsers import Parsed, Row, build
from lokiarrow.exec.parsers.names import DUPLICATE_SUFFIX, sanitize
from lokiarrow.logql import ast

LOGFMT_ERROR = "LogfmtParserErr"

# One scanned pair: (key, value or None) when read, None when the decoder skipped something.
KeyValue = tuple[str, str | None]
Pair = KeyValue | None

_KEY = r'[^\x00-\x20="\ufffd]+'
_PAIR = rf'({_KEY})(?:=(?:"((?:[^"\\]|\\.)*)"|([^\x00-\x20="]*)))?'
_FAST_LINE = re.compile(rf"[\x00-\x20]*(?:{_PAIR}(?:[\x00-\x20]+{_PAIR})*[\x00-\x20]*)?", re.S)
_FAST_PAIR = re.compile(_PAIR, re.S)


class LogfmtSyntaxError(Exception):
    """The decoder's error: `logfmt syntax error at pos N : msg`."""

    def __init__(self, pos: int, msg: str) -> None:
        super().__init__(f"logfmt syntax error at pos {pos} : {msg}")


# --- unquoting -------------------------------------------------------------------------------------

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "'": "'", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")


def unquote(body: str) -> str | None:
    """The body of a quoted value with escapes decoded as the decoder does; None when invalid.

    A lone or mismatched UTF-16 surrogate becomes U+FFFD.
    """
    if "\\" not in body:
        return None if '"' in body else body
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == '"':
            return None
        if c != "\\":
            j = i + 1
            while j < n and body[j] not in '\\"':
                j += 1
            out.append(body[i:j])
            i = j
            continue
        if i + 1 >= n:
            return None
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
            continue
        if e != "u" or not _HEX4.fullmatch(body, i + 2, i + 6):
            return None
        r = int(body[i + 2:i + 6], 16)
        i += 6
        if 0xD800 <= r <= 0xDFFF:
            if (0xD800 <= r < 0xDC00 and body[i:i + 2] == "\\u" and _HEX4.fullmatch(body, i + 2, i + 6)
                    and 0xDC00 <= (r2 := int(body[i + 2:i + 6], 16)) <= 0xDFFF):
                out.append(chr(0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00)))
                i += 6
            else:
                out.append("\ufffd")
            continue
        out.append(chr(r))
    return "".join(out)


# --- the decoder -----------------------------------------------------------------------------------

def scan(line: str) -> tuple[list[Pair], LogfmtSyntaxError | None]:
    """Every ScanKeyval of the decoder over `line`, and the first error it met."""
    data = line.encode("utf-8", "surrogateescape")
    pairs: list[Pair] = []
    state = _Decoder(data)
    while state.pos < len(data):
        pairs.append(state.next_pair())
    return pairs, state.err


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.err: LogfmtSyntaxError | None = None

    def _fail(self, msg: str) -> None:
        if self.err is None:  # `--strict` stops at the first fault, so only that one is reported
            self.err = LogfmtSyntaxError(self.pos + 1, msg)

    def _unexpected(self, c: int) -> None:
        self._fail(f"unexpected '{chr(c)}'")

    def _skip_value(self) -> None:
        data, n = self.data, len(self.data)
        while self.pos < n and data[self.pos] > 0x20:
            self.pos += 1

    def _key(self, start: int) -> str | None:
        key = self.data[start:self.pos].decode("utf-8", "replace")
        return None if "\ufffd" in key else key

    def next_pair(self) -> Pair:
        data, n = self.data, len(self.data)
        while self.pos < n and data[self.pos] <= 0x20:
            self.pos += 1
        if self.pos >= n:
            return None
        start = self.pos
        while self.pos < n:
            c = data[self.pos]
            if c == 0x3D:  # '='
                if self.pos == start:
                    self._unexpected(c)
                    self._skip_value()
                    return None
                key = self._key(start)
                if key is None:
                    self._fail("invalid key")
                    self._skip_value()
                    return None
                return self._value(key)
            if c == 0x22:
                self._unexpected(c)
                self._skip_value()
                return None
            if c <= 0x20:
                break
            self.pos += 1
        key = self._key(start)
        if key is None:
            self._fail("invalid key")
            return None
        return key, None

    def _value(self, key: str) -> Pair:
        data, n = self.data, len(self.data)
        self.pos += 1
        if self.pos >= n or data[self.pos] <= 0x20:
            return key, None
        if data[self.pos] == 0x22:
            return self._quoted(key)
        start = self.pos
        while self.pos < n:
            c = data[self.pos]
            if c == 0x3D or c == 0x22:
                self._unexpected(c)
                self._skip_value()
                return None
            if c <= 0x20:
                break
            self.pos += 1
        return key, data[start:self.pos].decode("utf-8", "replace") or None

    def _quoted(self, key: str) -> Pair:
        data, n = self.data, len(self.data)
        start = self.pos
        i, escaped, has_escape = start + 1, False, False
        while i < n:
            c = data[i]
            if escaped:
                escaped = False
            elif c == 0x5C:
                escaped = has_escape = True
            elif c == 0x22:
                self.pos = i + 1
                body = data[start + 1:i].decode("utf-8", "replace")
                if not has_escape:
                    return key, body or None
                value = unquote(body)
                if value is None:
                    self._fail("invalid quoted value")
                    return None
                return key, value
            i += 1
        self.pos = n
        self._fail("unterminated quoted value")
        return None


def _pairs(line: str) -> tuple[list[Pair], LogfmtSyntaxError | None]:
    if _FAST_LINE.fullmatch(line):
        fast: list[Pair] = []
        for key, quoted, plain in _FAST_PAIR.findall(line):
            if quoted:
                if "\\" in quoted:
                    value = unquote(quoted)
                    if value is None:
                        return scan(line)
                    fast.append((key, value or None))
                else:
                    fast.append((key, quoted))
            else:
                fast.append((key, plain or None))
        return fast, None
    return scan(line)


# --- the stages ------------------------------------------------------------------------------------

def _each_line(lines: list[str | None], strict: bool, row_of: Callable[[Iterator[KeyValue]], Row]) -> Parsed:
    """Run `row_of` over each line's pairs (up to the first fault under `--strict`); a fault is
    an error only under `--strict`, as in Loki."""
    rows: list[Row | None] = []
    errors: list[str | None] = []
    details: list[str | None] = []
    for line in lines:
        pairs, error = _pairs(line) if line else ([], None)
        row = row_of(_valid(pairs, strict))
        if not strict:
            error = None
        rows.append(row or None)
        errors.append(None if error is None else LOGFMT_ERROR)
        details.append(None if error is None else str(error))
    return build(rows, errors, details)


def _valid(pairs: list[Pair], strict: bool) -> Iterator[KeyValue]:
    """The well-formed pairs; under `--strict` only those before the first fault."""
    for pair in pairs:
        if pair is None:
            if strict:
                return
            continue
        yield pair


def _all_pairs(lines: list[str | None], node: ast.LogfmtParser, existing: set[str]) -> Parsed:
    names: dict[str, str] = {}

    def row_of(pairs: Iterator[KeyValue]) -> Row:
        row: Row = {}
        for key, value in pairs:
            name = names.get(key)
            if name is None:
                name = sanitize(key)
                if name and name in existing:
                    name += DUPLICATE_SUFFIX
                names[key] = name
            if not name or name in row:
                continue
            if value is None:
                value = ""
            elif "\ufffd" in value:
                value = value.replace("\ufffd", " ")
            if value or node.keep_empty:
                row[name] = value
        return row

    return _each_line(lines, node.strict, row_of)


_EXPRESSION = re.compile(r'[ \t\n]*(?:([A-Za-z_][A-Za-z0-9_]*)|"([^"]*)")[ \t\n]*')


def parse_key(expression: str) -> str:
    """The logfmt key a parameter names: `a` or `"a.b"` (Loki's logfmt expression syntax)."""
    m = _EXPRESSION.fullmatch(expression)
    if m is None:
        raise ParseError(f"cannot parse expression [{expression}]: syntax error")
    return m[1] if m[1] is not None else m[2]


def _selected_pairs(lines: list[str | None], node: ast.LogfmtParser, existing: set[str]) -> Parsed:
    ids = [e.name for e in node.extractions]
    wanted = set(ids)
    renames: dict[str, str] = {}  # logfmt key → label, first declared wins
    for e in node.extractions:
        renames.setdefault(parse_key(e.expression or e.name), e.name)
    initial = {i: "" for i in ids if i not in existing}

    def row_of(pairs: Iterator[KeyValue]) -> Row:
        row: Row = dict(initial)
        for raw_key, raw_value in pairs:
            key = sanitize(raw_key)
            if not key or (key not in wanted and key in row):
                continue
            value = raw_value or ""
            if "\ufffd" in value:
                value = ""
            key = renames.get(key, key)
            if key not in wanted:
                continue
            if key in existing:
                key += DUPLICATE_SUFFIX
                if key in row:
                    break
            row[key] = value
        return row

    return _each_line(lines, node.strict, row_of)


def parse_logfmt(lines: pa.StringArray, node: ast.LogfmtParser, existing: set[str]) -> Parsed:
    """`| logfmt` over a batch of lines."""
    values: list[str | None] = lines.to_pylist()
    if node.extractions:
        return _selected_pairs(values, node, existing)
    return _all_pairs(values, node, existing)
