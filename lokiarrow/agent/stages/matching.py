"""Promtail's `match` stage: a LogQL selector, with optional line and label filters, decides
per entry whether nested stages run (`action: keep`) or the entry is dropped (`action: drop`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import re2

from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.agent.stages import Builder, Pipeline, build
from lokiarrow.errors import LokiError
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_log_selector
from lokiarrow.model import QUIET_RE2

Test = Callable[[Entry], bool]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _line_test(stage: ast.LineFilter) -> Test:
    if stage.ip or stage.op in ("|>", "!>"):
        raise ValueError(f"line filter {stage.op} is not supported in a match selector")
    if stage.op in ("|~", "!~"):
        regexes = [re2.compile(v, QUIET_RE2) for v in stage.values]
        hit: Test = lambda e: any(r.search(e.line) is not None for r in regexes)  # noqa: E731
    else:
        hit = lambda e: any(v in e.line for v in stage.values)  # noqa: E731
    return hit if stage.op[0] == "|" else (lambda e: not hit(e))


def _label_test(node: ast.LabelFilter) -> Test:
    if isinstance(node, ast.AndFilter):
        left, right = _label_test(node.left), _label_test(node.right)
        return lambda e: left(e) and right(e)
    if isinstance(node, ast.OrFilter):
        left, right = _label_test(node.left), _label_test(node.right)
        return lambda e: left(e) or right(e)
    if isinstance(node, ast.LabelMatch):
        matcher = node.matcher
        return lambda e: matcher.matches_labels(e.labels)
    if isinstance(node, ast.NumberFilter):
        name, compare, value = node.name, _COMPARE[node.op], node.value
        return lambda e: _number(e.labels.get(name)) is not None and compare(
            _number(e.labels.get(name)) or 0.0, value)
    raise ValueError(f"label filter {type(node).__name__} is not supported in a match selector")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def selector_test(text: str) -> Test:
    """The selector as one predicate on an entry's labels and line (ValueError if unusable)."""
    try:
        expr = parse_log_selector(text, validate=False)   # as Promtail: no query-only checks
    except LokiError as exc:
        raise ValueError(f"invalid selector syntax for match stage: {exc}") from None
    matchers = expr.matchers
    tests: list[Test] = [lambda e: all(m.matches_labels(e.labels) for m in matchers)]
    for stage in expr.stages:
        if isinstance(stage, ast.LineFilter):
            tests.append(_line_test(stage))
        elif isinstance(stage, ast.LabelFilterStage):
            tests.append(_label_test(stage.filter))
        else:
            raise ValueError(f"{type(stage).__name__} is not supported in a match selector")
    return lambda e: all(test(e) for test in tests)


class Match:
    """`match`: entries the selector selects go through the nested stages (or are dropped);
    the others pass unchanged."""

    def __init__(self, section: Section) -> None:
        selector = section.string("selector")
        self.action = section.string("action") or "keep"
        self.reason = section.string("drop_counter_reason") or "match_stage"
        self.pipeline_name = section.string("pipeline_name")
        items = section.sections("stages")
        section.done()
        if self.pipeline_name == "":
            raise ConfigError(section.at("pipeline_name"), "match stage pipeline name can be "
                              "omitted but cannot be an empty string")
        if not selector:
            raise ConfigError(section.at("selector"), "selector statement required for match stage")
        if self.action not in ("keep", "drop"):
            raise ConfigError(section.at("action"), "match stage action should be 'keep' or 'drop'")
        if self.action == "keep" and not items:
            raise ConfigError(section.at("stages"), "match stage requires at least one additional "
                              "stage to be defined in '- stages'")
        if self.action == "drop" and items:
            raise ConfigError(section.at("stages"),
                              "match stage configured to drop entries cannot contains stages")
        try:
            self.test = selector_test(selector)
        except ValueError as exc:
            raise ConfigError(section.at("selector"), str(exc)) from None
        self.pipeline: Pipeline = build(items, section.at("stages"))
        self.dropped = 0

    def process(self, entry: Entry) -> list[Entry]:
        if not self.test(entry):
            return [entry]
        if self.action == "drop":
            self.dropped += 1
            return []
        return self.pipeline.process(entry)

    def flush(self, now_ns: int) -> list[Entry]:
        return self.pipeline.flush(now_ns)

    def held_origins(self) -> list[Any]:
        return self.pipeline.held_origins()


BUILDERS: dict[str, Builder] = {"match": Match}
