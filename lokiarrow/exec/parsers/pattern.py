"""`| pattern "<ip> - <_> <status>"`: Loki's pattern expressions.

A pattern is literals and captures (`<name>`, or `<_>` to skip). Matching, as Loki does it:
1. A leading literal must start the line, else the line gets no labels.
2. Each capture takes the text up to the next occurrence of the literal after it; when that
   literal is missing, the capture takes the rest of the line and matching stops there.
3. A final capture takes the rest of the line; a final literal is only searched for.
Only the captures reached get labels (names suffixed with `_extracted` when they shadow a label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from lokiarrow.errors import ParseError
from lokiarrow.exec.parsers import Parsed, Row, build
from lokiarrow.exec.parsers.names import dedupe
from lokiarrow.logql import ast

_CAPTURE = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


@dataclass(frozen=True)
class Capture:
    name: str

    @property
    def unnamed(self) -> bool:
        return self.name == "_"


Node = Capture | str


def compile_pattern(pattern: str) -> list[Node]:
    """The nodes of a pattern, validated as Loki validates them (ParseError with its texts)."""
    nodes: list[Node] = []
    pos = 0
    for m in _CAPTURE.finditer(pattern):
        if m.start() > pos:
            nodes.append(pattern[pos:m.start()])
        nodes.append(Capture(m[1]))
        pos = m.end()
    if pos < len(pattern):
        nodes.append(pattern[pos:])
    names = [n.name for n in nodes if isinstance(n, Capture) and not n.unnamed]
    if not names:
        raise ParseError("at least one capture is required")
    for a, b in zip(nodes, nodes[1:], strict=False):
        if isinstance(a, Capture) and isinstance(b, Capture):
            raise ParseError(f"found consecutive capture '<{a.name}><{b.name}>': invalid expression")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ParseError(f"duplicate capture name ({name}): invalid expression")
        seen.add(name)
    return nodes


def match(nodes: list[Node], line: str) -> list[str]:
    """The values of the named captures reached in `line`, in order."""
    if not line or not nodes:
        return []
    out: list[str] = []
    i = 0
    if isinstance(nodes[0], str):
        if not line.startswith(nodes[0]):
            return []
        i = 1
        line = line[len(nodes[0]):]
    if i == len(nodes):
        return []
    while i < len(nodes):
        capture = nodes[i]
        assert isinstance(capture, Capture)
        if i + 1 == len(nodes):
            if not capture.unnamed:
                out.append(line)
            return out
        literal = nodes[i + 1]
        assert isinstance(literal, str)
        i += 2
        at = line.find(literal)
        if at == -1:
            if not capture.unnamed:
                out.append(line)
            return out
        if not capture.unnamed:
            out.append(line[:at])
        line = line[at + len(literal):]
    return out


def parse_pattern(lines: pa.StringArray, node: ast.PatternParser, existing: set[str]) -> Parsed:
    """`| pattern` over a batch of lines."""
    nodes = compile_pattern(node.pattern)
    names = [dedupe(n.name, existing) for n in nodes if isinstance(n, Capture) and not n.unnamed]
    rows: list[Row | None] = []
    for line in lines.to_pylist():
        values = match(nodes, line) if line is not None else []
        rows.append(dict(zip(names, values, strict=False)) or None)
    return build(rows)
