"""Promtail's `timestamp` stage: the entry's time from an extracted value, by a Go layout.

Steps: 1. the `format` names one of Go's layouts (RFC3339, ANSIC…, read in UTC unless they carry
a zone), a Unix epoch kind, or is a Go layout itself (read in `location`); 2. the value is parsed
by `format`, then by each of `fallback_formats`; 3. a layout without a year gets the current one
(last year for a December time read in January, next year for a January time read in December);
4. when the source is missing or does not parse, `fudge` (the default) gives the entry the last
time of its label set plus 1ns (if one is known), `skip` leaves the entry's time alone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict
from collections.abc import Callable

from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.agent.stages import Stateless
from lokiarrow.agent.stages.labelling import to_string
from lokiarrow.logql.template_time import UTC, parse_layout, zone

NAMED_LAYOUTS = {
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
}
_UNIX_SCALE = {"UnixMs": 10**6, "UnixUs": 10**3, "UnixNs": 1}
ACTIONS = ("fudge", "skip")
_FUDGE_CACHE = 10_000  # label sets remembered for fudging, as Promtail's LRU

Parser = Callable[[str], int | None]


def _unix(value: str) -> int | None:
    """`Unix`: seconds, with an optional fraction (`1562708916.414123`)."""
    whole, _, frac = value.partition(".")
    if not whole.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        return None
    return int(whole) * 10**9 + int(frac[:9].ljust(9, "0") or 0)


def _unix_scaled(scale: int) -> Parser:
    def parse(value: str) -> int | None:
        try:
            return int(value, 10) * scale
        except ValueError:
            return None
    return parse


def _layout(layout: str, loc: dt.tzinfo) -> Parser:
    if "06" in layout:  # also matches 2006
        return lambda value: None if (t := parse_layout(layout, value, loc)) is None else t.ns

    def parse(value: str) -> int | None:
        t = parse_layout(layout, value, loc)
        if t is None:
            return None
        local, now = t.local(), dt.datetime.now(UTC)
        year = now.year + (-1 if (local.month, now.month) == (12, 1) else 1 if (local.month, now.month) == (1, 12) else 0)
        try:
            moved = local.replace(year=year)
        except ValueError:  # 29 February in a year without one
            return None
        return int(moved.timestamp()) * 10**9 + t.ns % 10**9
    return parse


# RFC 3339 as CRI and Docker write it, with Go's optional fraction: the common case, parsed fast
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z")
_SECONDS_CACHED = 4096


def _rfc3339(general: Parser) -> Parser:
    """Go's RFC3339/RFC3339Nano parse: the whole seconds of a `YYYY-MM-DDTHH:MM:SS` + zone prefix
    computed once and kept (log lines come seconds apart at most), the fraction added; anything
    else goes to the general layout parser, which decides."""
    seconds: dict[str, int] = {}

    def parse(value: str) -> int | None:
        m = _RFC3339.match(value)
        if m is None:
            return general(value)
        zone_text = m.group(2)
        key = value[:19] + zone_text
        whole = seconds.get(key)
        if whole is None:
            try:
                stamp = dt.datetime.fromisoformat(value[:19] + ("+00:00" if zone_text == "Z" else zone_text))
            except ValueError:
                return general(value)
            if len(seconds) >= _SECONDS_CACHED:
                seconds.clear()
            whole = seconds[key] = int(stamp.timestamp())
        fraction = m.group(1)
        return whole * 10**9 + (int(fraction.ljust(9, "0")) if fraction else 0)
    return parse


def parser_for(fmt: str, loc: dt.tzinfo) -> Parser:
    """The parser of one `format`: a Unix kind, a named layout or a Go layout."""
    if fmt == "Unix":
        return _unix
    if fmt in _UNIX_SCALE:
        return _unix_scaled(_UNIX_SCALE[fmt])
    if fmt in ("RFC3339", "RFC3339Nano"):
        return _rfc3339(_layout(NAMED_LAYOUTS[fmt], UTC))
    if fmt in NAMED_LAYOUTS:
        return _layout(NAMED_LAYOUTS[fmt], UTC)
    return _layout(fmt, loc)


class TimestampStage(Stateless):
    def __init__(self, source: str, parsers: list[Parser], action: str) -> None:
        self.source, self.parsers, self.action = source, parsers, action
        self._last: OrderedDict[tuple[tuple[str, str], ...], int] = OrderedDict()

    def process(self, entry: Entry) -> list[Entry]:
        key = tuple(sorted(entry.labels.items()))
        text = to_string(entry.extracted.get(self.source))
        ts = None if text is None else next((t for p in self.parsers if (t := p(text)) is not None), None)
        if ts is None:
            if self.action == "fudge" and key in self._last:
                ts = self._last[key] + 1
            else:
                return [entry]
        entry.ts = ts
        self._remember(key, ts)
        return [entry]

    def _remember(self, key: tuple[tuple[str, str], ...], ts: int) -> None:
        self._last[key] = ts
        self._last.move_to_end(key)
        if len(self._last) > _FUDGE_CACHE:
            self._last.popitem(last=False)


def build_timestamp(sec: Section) -> TimestampStage:
    source = sec.string("source")
    if not source:
        raise ConfigError(sec.at("source"), "timestamp source value is required if timestamp is specified")
    fmt = sec.string("format")
    if not fmt:
        raise ConfigError(sec.at("format"), "timestamp format is required")
    location = sec.string("location")
    loc: dt.tzinfo = UTC
    if location is not None:
        found = zone(location)
        if found is None:
            raise ConfigError(sec.at("location"), f"invalid location specified: unknown time zone {location}")
        loc = found
    fallbacks = sec.strings("fallback_formats")
    action = sec.string("action_on_failure", "fudge")
    if action not in ACTIONS:
        raise ConfigError(sec.at("action_on_failure"),
                          f"invalid action on failure (supported values are {list(ACTIONS)})")
    sec.done()
    return TimestampStage(source, [parser_for(f, loc) for f in [fmt, *fallbacks]], action or "fudge")
