"""Promtail's pipeline stages: `pipeline_stages` of a scrape config, run on every entry in order.

A stage takes one entry and gives back the entries that go on: none (dropped, or held, as
`multiline` and `cri` hold partial lines), the entry (changed or not), or several (a held one
released with it). `flush(now)` gives back held entries that are due (a multiline block whose
`max_wait_time` passed); `held_origins()` names the read batches whose lines are held, so their
file positions wait for them (an entry joined from several lines carries all their origins).
Stage builders take their YAML section (settings.Section) and refuse what Promtail would refuse,
with the field's path.

  parsing.py    cri, docker, json, logfmt, regex, replace, template, timestamp, output, decolorize,
                multiline
  labelling.py  labels, static_labels, labeldrop, labelallow, structured_metadata, tenant, pack,
                match, drop, limit, sampling
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section


class Stage(Protocol):
    def process(self, entry: Entry) -> list[Entry]: ...

    def flush(self, now_ns: int) -> list[Entry]: ...

    def held_origins(self) -> list[Any]: ...


class Stateless:
    """A stage that holds nothing."""

    def flush(self, now_ns: int) -> list[Entry]:
        return []

    def held_origins(self) -> list[Any]:
        return []


Builder = Callable[[Any], Stage]  # given a Section, or the list of a list-valued stage
LIST_STAGES = frozenset({"labeldrop", "labelallow"})   # the stages whose value may be a list


class Pipeline:
    """Stages in order; an entry a stage drops goes no further."""

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages

    def process(self, entry: Entry) -> list[Entry]:
        return self._from(0, [entry])

    def flush(self, now_ns: int) -> list[Entry]:
        """Entries held by any stage that are due, through the stages after it."""
        out: list[Entry] = []
        for i, stage in enumerate(self.stages):
            released = stage.flush(now_ns)
            if released:
                out += self._from(i + 1, released)
        return out

    def held_origins(self) -> list[Any]:
        return [origin for stage in self.stages for origin in stage.held_origins()]

    def _from(self, first: int, entries: list[Entry]) -> list[Entry]:
        for stage in self.stages[first:] if first else self.stages:
            if len(entries) == 1:   # the common case, without a comprehension
                entries = stage.process(entries[0])
            else:
                entries = [out for entry in entries for out in stage.process(entry)]
            if not entries:
                break
        return entries


def builders() -> dict[str, Builder]:
    """Every stage by its YAML name (imported here: `match` builds nested pipelines)."""
    from lokiarrow.agent.stages import labelling, parsing
    return {**parsing.BUILDERS, **labelling.BUILDERS}


def build(items: list[Section] | None, path: str = "pipeline_stages") -> Pipeline:
    """A pipeline from the list under `pipeline_stages`: each item a mapping of one stage name."""
    known = builders()
    stages: list[Stage] = []
    for item in items or []:
        if len(item.value) != 1:
            raise ConfigError(item.path, "each stage must be a mapping of one stage name")
        [name] = item.value
        builder = known.get(name)
        if builder is None:
            raise ConfigError(item.at(name), "unknown stage")
        value = item.value[name]
        # most stages take a mapping; `labeldrop`/`labelallow` take a list of names
        if isinstance(value, list) and name in LIST_STAGES:
            stages.append(builder(value))
        else:
            stages.append(builder(item.section(name)))   # a list here fails as "must be a mapping"
    return Pipeline(stages)
