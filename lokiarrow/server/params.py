"""Query-string parameters read as Loki reads them (pkg/loghttp): times, limits, direction.

Times are ns integers, float seconds or RFC3339; an integer of ten digits or fewer is seconds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

from lokiarrow.errors import BadRequest
from lokiarrow.units import parse_duration_ns, parse_prometheus_duration_ns

DEFAULT_SINCE_NS = 3600 * 10**9


def parse_time(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    if "." in value:
        try:
            seconds = float(value)
            whole = int(seconds)
            return whole * 10**9 + round((seconds - whole) * 1000) * 10**6
        except ValueError:
            pass
    try:
        number = int(value)
    except ValueError:
        try:
            return _rfc3339_ns(value)
        except ValueError:
            raise BadRequest(f'cannot parse "{value}" to a valid timestamp') from None
    return number * 10**9 if len(value.lstrip("-")) <= 10 else number


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
    """`start`/`end`/`since` as Loki reads them: end defaults to now, start to end - since (1h)."""
    now = time.time_ns()
    end = parse_time(params.get("end"), now)
    since = DEFAULT_SINCE_NS
    if params.get("since"):
        try:
            since = parse_duration_ns(params["since"])
        except ValueError as exc:
            raise BadRequest(f'cannot parse "since": {exc}') from None
    start = parse_time(params.get("start"), end - since)
    if end < start:
        raise BadRequest("end timestamp must not be before or equal to start time")
    return start, end


def parse_limit(params: Mapping[str, str], default: int = 100) -> int:
    value = params.get("limit")
    if not value:
        return default
    try:
        limit = int(value)
    except ValueError:
        raise BadRequest(f'strconv.Atoi: parsing "{value}": invalid syntax') from None
    if limit <= 0:
        raise BadRequest("limit must be a positive value")
    return limit


def parse_backward(params: Mapping[str, str]) -> bool:
    value = (params.get("direction") or "backward").lower()
    if value not in ("backward", "forward"):
        raise BadRequest(f"invalid direction '{params.get('direction')}'")
    return value == "backward"


MAX_POINTS = 11_000


def parse_step(params: Mapping[str, str], start: int, end: int) -> int:
    """`step` in ns: seconds (`60`, `0.5`) or a duration (`1m`); by default Loki's
    max(1 s, (end - start) / 250) in whole seconds."""
    value = params.get("step")
    if not value:
        return max(int((end - start) / 10**9 / 250), 1) * 10**9
    try:
        step = int(round(float(value) * 10**9))
    except ValueError:
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
