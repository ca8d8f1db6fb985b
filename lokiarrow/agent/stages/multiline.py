"""Promtail's `multiline` stage: lines joined into blocks that start where `firstline` matches.

Per label set, as Promtail does: 1. until a line matches `firstline`, lines pass through as they
are; 2. a matching line releases the open block and becomes the block's start entry; 3. every
line joins the block with "\\n"; 4. a block of `max_lines` lines (0: no limit) is released at once,
and `flush(now)` releases one that got no line for `max_wait_time`. A released block has its
start entry's time, labels, metadata and extracted values; a block begun by a continuation line
after a release keeps the last start entry's (a Promtail quirk kept on purpose).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import re2

from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.model import QUIET_RE2, go_regex_error
from lokiarrow.units import go_duration_ns

Key = tuple[tuple[str, str], ...]


@dataclass
class _Stream:
    start: Entry
    lines: list[str] = field(default_factory=list)
    origins: list[Any] = field(default_factory=list)   # of the lines in the block
    last_ns: int = 0


class MultilineStage:
    def __init__(self, firstline: re2._Regexp, max_wait_ns: int, max_lines: int) -> None:
        self.firstline, self.max_wait_ns, self.max_lines = firstline, max_wait_ns, max_lines
        self._streams: dict[Key, _Stream] = {}

    def process(self, entry: Entry) -> list[Entry]:
        key = tuple(sorted(entry.labels.items()))
        stream = self._streams.get(key)
        first = self.firstline.search(entry.line) is not None
        if stream is None and not first:
            return [entry]
        out: list[Entry] = []
        if stream is None:
            stream = self._streams[key] = _Stream(entry)
        elif first:
            out += self._release(stream)
            stream.start = entry
        stream.lines.append(entry.line)
        stream.origins += entry.origins
        stream.last_ns = time.time_ns()
        if len(stream.lines) == self.max_lines:
            out += self._release(stream)
        return out

    def flush(self, now_ns: int) -> list[Entry]:
        return [e for s in self._streams.values() if now_ns - s.last_ns >= self.max_wait_ns
                for e in self._release(s)]

    def held_origins(self) -> list[Any]:
        return [origin for s in self._streams.values() for origin in s.origins]

    @staticmethod
    def _release(stream: _Stream) -> list[Entry]:
        if not stream.lines:
            return []
        start = stream.start
        block = replace(start, labels=dict(start.labels), line="\n".join(stream.lines),
                        metadata=dict(start.metadata), extracted=dict(start.extracted), origins=stream.origins)
        stream.lines, stream.origins = [], []
        return [block]


def build_multiline(sec: Section) -> MultilineStage:
    expr = sec.string("firstline")
    if expr is None:
        raise ConfigError(sec.at("firstline"), "multiline stage config must define `firstline` regular expression")
    try:
        regex = re2.compile(expr, QUIET_RE2)
    except re2.error as exc:
        raise ConfigError(sec.at("firstline"), f"multiline stage first line regex compilation error: error parsing regexp: {go_regex_error(str(exc), expr)}") from None
    wait = sec.string("max_wait_time")
    try:
        max_wait = 3 * 10**9 if wait is None else go_duration_ns(wait)
    except ValueError as exc:
        raise ConfigError(sec.at("max_wait_time"), f"multiline stage `max_wait_time` parse error: {exc}") from None
    max_lines = sec.integer("max_lines", 128)
    if max_lines is None or max_lines < 0:
        raise ConfigError(sec.at("max_lines"), "must not be negative")
    sec.done()
    return MultilineStage(regex, max_wait, max_lines)
