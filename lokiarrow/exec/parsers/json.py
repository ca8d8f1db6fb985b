"""`| json` and `| json a="b.c", d="e[0]"`, with the answers Loki gives, errors included.

Loki reads JSON with a lenient streaming scanner (grafana/jsonparser), not a validating decoder:
it extracts fields until it meets a fault, keeps what it extracted, and names the fault in
`__error_details__`; it accepts some invalid JSON (text after the closing brace, raw control
characters in strings, `01`), keeps numbers as written (`1.50`) and lets the first of two equal
keys win. So, per line:

1. Fast path: Python's C JSON scanner reads the line, set to keep numbers as written and every
   member in order (repeated keys too). It is taken when its reading must equal Loki's: valid
   JSON holding an object, no UTF-16 surrogate escapes. Lines whose objects have the same keys
   in the same order (most of a batch, usually) are then filled a key at a time over all of them.
   (orjson decodes faster but turns `1.50`
   into 1.5 and keeps the last of two equal keys, and DuckDB's json_extract_string also rewrites
   numbers and objects; making either exact costs more than it saves on lines with floats.)
2. Otherwise `object_each`, a port of the scanner's rules working byte by byte, reads the line
   and reports its error texts ("Value looks like object, but can't find closing '}' symbol", …).

With parameters (`| json a="b.c"`) each path is looked up in the fast decoder's reading; objects
and arrays, which Loki returns as written, and lines the fast path refuses are looked up in the
raw text with the same scanner. Loki's key search there (jsonparser.EachKey) skips over some
faults that `object_each` stops at, so on invalid JSON a path after a fault may give "" here
where Loki finds a value.

Values: strings unescaped (U+FFFD becomes a space, an undecodable escape gives ""), numbers and
booleans as written; null and arrays give no label. Nested objects join their keys with `_`.
"""

from __future__ import annotations

import json as stdjson
import re
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.errors import ParseError
from lokiarrow.exec.parsers import Parsed, Row, build, from_columns
from lokiarrow.exec.parsers.names import DUPLICATE_SUFFIX, dedupe, sanitize, sanitize_path
from lokiarrow.logql import ast

JSON_ERROR = "JSONParserErr"

# The scanner's error texts (grafana/jsonparser), which Loki shows as __error_details__.
MALFORMED_JSON = "Malformed JSON error"
MALFORMED_STRING = "Value is string, but can't find closing '\"' symbol"
MALFORMED_ARRAY = "Value is array, but can't find closing ']' symbol"
MALFORMED_OBJECT = "Value looks like object, but can't find closing '}' symbol"
UNKNOWN_VALUE = "Unknown value type"
MALFORMED_ESCAPE = "Encountered an invalid escape sequence in a string"

STRING, NUMBER, OBJECT, ARRAY, BOOLEAN, NULL = "string", "number", "object", "array", "boolean", "null"


class JsonScanError(Exception):
    """A fault the scanner stops at; the message is Loki's `__error_details__`."""


# --- the scanner ---------------------------------------------------------------------------------

_NON_SPACE = re.compile(rb"[^ \n\r\t]")
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # up to the first unescaped quote
_TOKEN_END = re.compile(rb"[ \n\r\t,}\]]")
_BLOCK_CHARS = {b"{"[0]: re.compile(rb'["{}]'), b"["[0]: re.compile(rb'["\[\]]')}
_ESCAPES = {ord('"'): '"', ord("\\"): "\\", ord("/"): "/", ord("b"): "\b", ord("f"): "\f",
            ord("n"): "\n", ord("r"): "\r", ord("t"): "\t"}
_HEX = re.compile(rb"[0-9A-Fa-f]{4}")


def _next_token(data: bytes, i: int) -> int:
    m = _NON_SPACE.search(data, i)
    return -1 if m is None else m.start()


def _string_end(data: bytes, i: int) -> tuple[int, bool]:
    """Index just past the closing quote of a string whose body starts at `i` (-1: none), and
    whether the body holds a backslash."""
    m = _STRING_REST.match(data, i)
    if m is None:
        return -1, False
    return m.end(), b"\\" in data[i:m.end()]


def _block_end(data: bytes, i: int) -> int:
    """Index just past the `}`/`]` closing the block opened at `i` (-1: none); only that bracket
    kind is counted, strings are skipped."""
    opener = data[i]
    closer = b"}"[0] if opener == b"{"[0] else b"]"[0]
    chars = _BLOCK_CHARS[opener]
    level = 0
    while True:
        m = chars.search(data, i)
        if m is None:
            return -1
        i = m.start()
        c = data[i]
        if c == 0x22:  # '"'
            end, _ = _string_end(data, i + 1)
            if end == -1:
                return -1
            i = end
            continue
        level += 1 if c == opener else -1
        i += 1
        if c == closer and level == 0:
            return i


def _get(data: bytes, i: int) -> tuple[bytes, str, int]:
    """The value starting at the first token at or after `i`: (text, type, end index)."""
    start = _next_token(data, i)
    if start == -1:
        raise JsonScanError(MALFORMED_JSON)
    c = data[start]
    if c == 0x22:
        end, _ = _string_end(data, start + 1)
        if end == -1:
            raise JsonScanError(MALFORMED_STRING)
        return data[start + 1:end - 1], STRING, end
    if c == 0x5B or c == 0x7B:  # '[' or '{'
        end = _block_end(data, start)
        if end == -1:
            raise JsonScanError(MALFORMED_ARRAY if c == 0x5B else MALFORMED_OBJECT)
        return data[start:end], ARRAY if c == 0x5B else OBJECT, end
    m = _TOKEN_END.search(data, start)
    end = len(data) if m is None else m.start()
    value = data[start:end]
    if c in b"tf":
        if value not in (b"true", b"false"):
            raise JsonScanError(UNKNOWN_VALUE)
        return value, BOOLEAN, end
    if c in b"un":
        if value != b"null":
            raise JsonScanError(UNKNOWN_VALUE)
        return value, NULL, end
    if c in b"0123456789-":
        return value, NUMBER, end
    raise JsonScanError(UNKNOWN_VALUE)


def object_each(data: bytes, callback: Callable[[bytes, bytes, str], None],
                before_value: Callable[[bytes], None] | None = None) -> None:
    """Call `callback(key, value, type)` for each member of the object `data` opens with, in order,
    until the closing brace or a fault (raised as JsonScanError after the members before it).
    `before_value(key)`, if given, is called before each value is read."""
    off = _next_token(data, 0)
    if off == -1 or data[off] != 0x7B:
        raise JsonScanError(MALFORMED_OBJECT)
    off = _next_token(data, off + 1)
    if off == -1:
        raise JsonScanError(MALFORMED_JSON)
    if data[off] == 0x7D:
        return
    n = len(data)
    while off < n:
        c = data[off]
        if c == 0x7D:
            return
        if c != 0x22:
            raise JsonScanError(MALFORMED_OBJECT)
        end, escaped = _string_end(data, off + 1)
        if end == -1:
            raise JsonScanError(MALFORMED_JSON)
        key = data[off + 1:end - 1]
        if escaped:
            unescaped = unescape(key)
            if unescaped is None:
                raise JsonScanError(MALFORMED_ESCAPE)
            key = unescaped
        off = _next_token(data, end)
        if off == -1 or data[off] != 0x3A:
            raise JsonScanError(MALFORMED_JSON)
        if before_value is not None:
            before_value(key)
        value, kind, off = _get(data, off + 1)
        callback(key, value, kind)
        off = _next_token(data, off)
        if off == -1:
            raise JsonScanError(MALFORMED_ARRAY)
        if data[off] == 0x7D:
            return
        if data[off] != 0x2C:
            raise JsonScanError(MALFORMED_OBJECT)
        off = _next_token(data, off + 1)
        if off == -1:
            raise JsonScanError(MALFORMED_ARRAY)
    raise JsonScanError(MALFORMED_OBJECT)


def array_elements(data: bytes) -> list[tuple[bytes, str]]:
    """The elements of the array `data` opens with (raises JsonScanError on a fault)."""
    off = _next_token(data, 0)
    if off == -1:
        raise JsonScanError(MALFORMED_JSON)
    off = _next_token(data, off + 1)
    if off == -1:
        raise JsonScanError(MALFORMED_JSON)
    out: list[tuple[bytes, str]] = []
    if data[off] == 0x5D:
        return out
    while True:
        value, kind, off = _get(data, off)
        out.append((value, kind))
        off = _next_token(data, off)
        if off == -1:
            raise JsonScanError(MALFORMED_ARRAY)
        if data[off] == 0x5D:
            return out
        if data[off] != 0x2C:
            raise JsonScanError(MALFORMED_ARRAY)
        off += 1


def unescape(raw: bytes) -> bytes | None:
    """A JSON string body unescaped to UTF-8 as the scanner does it; None if an escape is invalid.

    A `\\u` high surrogate takes the next six bytes as its low half without checking their `\\u`;
    a code point that is no valid rune becomes U+FFFD.
    """
    if b"\\" not in raw:
        return raw
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        j = raw.find(b"\\", i)
        if j == -1:
            out.append(raw[i:].decode("utf-8", "replace"))
            break
        out.append(raw[i:j].decode("utf-8", "replace"))
        if j + 1 >= n:
            return None
        e = raw[j + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i = j + 2
            continue
        if e != 0x75:  # 'u'
            return None
        if not _HEX.fullmatch(raw, j + 2, j + 6):
            return None
        r = int(raw[j + 2:j + 6], 16)
        if not 0xD800 <= r <= 0xDFFF:
            out.append(chr(r))
            i = j + 6
            continue
        if not _HEX.fullmatch(raw, j + 8, j + 12):
            return None
        r2 = int(raw[j + 8:j + 12], 16)
        if r2 < 0xDC00:
            return None
        rune = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00)
        out.append(chr(rune) if rune <= 0x10FFFF and not 0xD800 <= rune <= 0xDFFF else "\ufffd")
        i = j + 12
    return "".join(out).encode("utf-8")


def string_value(raw: bytes) -> str:
    """A string label value as Loki makes it: unescaped, U+FFFD as a space, "" when undecodable."""
    unescaped = unescape(raw)
    if unescaped is None:
        return ""
    text = unescaped.decode("utf-8", "replace")
    return text.replace("\ufffd", " ") if "\ufffd" in text else text


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# --- the fast path -------------------------------------------------------------------------------

Members = list[tuple[str, Any]]  # an object's members in order, as the fast decoder returns them


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: the scanner calls these an unknown value type


# Python's C decoder, set to keep numbers as written and an object's members in order (repeated
# keys too): a nested object comes back as a list of (key, value) tuples, an array as a list.
_DECODER = stdjson.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_reject_constant,
                               object_pairs_hook=list)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


_SCAN_ONCE = _DECODER.scan_once  # type: ignore[attr-defined]  # the C scanner itself: skips decode()'s Python wrappers (2 µs a line)
_JSON_SPACE = " \t\n\r"


def decode_members(line: str) -> Members | None:
    """The members of the object the line holds, when the fast decoder must read it as the scanner
    does (valid JSON, no UTF-16 surrogate escapes); else None."""
    start = 0
    if line[:1] != "{":
        stripped = line.lstrip(_JSON_SPACE)
        if stripped[:1] != "{":
            return None
        start = len(line) - len(stripped)
    if "\\u" in line and _SURROGATE_ESCAPE.search(line):
        return None  # Python keeps a lone surrogate, the scanner does not
    try:
        members, end = _SCAN_ONCE(line, start)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(line) and line[end:].strip(_JSON_SPACE):
        return None  # text after the object: the scanner ignores it, Python does not
    return members  # type: ignore[no-any-return]


def _is_object(value: list[Any]) -> bool:
    return bool(value) and type(value[0]) is tuple


def _text(value: str) -> str:
    return value.replace("\ufffd", " ") if "\ufffd" in value else value


# --- `| json` --------------------------------------------------------------------------------------

_UNSEEN = object()


class _Fields:
    """`| json` over one batch: the columns being filled, and the label name of every key seen."""

    def __init__(self, n: int, existing: set[str]) -> None:
        self.n = n
        self.existing = existing
        self.columns: dict[str, list[str | None]] = {}
        self.names: dict[tuple[tuple[str, ...], str], str | None] = {}

    def put(self, i: int, name: str, text: str) -> None:
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = [None] * self.n
        if column[i] is None:  # the first of two equal names wins
            column[i] = text

    def name_of(self, prefix: tuple[str, ...], key: str) -> str | None:
        name = self.names.get((prefix, key), _UNSEEN)
        if name is _UNSEEN:
            name = self.names[(prefix, key)] = _field_name(prefix, key, self.existing)
        return name  # type: ignore[return-value]

    def shaped(self, keys: tuple[str, ...], rows: list[int], values: list[tuple[Any, ...]]) -> None:
        """Fill the lines `rows`, whose objects have the same keys in the same order, a key at a
        time over all of them (zip transposes them in C), keys in document order so that the
        first of two equal names wins as in `fast`."""
        for key, column in zip(keys, zip(*values, strict=True), strict=True):
            name = self.name_of((), key)
            kinds = set(map(type, column))
            if kinds == {str}:
                if name is not None:
                    self.put_many(name, rows, column)
                continue
            for i, value in zip(rows, column, strict=True):  # mixed kinds: as `fast` does
                self.fast(i, [(key, value)])

    def put_many(self, name: str, rows: list[int], texts: tuple[str, ...]) -> None:
        column = self.columns.get(name)
        if column is None and len(rows) == self.n:  # every line, in order
            self.columns[name] = list(texts)
            return
        if column is None:
            column = self.columns[name] = [None] * self.n
        for i, text in zip(rows, texts, strict=True):
            if column[i] is None:
                column[i] = text

    def fast(self, i: int, members: Members, prefix: tuple[str, ...] = ()) -> None:
        """Fill line `i` from its decoded members, in document order (so the first name wins).

        Done line by line, right after decoding: filling column by column over the whole batch
        was measured 2× slower (the decoded objects are no longer in the CPU cache by then).
        """
        columns, n = self.columns, self.n
        for key, value in members:
            kind = type(value)
            if kind is str:
                text = value
            elif kind is list:
                if value and type(value[0]) is tuple:
                    self.fast(i, value, (*prefix, key))
                continue  # arrays give no label
            elif kind is bool:
                text = "true" if value else "false"
            else:
                continue  # null
            name = self.names.get((prefix, key), _UNSEEN)
            if name is _UNSEEN:
                name = self.names[(prefix, key)] = _field_name(prefix, key, self.existing)
            if name is None:
                continue
            column = columns.get(name)  # type: ignore[call-overload]
            if column is None:
                column = columns[name] = [None] * n  # type: ignore[index]
            if column[i] is None:  # the first of two equal names wins
                column[i] = text


def _field_name(prefix: tuple[str, ...], key: str, existing: set[str]) -> str | None:
    """The label name of a field (None: skip it). A nested field whose parts are all blank is
    named "", as in Loki; a blank top-level key is skipped."""
    if not prefix:
        name = sanitize(key)
        return dedupe(name, existing) if name else None
    name = sanitize_path((*prefix, key))
    if name in existing:
        name = sanitize_path((*prefix, key + DUPLICATE_SUFFIX))
    return name


def _fields_scanned(data: bytes, row: Row, existing: set[str]) -> str | None:
    """Extract every field with the scanner; returns the error details, or None."""
    prefix: list[str] = []

    def visit(key: bytes, value: bytes, kind: str) -> None:
        if kind == OBJECT:
            prefix.append(_decode(key))
            try:
                object_each(value, visit)
            finally:
                prefix.pop()
            return
        if kind == STRING:
            text = string_value(value)
        elif kind in (NUMBER, BOOLEAN):
            text = _decode(value)
        else:
            return
        name = _field_name(tuple(prefix), _decode(key), existing)
        if name is not None and name not in row:
            row[name] = text

    try:
        object_each(data, visit)
    except JsonScanError as exc:
        return str(exc)
    return None


def _all_fields(lines: list[str | None], existing: set[str]) -> Parsed:
    n = len(lines)
    fields = _Fields(n, existing)
    details: list[str | None] = [None] * n
    shapes: dict[tuple[str, ...], tuple[list[int], list[tuple[Any, ...]]]] = {}
    for i, line in enumerate(lines):
        if line is None:
            continue
        members = decode_members(line)
        if members is not None:
            if members:  # lines of one shape (the same keys in order) are filled together
                keys, member_values = zip(*members, strict=True)
                shape = shapes.get(keys)
                if shape is None:
                    shape = shapes[keys] = ([], [])
                shape[0].append(i)
                shape[1].append(member_values)
            continue
        row: Row = {}
        details[i] = _fields_scanned(line.encode("utf-8", "surrogateescape"), row, existing)
        for name, text in row.items():
            fields.put(i, name, text)
    for keys, (rows, shaped_values) in shapes.items():
        fields.shaped(keys, rows, shaped_values)
    errors = [None if d is None else JSON_ERROR for d in details]
    parsed = from_columns(fields.columns, n, errors, details)
    for name, column in parsed.columns.items():  # Loki turns U+FFFD in a string value into a space
        parsed.columns[name] = pc.replace_substring(column, "\ufffd", " ")
    return parsed


# --- `| json a="b.c"` ------------------------------------------------------------------------------

PathPart = str | int
_PATH_TOKEN = re.compile(r'[ \t\n]*(?:(?P<field>[A-Za-z_][A-Za-z0-9_]*)|\[[ \t\n]*(?:"(?P<key>[^"\]]*)"|(?P<index>[0-9]+))[ \t\n]*\]|(?P<dot>\.))')


def parse_path(expression: str) -> tuple[PathPart, ...]:
    """`a.b[0]["c d"]` → ("a", "b", 0, "c d"), Loki's JSON expression syntax.

    Raises ParseError("cannot parse expression [...]") as Loki does for anything else.
    """
    parts: list[PathPart] = []
    pos, after_dot = 0, False
    while pos < len(expression.rstrip(" \t\n")):
        m = _PATH_TOKEN.match(expression, pos)
        if m is None:
            raise ParseError(f"cannot parse expression [{expression}]: syntax error")
        pos = m.end()
        if m["dot"]:
            if not parts or after_dot:
                raise ParseError(f"cannot parse expression [{expression}]: syntax error")
            after_dot = True
            continue
        if m["field"] is not None:
            if parts and not after_dot:
                raise ParseError(f"cannot parse expression [{expression}]: syntax error")
            parts.append(m["field"])
        elif after_dot:
            raise ParseError(f"cannot parse expression [{expression}]: syntax error")
        elif m["index"] is not None:
            parts.append(int(m["index"]))
        else:
            parts.append(m["key"])
        after_dot = False
    if not parts or after_dot:
        raise ParseError(f"cannot parse expression [{expression}]: syntax error")
    return tuple(parts)


class _NeedsScanner(Exception):
    """The value is an object or array, whose text as written only the scanner has."""


def _lookup_fast(members: Members, path: tuple[PathPart, ...]) -> str | None:
    value: Any = members
    for part in path:
        if type(value) is not list:
            return None
        if isinstance(part, int):
            if _is_object(value) or part >= len(value):
                return None
            value = value[part]
        else:
            if value and not _is_object(value):
                return None
            value = next((v for k, v in value if k == part), _MISSING)
            if value is _MISSING:
                return None
    if type(value) is str:
        return _text(value)
    if value is None:
        return ""
    if type(value) is bool:
        return "true" if value else "false"
    raise _NeedsScanner


_MISSING = object()


class _ValueFault(Exception):
    """The wanted member was found but its value could not be read: Loki reports this one."""


def _lookup_scanned(data: bytes, path: tuple[PathPart, ...]) -> str | None:
    """Follow `path` through the raw text. A fault on the way counts as not found (an
    approximation: Loki's key search skips over some faults this walk stops at); a fault in
    reading the wanted value itself raises _ValueFault with the scanner's text."""
    value, kind = data, ARRAY if data.lstrip()[:1] == b"[" else OBJECT
    try:
        for depth, part in enumerate(path, 1):
            if isinstance(part, int):
                if kind != ARRAY:
                    return None
                elements = array_elements(value)
                if part >= len(elements):
                    return None
                value, kind = elements[part]
            else:
                if kind != OBJECT:
                    return None
                found = _first_member(value, part.encode(), depth == len(path))
                if found is None:
                    return None
                value, kind = found
    except JsonScanError:
        return None
    if kind == NULL:
        return ""
    if kind == OBJECT:
        return _decode(value)
    return string_value(value)


class _Found(Exception):
    def __init__(self, value: bytes, kind: str) -> None:
        self.value, self.kind = value, kind


def _first_member(data: bytes, key: bytes, last: bool) -> tuple[bytes, str] | None:
    at_key = False

    def before(k: bytes) -> None:
        nonlocal at_key
        at_key = k == key

    def visit(k: bytes, value: bytes, kind: str) -> None:
        if k == key:
            raise _Found(value, kind)

    try:
        object_each(data, visit, before)
    except _Found as found:
        return found.value, found.kind
    except JsonScanError as exc:
        if at_key and last:
            raise _ValueFault(str(exc)) from None
        raise
    return None


def _selected_fields(lines: list[str | None], node: ast.JsonParser, existing: set[str],
                     present: frozenset[str]) -> Parsed:
    targets = [(e.name, parse_path(e.expression or e.name)) for e in node.extractions]
    rows: list[Row | None] = []
    errors: list[str | None] = []
    details: list[str | None] = []
    for line in lines:
        if not line:  # Loki leaves an empty line alone
            rows.append(None)
            errors.append(None)
            details.append(None)
            continue
        if line[0] not in '"{[':  # an error without details, as in Loki
            rows.append(None)
            errors.append(JSON_ERROR)
            details.append(None)
            continue
        row: Row = {}
        detail = None
        members = decode_members(line)
        data = None
        for name, path in targets:
            value = None
            try:
                if members is not None:
                    try:
                        value = _lookup_fast(members, path)
                    except _NeedsScanner:
                        data = data or line.encode("utf-8", "surrogateescape")
                        value = _lookup_scanned(data, path)
                else:
                    data = data or line.encode("utf-8", "surrogateescape")
                    value = _lookup_scanned(data, path)
            except _ValueFault as fault:
                detail = str(fault)
            if value is not None:
                row[dedupe(name, existing)] = value
        for name, _ in targets:  # Loki gives every wanted label the line lacks, "" when not found
            if name not in existing and name not in present and name not in row:
                row[name] = ""
        rows.append(row)
        errors.append(None if detail is None else JSON_ERROR)
        details.append(detail)
    return build(rows, errors, details)


def parse_json(lines: pa.StringArray, node: ast.JsonParser, existing: set[str],
               present: frozenset[str] = frozenset()) -> Parsed:
    """`| json` (every field) or `| json name="path", …` (only these) over a batch of lines;
    `present`: names earlier parser stages set on these lines."""
    values: list[str | None] = lines.to_pylist()
    if node.extractions:
        return _selected_fields(values, node, existing, present)
    return _all_fields(values, existing)
