"""Prometheus relabeling: table-driven cases checked against Prometheus' own results."""

from __future__ import annotations

import pytest
import yaml

from lokiarrow.agent import relabel
from lokiarrow.agent.settings import ConfigError, Section

BASE = {"a": "foo", "b": "bar", "c": "baz"}

CASES = [
    # (rules as YAML, input labels, expected labels or None when dropped)
    ("- {source_labels: [a], regex: f(.*), target_label: d, replacement: 'ch${1}-ch${1}'}", BASE,
     {**BASE, "d": "choo-choo"}),
    ("- {source_labels: [a, b], regex: f(.*);(.*)r, target_label: a, replacement: 'b${1}${2}m'}",
     {"a": "foo", "b": "bar"}, {"a": "boobam", "b": "bar"}),
    ("- {source_labels: [a], regex: 'o', target_label: x}", BASE, BASE),  # anchored: no match
    ("- {source_labels: [a], regex: '(?P<first>f)(?P<rest>.*)', target_label: x, "
     "replacement: '$rest/${first}/$9/$$/$'}", BASE, {**BASE, "x": "oo/f//$/$"}),
    ("- {source_labels: [a], target_label: '${1}_x'}", BASE, {**BASE, "foo_x": "foo"}),
    ("- {source_labels: [missing], target_label: a}", BASE, {"b": "bar", "c": "baz"}),  # "" deletes
    ("- {target_label: job, replacement: static}", {}, {"job": "static"}),
    ("- {source_labels: [a], regex: 'f.*', action: drop}", BASE, None),
    ("- {source_labels: [a], regex: 'b.*', action: drop}", BASE, BASE),
    ("- {source_labels: [a], regex: 'b.*', action: keep}", BASE, None),
    ("- {source_labels: [a, b], separator: '|', regex: 'foo\\|bar', action: Keep}", BASE, BASE),
    ("- {source_labels: [c], target_label: d, action: hashmod, modulus: 1000}", BASE,
     {**BASE, "d": "976"}),
    ("- {regex: '(b.*)', replacement: 'bar_${1}', action: labelmap}", {"a": "foo", "b1": "x", "b2": "y"},
     {"a": "foo", "b1": "x", "b2": "y", "bar_b1": "x", "bar_b2": "y"}),
    ("- {regex: '__meta_kubernetes_pod_label_(.+)', action: labelmap}",
     {"__meta_kubernetes_pod_label_app": "web"}, {"__meta_kubernetes_pod_label_app": "web", "app": "web"}),
    ("- {regex: 'b.*', action: labeldrop}", BASE, {"a": "foo", "c": "baz"}),
    ("- {regex: 'b.*', action: labelkeep}", BASE, {"b": "bar"}),
    ("- {source_labels: [a, b], target_label: u, action: uppercase}", BASE, {**BASE, "u": "FOO;BAR"}),
    ("- {source_labels: [u], target_label: l, action: lowercase}", {"u": "MiXed"},
     {"u": "MiXed", "l": "mixed"}),
    ("- {source_labels: [a], target_label: x, action: keepequal}", {"a": "1", "x": "1"}, {"a": "1", "x": "1"}),
    ("- {source_labels: [a], target_label: x, action: keepequal}", {"a": "1", "x": "2"}, None),
    ("- {source_labels: [a], target_label: x, action: dropequal}", {"a": "1", "x": "1"}, None),
    ("- {source_labels: [a], regex: 'foo\\nbar', target_label: m, replacement: ok}",
     {"a": "foo\nbar"}, {"a": "foo\nbar", "m": "ok"}),  # (?s): . and \n as Prometheus
]


def rules(text: str) -> list[relabel.Rule]:
    return relabel.parse(Section({"relabel_configs": yaml.safe_load(text)}, "").sections("relabel_configs"))


@pytest.mark.parametrize(("text", "labels", "want"), CASES)
def test_relabel(text: str, labels: dict[str, str], want: dict[str, str] | None) -> None:
    assert relabel.apply(rules(text), labels) == want


def test_input_left_alone_and_internal_dropped() -> None:
    labels = {"__path__": "/x", "__meta_k": "v", "a": "1"}
    out = relabel.apply(rules("- {source_labels: [__meta_k], target_label: k}"), labels)
    assert labels == {"__path__": "/x", "__meta_k": "v", "a": "1"}
    assert out is not None and relabel.drop_internal(out) == {"a": "1", "k": "v"}


ERRORS = [
    ("- {action: hashmod, target_label: x}",
     "relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus"),
    ("- {source_labels: [a]}",
     "relabel_configs[0]: relabel configuration for replace action requires 'target_label' value"),
    ("- {source_labels: [a], target_label: '1bad'}",
     "relabel_configs[0]: \"1bad\" is invalid 'target_label' for replace action"),
    ("- {source_labels: [a], target_label: 'a-b', action: lowercase}",
     "relabel_configs[0]: \"a-b\" is invalid 'target_label' for lowercase action"),
    ("- {source_labels: [a], target_label: b, action: uppercase, replacement: x}",
     "relabel_configs[0]: 'replacement' can not be set for uppercase action"),
    ("- {regex: 'x', replacement: 'a-b', action: labelmap}",
     "relabel_configs[0]: \"a-b\" is invalid 'replacement' for labelmap action"),
    ("- {source_labels: [a], target_label: b, action: keepequal, regex: x}",
     "relabel_configs[0]: keepequal action requires only 'source_labels' and `target_label`, and no other fields"),
    ("- {source_labels: [a], regex: x, action: labeldrop}",
     "relabel_configs[0]: labeldrop action requires only 'regex', and no other fields"),
    ("- {source_labels: [a], target_label: b}\n- {action: bogus}",
     "relabel_configs[1].action: unknown relabel action 'bogus'"),
    ("- {source_labels: [a], target_label: b, regex: '(a'}", "relabel_configs[0].regex: error parsing regexp"),
    ("- {source_labels: [a], target_lable: b}", "relabel_configs[0].target_lable: unknown field"),
    ("- {source_labels: [a-b], target_label: b}",
     "relabel_configs[0].source_labels: \"a-b\" is not a valid label name"),
    ("- {source_labels: [a], target_label: b, modulus: x}", "relabel_configs[0].modulus: must be an integer"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_invalid_rules(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        rules(text)
    assert str(info.value).startswith(message)
