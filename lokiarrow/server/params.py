"""Query-string parameters read as Loki reads them (pkg/loghttp): times, limits, direction, step,
the label endpoints' selector and the series groups.

Times are ns integers, float seconds (with a `.`) or RFC3339; an integer written in ten characters
or fewer (a sign counts, as in Go's len) is seconds. Numbers follow Go's strconv: ASCII digits, no
spaces or underscores, and a value outside int64 is refused (400) rather than overflowing later.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import datetime

from lokiarrow.errors import BadRequest
from lokiarrow.logql.parser import parse_matchers
from lokiarrow.units import parse_prometheus_duration_ns

DEFAULT_SINCE_NS = 3600 * 10**9
MAX_INT64 = 2**63 - 1
MAX_UINT32 = 2**32 - 1
_GO_INT = re.compile(r"[+-]?[0-9]+\Z")
_GO_FLOAT = re.compile(r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))\Z")


def parse_time(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    if "." in value:
        seconds = _go_float(value)
        if seconds is not None and math.isfinite(seconds) and abs(seconds) < MAX_INT64 / 10**9:
            whole = int(seconds)
            return whole * 10**9 + round((seconds - whole) * 1000) * 10**6
    if not _GO_INT.match(value):
        try:
            return _rfc3339_ns(value)
        except ValueError:
            raise BadRequest(f'cannot parse "{value}" to a valid timestamp') from None
    ns = int(value) * 10**9 if len(value) <= 10 else int(value)
    if abs(ns) > MAX_INT64:
        raise BadRequest(f'cannot parse "{value}" to a valid timestamp')
    return ns


def _rfc3339_ns(value: str) -> int:
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    fraction = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        fraction = int((digits + "000000000")[:9]) if digits else 0
        text = head + rest[len(digits):]
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return int(parsed.timestamp()) * 10**9 + fraction


def parse_bounds(params: Mapping[str, str]) -> tuple[int, int]:
    """`start`/`end`/`since` as Loki reads them: end defaults to now, start to end - since (1h),
    where an end in the future counts as now."""
    now = time.time_ns()
    end = parse_time(params.get("end"), now)
    since = DEFAULT_SINCE_NS
    if params.get("since"):
        try:
            since = parse_prometheus_duration_ns(params["since"])
        except ValueError as exc:
            raise BadRequest(f"could not parse 'since' parameter: {exc}") from None
    start = parse_time(params.get("start"), min(end, now) - since)
    if end < start:
        raise BadRequest("end timestamp must not be before or equal to start time")
    return start, end


def parse_selector(params: Mapping[str, str]) -> str | None:
    """The `query` of the label endpoints: a lone stream selector (Loki's syntax.ParseMatchers),
    or None when absent."""
    query = params.get("query")
    if not query:
        return None
    parse_matchers(query)
    return query


def parse_series_groups(selectors: list[str]) -> list[str]:
    """The `match[]` / `match` selectors of `/series`, each once, sorted; a lone `{}` selects every
    stream (no groups), as Loki's ParseSeriesQuery reads them."""
    groups = sorted(set(selectors))
    if len(groups) == 1 and groups[0].replace(" ", "") == "{}":
        return []
    return groups


def parse_limit(params: Mapping[str, str], default: int = 100) -> int:
    return parse_count(params, "limit", default)


def parse_count(params: Mapping[str, str], name: str, default: int, zero_is_default: bool = False) -> int:
    """A positive 32-bit count parameter (`limit`, `line_limit`), read and refused as Loki does;
    absent (or 0, where Loki reads 0 as "the default") gives `default`."""
    value = params.get(name)
    if not value:
        return default
    if not _GO_INT.match(value):
        raise BadRequest(f'strconv.Atoi: parsing "{value}": invalid syntax')
    count = int(value)
    if abs(count) > MAX_INT64:
        raise BadRequest(f'strconv.Atoi: parsing "{value}": value out of range')
    if count == 0 and zero_is_default:
        return default
    if count <= 0:
        raise BadRequest("limit must be a positive value")
    if count > MAX_UINT32:
        raise BadRequest(f"{name} value {count} is out of range [0, {MAX_UINT32}]")
    return count


def parse_backward(params: Mapping[str, str]) -> bool:
    value = (params.get("direction") or "backward").lower()
    if value not in ("backward", "forward"):
        raise BadRequest(f"invalid direction '{params.get('direction')}'")
    return value == "backward"


MAX_POINTS = 11_000


def parse_step(params: Mapping[str, str], start: int, end: int) -> int:
    """`step` in ns: seconds (`60`, `0.5`, truncated to whole ns as Go's time.Duration does) or a
    duration (`1m`, `2000ms` as Grafana sends it); by default Loki's max(1 s, (end - start) / 250)
    in whole seconds."""
    value = params.get("step")
    if not value:
        return max(int((end - start) / 10**9 / 250), 1) * 10**9
    seconds = _go_float(value)
    if seconds is not None:
        ns = seconds * 10**9
        if math.isinf(ns) or abs(ns) > MAX_INT64:
            raise BadRequest(f'invalid parameter "step"; cannot parse "{value}" to a valid duration. '
                             "It overflows int64")
        step = int(ns) if not math.isnan(ns) else -1  # Go turns NaN into the least int64
    else:
        try:
            step = parse_prometheus_duration_ns(value)
        except ValueError:
            raise BadRequest(f'invalid parameter "step"; cannot parse "{value}" to a valid duration') from None
    if step <= 0:
        raise BadRequest("zero or negative query resolution step widths are not accepted. "
                         "Try a positive integer")
    if (end - start) // step > MAX_POINTS:
        raise BadRequest("exceeded maximum resolution of 11,000 points per timeseries. "
                         "Try decreasing the query resolution (?step=XX)")
    return step


def _go_float(value: str) -> float | None:
    """`value` as Go's strconv.ParseFloat reads a decimal, or None where Go refuses it (Python's
    float() also takes spaces, digit underscores and non-ASCII digits)."""
    return float(value) if _GO_FLOAT.match(value) else None
