"""Property-based fuzzing of every parser and decoder that takes user input (generators.py): each
input must end in the target's documented errors only, within 1 s."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lokiarrow.agent.config import parse as parse_agent_config
from lokiarrow.agent.settings import ConfigError
from lokiarrow.errors import LokiError
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr
from lokiarrow.logql.template import TemplateExecError, compile_template
from lokiarrow.wire.push_json import decode_json
from tests.fuzz.generators import TARGETS
from tests.fuzz.regressions import REGRESSIONS

MAX_SECONDS = 1.0   # an input slower than this is a hang
EXAMPLES = {"logql_parser": 1000, "logql_query": 400, "push_json": 600, "push_protobuf": 600, "push_otlp": 600,
            "template": 1000, "promtail_config": 250, "pipeline_stages": 600}


def run_timed(name: str, item: Any) -> None:
    started = time.perf_counter()
    TARGETS[name].check(item)
    took = time.perf_counter() - started
    assert took < MAX_SECONDS, f"{name} took {took:.2f} s on {item!r}"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_generated_inputs_keep_the_contract(name: str) -> None:
    @settings(max_examples=EXAMPLES[name], deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.randoms(use_true_random=False))
    def fuzz(rnd: random.Random) -> None:
        run_timed(name, TARGETS[name].make(rnd))

    fuzz()


@pytest.mark.parametrize(("name", "item"), REGRESSIONS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(REGRESSIONS)])
def test_found_inputs_keep_the_contract(name: str, item: Any) -> None:
    run_timed(name, item)


def test_the_generators_reach_past_the_parsers() -> None:
    """Most fuzzed queries must parse, or the fuzzing would only test syntax errors."""
    parsed = 0
    for seed in range(300):
        try:
            parse_expr(TARGETS["logql_parser"].make(random.Random(seed)))
            parsed += 1
        except LokiError:
            pass
    assert parsed > 75   # a quarter at least


FIXED_ERRORS = [
    # (what, input, the error it now gives)
    ("regex not UTF-8", lambda: parse_expr('{app=~"\\x99"}'), "parse error : error parsing regexp: invalid UTF-8: `\ufffd`"),
    ("regexp parser not UTF-8", lambda: parse_expr('{app="a"} | regexp "a\\xff"'),
     "parse error : invalid regexp parser: error parsing regexp: invalid UTF-8: `a\ufffd`"),
    ("stage given a list", lambda: parse_agent_config("scrape_configs:\n- job_name: a\n  pipeline_stages:\n  - limit: [1]\n"),
     "scrape_configs[0].pipeline_stages[0].limit: must be a mapping, not list"),
    ("char constant of two characters", lambda: compile_template("{{ 'ab' }}"),
     "template: line:1: malformed character constant: 'ab'"),
    ("null line in JSON push", lambda: decode_json(b'{"streams":[{"stream":{"a":"1"},"values":[["0",null]]}]}'),
     "cannot parse push request: streams[0].values[0]: the log line must be a string"),
    ("repeat too long", lambda: compile_template('{{ repeat 100000000 "ab" }}').render({}),
     'template: line:1:3: executing "line" at <repeat>: error calling repeat: cannot build a string of 200000000 '
     "characters: the limit is 67108864"),
    ("decimal of infinity", lambda: compile_template("{{ subf .a 1 }}").render({"a": "1e400"}),
     'template: line:1:3: executing "line" at <subf>: error calling subf: Cannot create a Decimal from +Inf'),
]


@pytest.mark.parametrize(("what", "run", "message"), FIXED_ERRORS, ids=[c[0] for c in FIXED_ERRORS])
def test_fixed_inputs_fail_with_a_clear_message(what: str, run: Callable[[], object], message: str) -> None:
    with pytest.raises((LokiError, TemplateExecError, ConfigError)) as err:
        run()
    assert str(err.value) == message


@pytest.mark.parametrize(("template", "data", "expected"), [
    ("{{ ceil .a }} {{ floor .a }} {{ round .a 1 }}", {"a": "1e400"}, "+Inf +Inf +Inf"),
    ("{{ ceil .a }} {{ round 1.5 -400 }}", {"a": "NaN"}, "NaN NaN"),
    ('{{ len "\\x99" }} {{ b64enc "\\x99" }} {{ urlencode "\\x99" }} {{ "\\x99" }}', {}, "1 mQ== %99 \ufffd"),
    ("{{ '\\xff' }}", {}, "255"),
])
def test_fixed_templates_render_as_go_does(template: str, data: dict[str, str], expected: str) -> None:
    assert compile_template(template).render(data) == expected


def test_a_filter_for_bytes_that_are_not_utf8_looks_for_what_the_store_keeps() -> None:
    expr = parse_expr('{app="a"} |= "\\x99" | line_format "b\\xff"')
    assert isinstance(expr, ast.LogExpr)
    assert expr.stages == (ast.LineFilter("|=", ("\ufffd",), False, 10), ast.LineFormat("b\ufffd", 22))
