from __future__ import annotations

import pyarrow as pa
import pytest

from lokiarrow.exec.parsers import parse
from lokiarrow.logql import ast


@pytest.mark.parametrize(("line", "want"), [
    ("\x1b[0;32mINFO\x1b[0m ok", "INFO ok"),
    ("\x1b[1;31;40mred\x1b[0m", "red"),
    ("\x1b[38;5;196mx\x1b[K", "x"),
    ("\x1b]0;title\x07text", "text"),
    ("\u009b31mcsi", "csi"),
    ("plain [0m text", "plain [0m text"),
    ("", ""),
])
def test_decolorize(line: str, want: str) -> None:
    parsed = parse(pa.array([line, None]), ast.Decolorize(), set())
    assert parsed.columns == {}
    assert parsed.line is not None
    assert parsed.line.to_pylist() == [want, None]
    assert parsed.error.null_count == 2
