"""`| unpack`: lines packed by Promtail's `pack` stage, `{"_entry": "<line>", "<label>": "<value>", …}`.

As Loki does it: a line not starting with `{` gets `__error__=JSONParserErr` ("expecting json
object(6), but it is not"); every string member becomes a label (other types are ignored) and
`_entry` replaces the line, but only when the line has an `_entry`, else it keeps its line and
gets no labels. For two equal keys the last one wins. The `_extracted` suffix is decided on the
key as written, the name is sanitised after. A JSON fault gives `JSONParserErr` with the scanner's
text and leaves the line and labels alone.
"""

from __future__ import annotations

import orjson
import pyarrow as pa

from lokiarrow.exec.parsers import Parsed, Row, build
from lokiarrow.exec.parsers.json import (
    _SURROGATE_ESCAPE,
    JSON_ERROR,
    MALFORMED_ESCAPE,
    STRING,
    JsonScanError,
    object_each,
    string_value,
    unescape,
)
from lokiarrow.exec.parsers.names import dedupe, sanitize
from lokiarrow.logql import ast

PACKED_ENTRY_KEY = "_entry"
NOT_AN_OBJECT = "expecting json object(6), but it is not"


def _members_fast(line: str) -> list[tuple[str, str]] | None:
    """The string members by orjson, when it reads the line as the scanner does (valid JSON, an
    object; two equal keys keep the last value in both)."""
    if "\\u" in line and _SURROGATE_ESCAPE.search(line):
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    return [(k, v.replace("\ufffd", " ") if "\ufffd" in v and k != PACKED_ENTRY_KEY else v)
            for k, v in obj.items() if type(v) is str]


def _members_scanned(line: str) -> list[tuple[str, str]]:
    """The string members of the line, in order (raises JsonScanError)."""
    members: list[tuple[str, str]] = []

    def visit(key: bytes, value: bytes, kind: str) -> None:
        if kind != STRING:
            return
        name = key.decode("utf-8", "replace")
        if name == PACKED_ENTRY_KEY:
            raw = unescape(value)
            if raw is None:
                raise JsonScanError(MALFORMED_ESCAPE)
            members.append((name, raw.decode("utf-8", "replace")))
        else:
            members.append((name, string_value(value)))

    object_each(line.encode("utf-8", "surrogateescape"), visit)
    return members


def parse_unpack(lines: pa.StringArray, node: ast.UnpackParser, existing: set[str]) -> Parsed:
    """`| unpack` over a batch of lines; `Parsed.line` holds the unpacked lines."""
    rows: list[Row | None] = []
    errors: list[str | None] = []
    details: list[str | None] = []
    out: list[str | None] = []
    for line in lines.to_pylist():
        row: Row = {}
        error = detail = None
        entry = line
        if line:
            if line[0] != "{":
                error, detail = JSON_ERROR, NOT_AN_OBJECT
            else:
                members = _members_fast(line)
                if members is None:
                    try:
                        members = _members_scanned(line)
                    except JsonScanError as exc:
                        error, detail = JSON_ERROR, str(exc)
                        members = []
                packed = False
                for key, value in members:
                    if key == PACKED_ENTRY_KEY:
                        entry, packed = value, True
                        continue
                    name = sanitize(dedupe(key, existing))
                    if name:
                        row[name] = value
                if not packed:
                    row = {}
        rows.append(row or None)
        errors.append(error)
        details.append(detail)
        out.append(entry)
    return build(rows, errors, details, line=out)
