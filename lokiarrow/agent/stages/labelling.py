"""Promtail's label stages (labels, static_labels, labeldrop, labelallow, structured_metadata,
tenant, pack), registered with match (matching.py) and drop/limit/sampling (limits.py)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.agent.stages import Builder, Stage, Stateless, limits, matching
from lokiarrow.model import LABEL_NAME_RE


def to_string(value: Any) -> str | None:
    """An extracted value as Promtail's `getString` writes it; None where it cannot (maps, lists,
    null): Promtail skips those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
        text = format(Decimal(repr(value)), "f")  # Go's FormatFloat(f, 'f', -1, 64)
        return text[:-2] if text.endswith(".0") else text
    return None



def _label_sources(section: Section, stage: str) -> dict[str, str]:
    """`labels`/`structured_metadata`: label name -> extracted key (empty: the same name)."""
    if not section.value:
        raise ConfigError(section.path, f"{stage} stage config cannot be empty")
    out = {}
    for name, source in section.value.items():
        section.raw(name)
        name = str(name)
        if not LABEL_NAME_RE.match(name):
            raise ConfigError(section.at(name), f"invalid label name: {name}")
        if isinstance(source, dict | list | bool):
            raise ConfigError(section.at(name), "must be a string")
        out[name] = name if source is None or source == "" else str(source)
    return out


def _extracted(entry: Entry, sources: dict[str, str]) -> dict[str, str]:
    """The configured values found in `extracted`; empty or unconvertible ones skipped."""
    found = {}
    for name, source in sources.items():
        value = to_string(lookup(entry, source))
        if value:
            found[name] = value
    return found


def lookup(entry: Entry, key: str) -> Any:
    """Promtail's `extracted` map, which starts as the entry's labels: extracted values first."""
    return entry.extracted[key] if key in entry.extracted else entry.labels.get(key)


class Labels(Stateless):
    """`labels`: extracted values become labels."""

    def __init__(self, section: Section) -> None:
        self.sources = _label_sources(section, "label")

    def process(self, entry: Entry) -> list[Entry]:
        for name, source in self.sources.items():
            value = to_string(lookup(entry, source))
            if value:
                entry.labels[name] = value
            elif value == "":  # an empty value is no label
                entry.labels.pop(name, None)
        return [entry]


class StructuredMetadata(Stateless):
    """`structured_metadata`: extracted values (or labels, which then leave the stream) become
    structured metadata."""

    def __init__(self, section: Section) -> None:
        self.sources = _label_sources(section, "structured_metadata")

    def process(self, entry: Entry) -> list[Entry]:
        found = _extracted(entry, self.sources)
        for name in found:
            entry.labels.pop(self.sources[name], None)
        entry.metadata.update(found)
        return [entry]


class StaticLabels(Stateless):
    """`static_labels`: fixed labels; an empty value adds nothing."""

    def __init__(self, section: Section) -> None:
        if not section.value:
            raise ConfigError(section.path, "static_labels stage config cannot be empty")
        for name in section.value:
            if not LABEL_NAME_RE.match(str(name)):
                raise ConfigError(section.at(str(name)), f"invalid label name: {name}")
        values = {str(name): section.raw(name) for name in section.value}
        self.labels = {k: str(v) for k, v in values.items() if v is not None and v != ""}

    def process(self, entry: Entry) -> list[Entry]:
        entry.labels.update(self.labels)
        return [entry]


def _names(value: Any, path: str, stage: str) -> list[str]:
    if not value:
        raise ConfigError(path, f"{stage} stage config cannot be empty")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(path, "must be a list of label names")
    for name in value:
        if not LABEL_NAME_RE.match(name):
            raise ConfigError(path, f"invalid label name: {name}")
    return value


class LabelDrop(Stateless):
    """`labeldrop: [names]`."""

    def __init__(self, value: Any, path: str) -> None:
        self.names = set(_names(value, path, "labeldrop"))

    def process(self, entry: Entry) -> list[Entry]:
        for name in self.names:
            entry.labels.pop(name, None)
        return [entry]


class LabelAllow(Stateless):
    """`labelallow: [names]`: every other label is removed."""

    def __init__(self, value: Any, path: str) -> None:
        self.names = set(_names(value, path, "labelallow"))

    def process(self, entry: Entry) -> list[Entry]:
        entry.labels = {k: v for k, v in entry.labels.items() if k in self.names}
        return [entry]


class Tenant(Stateless):
    """`tenant`: the tenant from a fixed `value`, an extracted `source` or a `label`; nothing
    changes when that is missing or empty."""

    def __init__(self, section: Section) -> None:
        self.label = section.string("label") or ""
        self.source = section.string("source") or ""
        self.value = section.string("value") or ""
        section.done()
        given = sum(1 for v in (self.label, self.source, self.value) if v)
        if given == 0:
            raise ConfigError(section.path, "label, source or value config are required")
        if given > 1:
            raise ConfigError(section.path, "label, source and value are mutually exclusive: "
                              "you should set source, value or label but not all")

    def process(self, entry: Entry) -> list[Entry]:
        if self.value:
            tenant: str | None = self.value
        elif self.source:
            tenant = to_string(lookup(entry, self.source))
        else:
            tenant = entry.labels.get(self.label)
        if tenant:
            entry.tenant = tenant
        return [entry]


def packed(labels: dict[str, str], line: str) -> str:
    """Promtail's packed line: the labels in name order, then `_entry`."""
    items = [*sorted(labels.items()), ("_entry", line)]
    return "{" + ",".join(f"{_go_json(k)}:{_go_json(v)}" for k, v in items) + "}"


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HTML = {"<", ">", "&", "\u2028", "\u2029"}


def _go_json(text: str) -> str:
    """A JSON string as json-iterator writes it by default (HTML-escaping, \\u00XX controls)."""
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " " or char in _HTML:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


class Pack(Stateless):
    """`pack`: chosen labels (or extracted values) and the line into one JSON line; the labels
    leave the stream, and with `ingest_timestamp` (the default) the entry takes the current time."""

    def __init__(self, section: Section) -> None:
        self.names = section.strings("labels")
        self.ingest_timestamp = section.boolean("ingest_timestamp", True)
        section.done()

    def process(self, entry: Entry) -> list[Entry]:
        found = {name: value for name in self.names
                 if (value := to_string(lookup(entry, name))) is not None}
        for name in found:
            entry.labels.pop(name, None)
        entry.line = packed(found, entry.line)
        if self.ingest_timestamp:
            entry.ts = time.time_ns()
        return [entry]


def _listed(cls: Any) -> Builder:
    """`labeldrop`/`labelallow` take a list, which the shared `build` cannot yet hand over as a
    Section: they also accept the list itself."""
    def build(section: Section | list[str]) -> Stage:
        if isinstance(section, Section):
            return cls(section.value or None, section.path)  # type: ignore[no-any-return]
        return cls(section, "")  # type: ignore[no-any-return]
    return build  # type: ignore[return-value]


BUILDERS: dict[str, Builder] = {
    "labels": Labels, "static_labels": StaticLabels, "structured_metadata": StructuredMetadata,
    "labeldrop": _listed(LabelDrop), "labelallow": _listed(LabelAllow),
    "tenant": Tenant, "pack": Pack, **matching.BUILDERS, **limits.BUILDERS,
}
