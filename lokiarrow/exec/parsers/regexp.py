"""`| regexp "(?P<name>…)"`: the named groups of the first (unanchored) match become labels.

A line that does not match gets no labels and no error; a named group that took no part in the
match gives "" (Loki sets it all the same). Names are sanitised and suffixed like every parser's.
When every group is named, Arrow's RE2 `extract_regex` does the batch at once; otherwise each line
goes through the `re2` module (the same engine, Go's dialect).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import re2

from lokiarrow.errors import ParseError
from lokiarrow.exec.parsers import Parsed, Row, build, string_array
from lokiarrow.exec.parsers.names import dedupe, sanitize
from lokiarrow.logql import ast
from lokiarrow.model import QUIET_RE2, go_regex_error

MISSING_CAPTURE = "at least one named capture must be supplied"


def compile_parser(pattern: str) -> tuple[re2._Regexp, list[tuple[int, str]]]:
    """The compiled regex and its named groups (index, name), or ParseError with Loki's text."""
    try:
        regex = re2.compile(pattern, QUIET_RE2)
    except re2.error as exc:
        raise ParseError(f"error parsing regexp: {go_regex_error(str(exc), pattern)}") from None
    groups = sorted((index, name) for name, index in regex.groupindex.items())
    seen: set[str] = set()
    for _, name in groups:
        if name in seen:
            raise ParseError(f"duplicate extracted label name '{name}'")
        seen.add(name)
    if not groups:
        raise ParseError(MISSING_CAPTURE)
    return regex, groups


def parse_regexp(lines: pa.StringArray, node: ast.RegexpParser, existing: set[str]) -> Parsed:
    """`| regexp` over a batch of lines."""
    regex, groups = compile_parser(node.pattern)
    targets: list[tuple[int, str, str]] = []  # (group index, group name, label name)
    taken: set[str] = set()
    for index, group in groups:
        name = sanitize(group)
        if name:
            name = dedupe(name, existing)
            if name not in taken:  # two groups sanitised alike: the first wins
                taken.add(name)
                targets.append((index, group, name))
    lines = string_array(lines)
    n = len(lines)
    if regex.groups == len(groups):  # all groups named: Arrow can do it
        try:
            found = pc.extract_regex(lines, node.pattern)
        except pa.ArrowInvalid:  # a syntax Arrow's RE2 lacks, such as `(?<name>…)`
            pass
        else:
            matched = found.is_valid()
            columns = {name: pc.if_else(matched, found.field(group), None) for _, group, name in targets}
            return Parsed(columns=columns, error=pa.nulls(n, pa.string()), error_details=pa.nulls(n, pa.string()))
    rows: list[Row | None] = []
    for line in lines.to_pylist():
        m = None if line is None else regex.search(line)
        rows.append(None if m is None else {name: m.group(index) or "" for index, _, name in targets})
    return build(rows)
