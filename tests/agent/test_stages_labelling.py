"""Promtail's labelling and flow stages, built from YAML as in a scrape config."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.agent.stages import Pipeline, build, limits
from lokiarrow.agent.stages.labelling import BUILDERS, packed, to_string


def pipeline(text: str) -> Pipeline:
    value = yaml.safe_load(text)
    return build([Section(item, f"pipeline_stages[{i}]") for i, item in enumerate(value)])


def entry(line: str = "line", labels: dict[str, str] | None = None, **extracted: Any) -> Entry:
    return Entry(labels=dict(labels or {"job": "app"}), ts=1_000, line=line, extracted=extracted)


def run(text: str, e: Entry) -> list[Entry]:
    return pipeline(text).process(e)


@pytest.mark.parametrize(("value", "text"), [
    ("x", "x"), (True, "true"), (3, "3"), (1.5, "1.5"), (1e21, "1000000000000000000000"),
    (2.0, "2"), ({"a": 1}, None), (None, None), ([1], None),
])
def test_to_string_as_promtail(value: Any, text: str | None) -> None:
    assert to_string(value) == text


def test_labels_from_extracted_with_missing_and_unconvertible_skipped() -> None:
    stages = """
- labels: {level: "", component: comp, missing: "", obj: obj, code: code}
"""
    [out] = run(stages, entry(level="error", comp="db", obj={"x": 1}, code=404))
    assert out.labels == {"job": "app", "level": "error", "component": "db", "code": "404"}


def test_labels_empty_value_is_no_label() -> None:
    [out] = run("- labels: {level:, job:}", entry(level="", job=""))
    assert out.labels == {}


def test_labels_copy_another_label() -> None:
    [out] = run("- labels: {service: job}", entry())
    assert out.labels == {"job": "app", "service": "app"}


@pytest.mark.parametrize(("stages", "error"), [
    ("- labels: {}", "pipeline_stages[0].labels: label stage config cannot be empty"),
    ("- labels: {1bad: x}", "pipeline_stages[0].labels.1bad: invalid label name: 1bad"),
    ("- labels: {a-b: x}", "pipeline_stages[0].labels.a-b: invalid label name: a-b"),
    ("- static_labels: {}", "pipeline_stages[0].static_labels: static_labels stage config cannot be empty"),
    ("- static_labels: {'x y': a}", "pipeline_stages[0].static_labels.x y: invalid label name: x y"),
    ("- structured_metadata: {}",
     "pipeline_stages[0].structured_metadata: structured_metadata stage config cannot be empty"),
    ("- tenant: {}", "pipeline_stages[0].tenant: label, source or value config are required"),
    ("- tenant: {value: a, source: b}", "pipeline_stages[0].tenant: label, source and value are "
     "mutually exclusive: you should set source, value or label but not all"),
    ("- tenant: {valeu: a}", "pipeline_stages[0].tenant.valeu: unknown field"),
    ("- pack: {labels: [a], ingest_timestamp: maybe}",
     "pipeline_stages[0].pack.ingest_timestamp: must be true or false, not 'maybe'"),
    ("- match: {stages: [{labels: {a: b}}]}",
     "pipeline_stages[0].match.selector: selector statement required for match stage"),
    ("- match: {selector: '{a=\"b\"}'}", "pipeline_stages[0].match.stages: match stage requires at "
     "least one additional stage to be defined in '- stages'"),
    ("- match: {selector: '{a=\"b\"}', action: skip, stages: [{labels: {a: b}}]}",
     "pipeline_stages[0].match.action: match stage action should be 'keep' or 'drop'"),
    ("- match: {selector: '{a=\"b\"}', action: drop, pipeline_name: ''}",
     "pipeline_stages[0].match.pipeline_name: match stage pipeline name can be omitted but "
     "cannot be an empty string"),
    ("- match: {selector: '{a=\"b\"} | json', action: drop}", "pipeline_stages[0].match.selector: "
     "JsonParser is not supported in a match selector"),
    ("- match: {selector: 'rate({a=\"b\"}[1m])', action: drop}",
     "pipeline_stages[0].match.selector: invalid selector syntax for match stage: only log "
     "selector is supported"),
    ("- match: {selector: '{a=\"b\"}', action: drop, stages: [{labels: {a: b}}]}",
     "pipeline_stages[0].match.stages: match stage configured to drop entries cannot contains stages"),
    ("- match: {selector: '{a=\"b\"', action: drop}", "pipeline_stages[0].match.selector: invalid "
     "selector syntax for match stage"),
    ("- match: {selector: '{a=\"b\"}', stages: [{nope: {}}]}",
     "pipeline_stages[0].match.stages[0].nope: unknown stage"),
    ("- drop: {}", "pipeline_stages[0].drop: drop stage config must contain at least one of "
     "`source`, `expression`, `older_than` or `longer_than`"),
    ("- drop: {value: a, expression: b, source: c}", "pipeline_stages[0].drop: drop stage config "
     "error, `value` and `expression` cannot both be defined at the same time."),
    ("- drop: {value: a, longer_than: 10}", "pipeline_stages[0].drop.value: drop stage config must "
     "specify a source if value is specified"),
    ("- drop: {expression: '(a'}", "pipeline_stages[0].drop.expression: drop stage regex "
     "compilation error"),
    ("- drop: {older_than: 5 minutes}", "pipeline_stages[0].drop.older_than: drop stage invalid duration, 5 minutes cannot be "
     "converted to a duration"),
    ("- drop: {longer_than: lots}", "pipeline_stages[0].drop.longer_than: drop stage failed to "
     "parse longer_than to bytes"),
    ("- limit: {rate: 0, burst: 1}", "pipeline_stages[0].limit.rate: limit stage failed to parse "
     "rate or burst"),
    ("- limit: {rate: 1}", "pipeline_stages[0].limit.burst: limit stage failed to parse rate or "
     "burst"),
    ("- limit: {rate: 1, burst: 1, by_label_name: app}", "pipeline_stages[0].limit.drop: When "
     "ratelimiting by label, drop must be true"),
    ("- sampling: {rate: 1.5}", "pipeline_stages[0].sampling.rate: sampling stage failed to "
     "parse rate,Sampling Rate must be between 0.0 and 1.0, received 1.500000"),
    ("- sampling: {rate: often}", "pipeline_stages[0].sampling.rate: sampling stage failed to "
     "parse rate: 'often'"),
    ("- limit: {rate: 1, burst: 1.5}", "pipeline_stages[0].limit.burst: limit stage failed to "
     "parse rate or burst"),
])
def test_bad_config_is_refused_with_its_path(stages: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        pipeline(stages)
    assert str(caught.value).startswith(error)


def test_static_labels_and_empty_values() -> None:
    [out] = run("- static_labels: {env: prod, empty: '', none: }", entry())
    assert out.labels == {"job": "app", "env": "prod"}


def test_labeldrop_and_labelallow() -> None:
    e = entry(labels={"job": "app", "pod": "p", "ns": "n"})
    [out] = BUILDERS["labeldrop"](["pod", "absent"]).process(e)  # type: ignore[arg-type]
    assert out.labels == {"job": "app", "ns": "n"}
    [out] = BUILDERS["labelallow"](["ns"]).process(out)  # type: ignore[arg-type]
    assert out.labels == {"ns": "n"}
    with pytest.raises(ConfigError, match="labeldrop stage config cannot be empty"):
        BUILDERS["labeldrop"]([])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="invalid label name: a.b"):
        BUILDERS["labelallow"](["a.b"])  # type: ignore[arg-type]


def test_structured_metadata_from_extracted_and_from_labels() -> None:
    stages = "- structured_metadata: {trace_id: '', pod: '', node: host, missing: ''}"
    e = entry(labels={"job": "app", "pod": "p1", "host": "h"}, trace_id="abc")
    [out] = run(stages, e)
    assert out.metadata == {"trace_id": "abc", "pod": "p1", "node": "h"}
    assert out.labels == {"job": "app"}


@pytest.mark.parametrize(("config", "e", "tenant"), [
    ("{value: team-a}", entry(), "team-a"),
    ("{source: customer}", entry(customer="c1"), "c1"),
    ("{source: customer}", entry(), None),
    ("{source: customer}", entry(customer=""), None),
    ("{label: ns}", entry(labels={"ns": "n1"}), "n1"),
    ("{label: ns}", entry(), None),
])
def test_tenant(config: str, e: Entry, tenant: str | None) -> None:
    [out] = run(f"- tenant: {config}", e)
    assert out.tenant == tenant


def test_pack_as_promtail_writes_it() -> None:
    e = entry('say "hi" <b>&\n', labels={"job": "app", "pod": "p1", "container": "c"}, level=3)
    before = time.time_ns()
    [out] = run("- pack: {labels: [pod, level, container, missing]}", e)
    assert out.line == ('{"container":"c","level":"3","pod":"p1",'
                        '"_entry":"say \\"hi\\" \\u003cb\\u003e\\u0026\\n"}')
    assert json.loads(out.line)["_entry"] == 'say "hi" <b>&\n'
    assert out.labels == {"job": "app"}
    assert out.ts >= before
    [kept] = run("- pack: {labels: [pod], ingest_timestamp: false}", entry("x"))
    assert kept.line == '{"_entry":"x"}' and kept.ts == 1_000
    assert packed({}, "\x01\u2028") == '{"_entry":"\\u0001\\u2028"}'


MATCH = """
- match:
    selector: '{job="app", env=~"prod|stage"} |= "error" != "debug" | level="high"'
    stages:
      - static_labels: {matched: "yes"}
"""


@pytest.mark.parametrize(("labels", "line", "hit"), [
    ({"job": "app", "env": "prod", "level": "high"}, "an error here", True),
    ({"job": "app", "env": "stage", "level": "high"}, "error", True),
    ({"job": "app", "env": "dev", "level": "high"}, "error", False),
    ({"job": "app", "env": "prod", "level": "high"}, "all fine", False),
    ({"job": "app", "env": "prod", "level": "high"}, "debug error", False),
    ({"job": "app", "env": "prod", "level": "low"}, "error", False),
    ({"job": "other", "env": "prod", "level": "high"}, "error", False),
])
def test_match_selector_line_and_label_filters(labels: dict[str, str], line: str,
                                               hit: bool) -> None:
    [out] = run(MATCH, entry(line, labels))
    assert (out.labels.get("matched") == "yes") is hit


def test_match_drop_and_regex_line_filter() -> None:
    stages = """
- match: {selector: '{job="app"} |~ "GET /health(z)?"', action: drop,
          drop_counter_reason: health}
- static_labels: {after: "1"}
"""
    p = pipeline(stages)
    assert p.process(entry("GET /healthz 200")) == []
    [out] = p.process(entry("GET /api 200"))
    assert out.labels["after"] == "1"


def test_match_accepts_a_selector_that_matches_everything() -> None:
    p = pipeline("- match: {selector: '{job=~\".*\"} |= \"x\"', action: drop}")
    assert p.process(entry("x", {})) == []
    assert len(p.process(entry("y", {}))) == 1


def test_match_nested_match_and_drop() -> None:
    stages = """
- match:
    selector: '{job="app"}'
    pipeline_name: outer
    stages:
      - static_labels: {seen: "1"}
      - match: {selector: '{seen="1"} |= "noise"', action: drop}
"""
    p = pipeline(stages)
    assert p.process(entry("noise")) == []
    [out] = p.process(entry("signal"))
    assert out.labels == {"job": "app", "seen": "1"}


@pytest.mark.parametrize(("config", "e", "dropped"), [
    ("{source: level}", entry(level="x"), True),
    ("{source: level}", entry(), False),
    ("{source: job, value: app}", entry(), True),
    ("{source: level, value: debug}", entry(level="debug"), True),
    ("{source: level, value: debug}", entry(level="info"), False),
    ("{source: [a, b], value: '1;2'}", entry(a=1, b="2"), True),
    ("{source: [a, b], value: '1;2'}", entry(a=1), False),
    ("{source: [a, b], separator: '|', value: '1|2'}", entry(a=1, b=2), True),
    ("{source: msg, expression: 'time(out)?'}", entry(msg="a timeout"), True),
    ("{source: msg, expression: '^time'}", entry(msg="a timeout"), False),
    ("{expression: '.*debug.*'}", entry("a debug line"), True),
    ("{expression: 'debug'}", entry("info"), False),
    ("{longer_than: 8}", entry("123456789"), True),
    ("{longer_than: 8}", entry("12345678"), False),
    ("{longer_than: 1KB}", entry("x" * 1000), False),
    ("{longer_than: 1KB}", entry("x" * 1001), True),
    ("{older_than: 1h}", entry(), True),
    ("{older_than: 1h, longer_than: 100}", entry("short"), False),
    ("{source: level, older_than: 1h}", entry(level="x"), True),
])
def test_drop(config: str, e: Entry, dropped: bool) -> None:
    assert (run(f"- drop: {config}", e) == []) is dropped


def test_drop_keeps_new_entries() -> None:
    fresh = entry()
    fresh.ts = time.time_ns()
    assert run("- drop: {older_than: 1h}", fresh) == [fresh]


def test_limit_drop_and_by_label() -> None:
    p = pipeline("- limit: {rate: 1, burst: 3, drop: true}")
    assert sum(len(p.process(entry())) for _ in range(10)) == 3
    p = pipeline("- limit: {rate: 1, burst: 2, drop: true, by_label_name: pod}")
    kept = [len(p.process(entry(labels={"pod": pod}))) for pod in ["a"] * 5 + ["b"] * 5]
    assert sum(kept) == 4
    assert sum(len(p.process(entry(labels={"x": "y"}))) for _ in range(5)) == 5


class _Clock:
    """A clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now, self.slept = 1000.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_limit_waits_without_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(limits, "time", clock)
    p = pipeline("- limit: {rate: 20, burst: 1}")
    assert sum(len(p.process(entry())) for _ in range(5)) == 5   # none dropped: each waits its turn
    assert clock.slept == pytest.approx([0.05] * 4)               # the burst passes, then 1/20 s each


def test_limit_max_distinct_labels_is_at_least_10000_generations() -> None:
    p = pipeline("- limit: {rate: 0.001, burst: 1, drop: true, by_label_name: pod, "
                 "max_distinct_labels: 2}")
    pods = [f"p{i}" for i in range(20_001)]
    assert sum(len(p.process(entry(labels={"pod": x}))) for x in pods) == 20_001
    # the second generation still holds p10000.. and p0.. was forgotten
    assert p.process(entry(labels={"pod": "p15000"})) == []
    assert len(p.process(entry(labels={"pod": "p0"}))) == 1


@pytest.mark.parametrize(("config", "low", "high"), [
    ("{rate: 0}", 0, 0), ("{}", 0, 0), ("{rate: 1}", 2000, 2000), ("{rate: 0.25}", 400, 600),
    ("{rate: '0.5'}", 850, 1150),
])
def test_sampling(config: str, low: int, high: int) -> None:
    p = pipeline(f"- sampling: {config}")
    kept = sum(len(p.process(entry())) for _ in range(2000))
    assert low <= kept <= high


def test_list_valued_stages_build_from_yaml() -> None:
    """`labeldrop` and `labelallow` take a list in Promtail's YAML."""
    import yaml

    from lokiarrow.agent.entry import Entry
    from lokiarrow.agent.settings import Section
    from lokiarrow.agent.stages import build
    doc = yaml.safe_load("pipeline_stages:\n  - labeldrop: [a]\n  - labelallow: [b, c]\n")
    pipeline = build(Section(doc, "").sections("pipeline_stages"))
    [out] = pipeline.process(Entry({"a": "1", "b": "2", "c": "3", "d": "4"}, 0, "line"))
    assert out.labels == {"b": "2", "c": "3"}
