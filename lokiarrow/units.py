"""Durations and byte sizes written as Loki writes them (`5m`, `1h30m`, `1.5s`, `7d`, `20MB`, `1KiB`).

Durations follow Go's time.ParseDuration, extended with Prometheus' `d`, `w` and `y`, and raise
ValueError with Go's wording so callers can show Loki's exact message.
"""

from __future__ import annotations

import math
import re

_DURATION_UNITS_NS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
    "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000, "y": 365 * 86_400_000_000_000,
}
_PART = re.compile(r"(\d*\.?\d*)([^\d.]*)")
_BYTE_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4, "pb": 1000**5, "eb": 1000**6,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "pib": 1024**5, "eib": 1024**6,
    "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5, "e": 1000**6,
    "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4, "pi": 1024**5, "ei": 1024**6,
}
_BYTES = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)$")


def parse_duration_ns(text: str) -> int:
    """Parse `1h30m`, `-5m`, `1.5s`, `250ms`, `7d` into nanoseconds (Go's rules, plus d/w/y)."""
    original = text
    if text in ("0", "+0", "-0"):
        return 0
    sign = 1
    if text and text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if not text:
        raise ValueError(f"invalid duration {_quote(original)}")
    total = 0
    pos = 0
    while pos < len(text):
        m = _PART.match(text, pos)
        assert m is not None
        number, unit = m.group(1), m.group(2)
        if number in ("", "."):
            raise ValueError(f"invalid duration {_quote(original)}")
        if unit == "":
            raise ValueError(f"missing unit in duration {_quote(original)}")
        if unit not in _DURATION_UNITS_NS:
            raise ValueError(f"unknown unit {_quote(unit)} in duration {_quote(original)}")
        whole, _, fraction = number.partition(".")
        scale = _DURATION_UNITS_NS[unit]
        total += int(whole or "0") * scale
        if fraction.strip("0"):  # Go: the fraction times unit/scale in floating point, truncated
            total += int(float(int(fraction)) * (scale / 10 ** len(fraction)))
        pos = m.end()
    return sign * total


def parse_bytes(text: str) -> int:
    """Parse a humanized byte size (`20MB`, `1KiB`, `512B`, `1.5GB`) into bytes."""
    m = _BYTES.match(text.strip())
    if not m or m.group(2).lower() not in _BYTE_UNITS | {"": 1}:
        raise ValueError(f"invalid bytes value {_quote(text)}")
    return int(float(m.group(1)) * _BYTE_UNITS.get(m.group(2).lower(), 1))


def format_duration(ns: int) -> str:
    """Print nanoseconds as Prometheus' model.Duration prints (`5m`, `1h30m`, `1d`, `250ms`)."""
    if ns == 0:
        return "0s"
    out = []
    rest = ns // 1_000_000
    for unit, size in (("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000),
                       ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or f"{ns}ns"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_PROMETHEUS_UNITS = {"ms": (7, 1_000_000), "s": (6, 1_000_000_000), "m": (5, 60_000_000_000),
                     "h": (4, 3_600_000_000_000), "d": (3, 86_400_000_000_000),
                     "w": (2, 7 * 86_400_000_000_000), "y": (1, 365 * 86_400_000_000_000)}
_LEADING_DIGITS = re.compile(r"[0-9]*")
_LEADING_UNIT = re.compile(r"[^0-9]*")


def parse_prometheus_duration_ns(text: str) -> int:
    """Parse a duration as Prometheus' model.ParseDuration (LogQL's `[5m]`): whole numbers only,
    units from `y` down to `ms`, each at most once; errors in its words."""
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    invalid = ValueError(f"not a valid duration string: {_quote(text)}")
    total, last_unit, pos = 0, 0, 0
    while pos < len(text):
        digits = _LEADING_DIGITS.match(text, pos)
        unit = _LEADING_UNIT.match(text, digits.end()) if digits else None
        if not digits or not unit or digits.end() == pos or unit.end() == digits.end():
            raise invalid
        value, name = int(digits.group()), unit.group()
        if value >= 1 << 64:
            raise invalid
        if name not in _PROMETHEUS_UNITS:
            raise ValueError(f"unknown unit {_quote(name)} in duration {_quote(text)}")
        order, size = _PROMETHEUS_UNITS[name]
        if order <= last_unit:
            raise invalid
        if value > (1 << 63) // size or total + value * size > (1 << 63) - 1:
            raise ValueError("duration out of range")
        total, last_unit, pos = total + value * size, order, unit.end()
    return total


_GO_UNITS = ("ns", "us", "µs", "μs", "ms", "s", "m", "h")


def go_time_duration(ns: int) -> str:
    """Print nanoseconds as Go's time.Duration prints them (`48h0m0s`, `3m2s`, `1.5s`, `250ms`)."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size or unit == "ns":
                return sign + _trimmed(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = _trimmed(rest, 10**9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    return f"{sign}{minutes}m{text}" if minutes else sign + text


def _trimmed(value: int, size: int) -> str:
    whole, fraction = divmod(value, size)
    digits = len(str(size)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0").rstrip(".") if fraction else str(whole)


def go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration exactly (no d/w/y), with Go's `time: …` error text."""
    if not any(ch.isdigit() for ch in text) and text not in ("0", ""):
        raise ValueError(f"time: invalid duration {_quote(text)}")
    parts = [p for p in re.split(r"[\d.]+", text.lstrip("+-")) if p]
    if any(p not in _GO_UNITS for p in parts):
        bad = next(p for p in parts if p not in _GO_UNITS)
        raise ValueError(f"time: unknown unit {_quote(bad)} in duration {_quote(text)}")
    try:
        return parse_duration_ns(text)
    except ValueError as exc:
        raise ValueError(f"time: {exc}") from None


def parse_humanized_bytes(text: str) -> int:
    """go-humanize's ParseBytes: `20MB`, `1.5 GiB`, `512` (bytes), case-insensitive units."""
    m = re.match(r"^\s*([\d.,]+)\s*([a-zA-Z]*)\s*$", text)
    if not m:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    number = m.group(1).replace(",", "")
    unit = m.group(2).lower()
    if unit not in _BYTE_UNITS and unit != "":
        raise ValueError(f"unhandled size name: {unit}")
    try:
        return int(float(number) * _BYTE_UNITS.get(unit, 1))
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{number}": invalid syntax') from None


_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_SI = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def humanized_bytes(n: int, iec: bool = True) -> str:
    """go-humanize's IBytes (`iec`) or Bytes, as Loki's messages print sizes: `9 B`, `1.5 KiB`, `12 MB`."""
    if n < 10:
        return f"{n} B"
    base, units = (1024, _IEC) if iec else (1000, _SI)
    exponent = min(int(math.floor(math.log(n) / math.log(base))), len(units) - 1)
    value = math.floor(n / base**exponent * 10 + 0.5) / 10
    return f"{value:.1f} {units[exponent]}" if value < 10 else f"{value:.0f} {units[exponent]}"
