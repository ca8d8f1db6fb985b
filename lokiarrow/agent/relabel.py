"""Prometheus relabeling (`relabel_configs`) of a target's labels, with Prometheus' semantics.

1. each rule is read and validated once (`parse`), its regex anchored as `^(?s:regex)$` in RE2;
2. `apply` runs the rules in order on a copy of the labels: a rule joins its `source_labels`
   values with `separator`, then acts; `keep`/`drop`/`keepequal`/`dropequal` may drop the
   target (None), a label set to "" is deleted;
3. `drop_internal` removes the `__`-prefixed labels once relabeling is over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import re2

from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.model import QUIET_RE2, go_regex_error

ACTIONS = ("replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap", "labeldrop",
           "labelkeep", "lowercase", "uppercase")
DEFAULT_REGEX = "(.*)"
DEFAULT_SEPARATOR = ";"
DEFAULT_REPLACEMENT = "$1"
_LABEL_NAME = re2.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# A target label that may hold `$1` / `${name}` templates (Prometheus' relabelTarget).
_TEMPLATE_TARGET = re2.compile(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$")


@dataclass(frozen=True)
class Rule:
    action: str
    source_labels: tuple[str, ...]
    separator: str
    regex: Any  # a compiled, anchored re2 pattern
    modulus: int
    target_label: str
    replacement: str


def parse(sections: list[Section]) -> list[Rule]:
    """Read a `relabel_configs` list; an invalid rule raises ConfigError with its path."""
    return [_parse_rule(s) for s in sections]


def _parse_rule(s: Section) -> Rule:
    action = (s.string("action") or "replace").lower()
    if action not in ACTIONS:
        raise ConfigError(s.at("action"), f"unknown relabel action {s.raw('action')!r}")
    sources = tuple(s.strings("source_labels"))
    for name in sources:
        if not _LABEL_NAME.search(name):
            raise ConfigError(s.at("source_labels"), f'"{name}" is not a valid label name')
    separator = s.string("separator", DEFAULT_SEPARATOR)
    regex_text = s.string("regex", DEFAULT_REGEX)
    modulus = s.integer("modulus", 0)
    target = s.string("target_label", "")
    replacement = s.string("replacement", DEFAULT_REPLACEMENT)
    assert separator is not None and regex_text is not None and modulus is not None
    assert target is not None and replacement is not None
    try:
        regex = re2.compile(f"^(?s:{regex_text})$", QUIET_RE2)
    except re2.error as exc:
        raise ConfigError(s.at("regex"), f"error parsing regexp: {go_regex_error(str(exc), regex_text)}") from None
    s.done()
    problem = _invalid(action, sources, separator, regex_text, modulus, target, replacement,
                       "source_labels" in s.value)
    if problem:
        raise ConfigError(s.path, problem)
    return Rule(action, sources, separator, regex, modulus, target, replacement)


def _invalid(action: str, sources: tuple[str, ...], separator: str, regex: str, modulus: int,
             target: str, replacement: str, has_sources: bool) -> str | None:
    """Prometheus' Config.Validate, its messages word for word."""
    if action == "hashmod" and modulus == 0:
        return "relabel configuration for hashmod requires non-zero modulus"
    needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
    if action in needs_target and target == "":
        return f"relabel configuration for {action} action requires 'target_label' value"
    if action == "replace" and not _TEMPLATE_TARGET.search(target):
        return f'"{target}" is invalid \'target_label\' for {action} action'
    plain_target = ("lowercase", "uppercase", "keepequal", "dropequal", "hashmod")
    if action in plain_target and not _LABEL_NAME.search(target):
        return f'"{target}" is invalid \'target_label\' for {action} action'
    if action in ("lowercase", "uppercase") and replacement != DEFAULT_REPLACEMENT:
        return f"'replacement' can not be set for {action} action"
    if action == "labelmap" and not _TEMPLATE_TARGET.search(replacement):
        return f'"{replacement}" is invalid \'replacement\' for {action} action'
    defaults = (regex, modulus, separator, replacement) == (DEFAULT_REGEX, 0, DEFAULT_SEPARATOR,
                                                            DEFAULT_REPLACEMENT)
    if action in ("keepequal", "dropequal") and not defaults:
        return f"{action} action requires only 'source_labels' and `target_label`, and no other fields"
    if action in ("labeldrop", "labelkeep") and (
            has_sources or target != "" or modulus != 0 or separator != DEFAULT_SEPARATOR
            or replacement != DEFAULT_REPLACEMENT):
        return f"{action} action requires only 'regex', and no other fields"
    return None


def apply(rules: list[Rule], labels: dict[str, str]) -> dict[str, str] | None:
    """The labels after every rule (a new dict), or None when a rule drops the target."""
    out = dict(labels)
    for rule in rules:
        if not _apply_one(rule, out):
            return None
    return out


def drop_internal(labels: dict[str, str]) -> dict[str, str]:
    """The labels to send: those not starting with `__`."""
    return {k: v for k, v in labels.items() if not k.startswith("__")}


def _set(labels: dict[str, str], name: str, value: str) -> None:
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)


def _apply_one(rule: Rule, labels: dict[str, str]) -> bool:
    """Run one rule in place; False when it drops the target."""
    value = rule.separator.join(labels.get(n, "") for n in rule.source_labels)
    action = rule.action
    if action == "drop":
        return rule.regex.search(value) is None
    if action == "keep":
        return rule.regex.search(value) is not None
    if action == "dropequal":
        return labels.get(rule.target_label, "") != value
    if action == "keepequal":
        return labels.get(rule.target_label, "") == value
    if action == "replace":
        match = rule.regex.search(value)
        if match is None:
            return True
        target = expand(rule.target_label, match)
        if _LABEL_NAME.search(target):
            _set(labels, target, expand(rule.replacement, match))
    elif action == "lowercase":
        _set(labels, rule.target_label, value.lower())
    elif action == "uppercase":
        _set(labels, rule.target_label, value.upper())
    elif action == "hashmod":
        digest = hashlib.md5(value.encode()).digest()  # noqa: S324 - Prometheus' hash, not security
        _set(labels, rule.target_label, str(int.from_bytes(digest[8:], "big") % rule.modulus))
    elif action == "labelmap":
        for name, val in list(labels.items()):
            match = rule.regex.search(name)
            if match is not None:
                _set(labels, expand(rule.replacement, match), val)
    elif action in ("labeldrop", "labelkeep"):
        drop = action == "labeldrop"
        for name in list(labels):
            if (rule.regex.search(name) is not None) == drop:
                del labels[name]
    return True


def expand(template: str, match: Any) -> str:
    """Go's regexp.Expand: `$1`, `${1}`, `$name`, `${name}`; `$$` is a `$`; an unknown or
    unmatched group is ""; a malformed `$` stays as written."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        if template.startswith("$$", j):
            out.append("$")
            i = j + 2
            continue
        name, end = _group_name(template, j + 1)
        if name is None:
            out.append("$")
            i = j + 1
            continue
        out.append(_group(match, name))
        i = end
    return "".join(out)


def _group_name(template: str, start: int) -> tuple[str | None, int]:
    """The group name after a `$` and where it ends; None when malformed."""
    braced = template.startswith("{", start)
    i = start + 1 if braced else start
    end = i
    while end < len(template) and (template[end].isalnum() or template[end] == "_"):
        end += 1
    if end == i:
        return None, start
    if braced:
        if not template.startswith("}", end):
            return None, start
        return template[i:end], end + 1
    return template[i:end], end


def _group(match: Any, name: str) -> str:
    if name.isdigit():
        index = int(name)
        if index > len(match.groups()):
            return ""
        return match.group(index) or ""
    if name not in match.re.groupindex:
        return ""
    return match.group(name) or ""
