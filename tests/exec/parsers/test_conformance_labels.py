"""The parsers against real Loki answers: every recorded log query of the form
`{selector} | <parser> [| label filters…]` names, in each returned stream's labels, exactly what the
parser extracted from that stream's lines (plus the stream labels and metadata). Run the parser
over the same lines from the data set and compare label sets line by line."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pytest

from lokiarrow.exec.parsers import Parsed, parse
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr
from tests.conformance.harness import load_jsonl

PARSERS = (ast.JsonParser, ast.LogfmtParser, ast.RegexpParser, ast.PatternParser, ast.UnpackParser)
SERVICE_KEYS = ("service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
                "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name")

Entry = tuple[str, dict[str, str], dict[str, str]]  # line, stream labels (with service_name), metadata


def _entries() -> dict[str, list[Entry]]:
    """Data-set entries by timestamp."""
    index: dict[str, list[Entry]] = defaultdict(list)
    for push in load_jsonl("data.jsonl.gz"):
        labels = dict(push["labels"])
        if "service_name" not in labels:
            labels["service_name"] = next((labels[k] for k in SERVICE_KEYS if k in labels), "unknown_service")
        for entry in push["entries"]:
            meta = entry[2] if len(entry) > 2 else {}
            index[entry[0]].append((entry[1], labels, meta))
    return index


def _parser_cases() -> list[tuple[str, ast.LogExpr, dict[str, Any]]]:
    out = []
    for case in load_jsonl("cases.jsonl.gz"):
        if case["endpoint"] != "query_range" or case["expected"].get("resultType") != "streams":
            continue
        expr = parse_expr(case["params"]["query"])
        if not isinstance(expr, ast.LogExpr):
            continue
        stages = expr.stages
        while stages and isinstance(stages[0], ast.Decolorize | ast.LineFilter):
            stages = stages[1:]
        if (len(stages) >= 1 and isinstance(stages[0], PARSERS)
                and all(isinstance(s, ast.LabelFilterStage | ast.LineFilter) for s in stages[1:])):
            out.append((case["id"], expr, case["expected"]))
    return out


CASES = _parser_cases()
ENTRIES = _entries()


def test_cases_found() -> None:
    kinds = {type(next(s for s in e.stages if isinstance(s, PARSERS))).__name__ for _, e, _ in CASES}
    assert kinds == {"JsonParser", "LogfmtParser", "RegexpParser", "PatternParser", "UnpackParser"}
    assert len(CASES) >= 40


def _decolorize(line: str) -> str:
    return str(parse(pa.array([line]), ast.Decolorize(), set()).line[0])  # type: ignore[index]


def _row(parsed: Parsed, i: int) -> dict[str, str]:
    row = {name: col[i].as_py() for name, col in parsed.columns.items() if col[i].is_valid}
    if parsed.error[i].is_valid:
        row["__error__"] = parsed.error[i].as_py()
    if parsed.error_details[i].is_valid:
        row["__error_details__"] = parsed.error_details[i].as_py()
    return row


@pytest.mark.parametrize(("case_id", "expr", "expected"), CASES, ids=[c[0] for c in CASES])
def test_parsed_labels_match_loki(case_id: str, expr: ast.LogExpr, expected: dict[str, Any]) -> None:
    checked = 0
    decolorized = any(isinstance(s, ast.Decolorize) for s in expr.stages)
    for stream in expected["result"]:
        got_labels: dict[str, str] = stream["stream"]
        for ts, line in stream["values"]:
            candidates = [(raw, lab, meta) for raw, lab, meta in ENTRIES[ts]
                          if (raw == line or (decolorized and _decolorize(raw) == line))
                          and all(got_labels.get(k) == v for k, v in lab.items())
                          and all(got_labels.get(k) == v for k, v in meta.items())]
            assert candidates, f"{case_id}: no data entry for {ts}"
            raw, labels, meta = candidates[0]
            existing = set(labels) | set(meta) | {"detected_level"}
            current = pa.array([raw], pa.string())
            produced: dict[str, str] = {}
            for stage in expr.stages:
                if isinstance(stage, ast.Decolorize | ast.JsonParser | ast.LogfmtParser | ast.RegexpParser
                              | ast.PatternParser | ast.UnpackParser):
                    parsed = parse(current, stage, existing)
                    for name, value in _row(parsed, 0).items():
                        produced.setdefault(name, value)  # an earlier stage's label wins
                    if parsed.line is not None:
                        current = parsed.line
            assert current[0].as_py() == line
            want = {k: v for k, v in got_labels.items() if k not in existing}
            assert produced == want, f"{case_id}: line {line!r}"
            checked += 1
    assert checked == sum(len(s["values"]) for s in expected["result"])
