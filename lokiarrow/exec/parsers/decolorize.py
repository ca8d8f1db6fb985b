"""`| decolorize`: ANSI escape sequences removed from each line, with the expression Loki uses
(that of github.com/acarl005/stripansi), run by Arrow's RE2 over the whole batch."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.exec.parsers import Parsed, string_array
from lokiarrow.logql import ast

ANSI_PATTERN = (
    "[\u001b\u009b][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u0007)"
    "|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))"
)


def parse_decolorize(lines: pa.StringArray, node: ast.Decolorize, existing: set[str]) -> Parsed:
    """The lines without colour codes; no labels, no errors."""
    lines = string_array(lines)
    n = len(lines)
    cleaned = pc.replace_substring_regex(lines, ANSI_PATTERN, "")
    return Parsed(columns={}, error=pa.nulls(n, pa.string()), error_details=pa.nulls(n, pa.string()),
                  line=cleaned)
