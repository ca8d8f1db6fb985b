"""Go's time.Time for templates: a value that prints, formats and parses with Go's layouts.

The server's "Local" zone is UTC (as in Loki's container images). Layouts are Go's reference
time `Mon Jan 2 15:04:05 MST 2006`; `format_layout` writes one and `parse_layout` reads one,
returning None where Go's time.Parse would fail.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

UTC = dt.UTC
_ZERO_UNIX = -62135596800  # Unix seconds of Go's zero time, 0001-01-01 00:00:00 UTC
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Layout elements, longest first so that `2006` wins over `2` and `Jan` loses to `January`.
_CHUNK = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|002|__2|_2|01|02|03|04|05|06|15|PM|pm|1|2|3|4|5"
    r"|-07:00:00|-070000|-07:00|-0700|-07|Z07:00:00|Z070000|Z07:00|Z0700|Z07|[.,](?:0+|9+)(?!\d)")


@dataclass(frozen=True, slots=True)
class GoTime:
    """An instant (`ns` since the Unix epoch) seen in a zone, as Go's time.Time."""

    ns: int
    tz: dt.tzinfo = UTC

    @classmethod
    def zero(cls) -> GoTime:
        return cls(_ZERO_UNIX * 10**9)

    def local(self) -> dt.datetime:
        """The wall clock in this time's zone (to the second; `ns % 10**9` is the fraction)."""
        utc = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=self.ns // 10**9)
        return utc if self.tz is UTC else utc.astimezone(self.tz)

    def unix(self) -> int:
        return self.ns // 10**9

    def __str__(self) -> str:
        return format_layout(self, "2006-01-02 15:04:05.999999999 -0700 MST")

    def is_zero(self) -> bool:
        return self.ns == _ZERO_UNIX * 10**9


def zone(name: str) -> dt.tzinfo | None:
    """Go's time.LoadLocation: "" and "UTC" are UTC, "Local" is the server's zone (UTC)."""
    if name in ("", "UTC", "Local"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):   # OSError: a folder, a name too long
        return None


def _zone_name(local: dt.datetime) -> str:
    name = local.tzname() or "UTC"
    return "UTC" if name == "UTC" else name


def _offset(local: dt.datetime, colon: bool, seconds: bool, z: bool) -> str:
    off = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
    if z and off == 0:
        return "Z"
    sign = "-" if off < 0 else "+"
    off = abs(off)
    parts = [f"{off // 3600:02d}", f"{off // 60 % 60:02d}"] + ([f"{off % 60:02d}"] if seconds else [])
    return sign + (":" if colon else "").join(parts)


def format_layout(t: GoTime, layout: str) -> str:
    """Go's Time.Format(layout)."""
    local = t.local()
    frac = t.ns % 10**9
    out = []
    pos = 0
    for m in _CHUNK.finditer(layout):
        out.append(layout[pos:m.start()])
        pos = m.end()
        c = m.group()
        if c[0] in ".,":
            digits = f"{frac:09d}"[:len(c) - 1]
            if c[1] == "9":
                digits = digits.rstrip("0")
                out.append(c[0] + digits if digits else "")
            else:
                out.append(c[0] + digits)
            continue
        out.append(_format_chunk(c, local))
    out.append(layout[pos:])
    return "".join(out)


def _format_chunk(c: str, d: dt.datetime) -> str:
    h12 = d.hour % 12 or 12
    simple = {
        "January": _MONTHS[d.month - 1], "Jan": _MONTHS[d.month - 1][:3], "Monday": _DAYS[d.weekday()],
        "Mon": _DAYS[d.weekday()][:3], "MST": _zone_name(d), "2006": f"{d.year:04d}", "06": f"{d.year % 100:02d}",
        "002": f"{d.timetuple().tm_yday:03d}", "__2": f"{d.timetuple().tm_yday:>3d}", "_2": f"{d.day:>2d}",
        "01": f"{d.month:02d}", "1": str(d.month), "02": f"{d.day:02d}", "2": str(d.day), "15": f"{d.hour:02d}",
        "03": f"{h12:02d}", "3": str(h12), "04": f"{d.minute:02d}", "4": str(d.minute),
        "05": f"{d.second:02d}", "5": str(d.second), "PM": "PM" if d.hour >= 12 else "AM",
        "pm": "pm" if d.hour >= 12 else "am",
    }
    if c in simple:
        return simple[c]
    z = c[0] == "Z"
    if c[1:] == "07":
        return _offset(d, False, False, z)[:3] if not (z and d.utcoffset() == dt.timedelta(0)) else "Z"
    return _offset(d, ":" in c, len(c.replace(":", "")) == 7, z)


_NUM = {"2006": 4, "06": 2, "01": 2, "02": 2, "03": 2, "04": 2, "05": 2, "15": 2, "002": 3}


def parse_layout(layout: str, value: str, loc: dt.tzinfo) -> GoTime | None:
    """Go's time.ParseInLocation(layout, value, loc); None where Go returns an error."""
    f: dict[str, int] = {"year": 1, "month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0, "ns": 0}
    pm: bool | None = None
    off: int | None = None
    pos = lpos = 0
    for m in _CHUNK.finditer(layout):
        literal = layout[lpos:m.start()]
        if not value.startswith(literal, pos):
            return None
        pos += len(literal)
        lpos = m.end()
        c = m.group()
        rest = value[pos:]
        if c in ("January", "Jan", "Monday", "Mon"):
            names = _MONTHS if c[0] == "J" else _DAYS
            for i, name in enumerate(names):
                name = name if len(c) > 3 else name[:3]
                if rest.lower().startswith(name.lower()):
                    if c[0] == "J":
                        f["month"] = i + 1
                    pos += len(name)
                    break
            else:
                return None
            continue
        if c in ("PM", "pm"):
            if rest[:2].upper() not in ("AM", "PM"):
                return None
            pm, pos = rest[:2].upper() == "PM", pos + 2
            continue
        if c == "MST":
            zm = re.match(r"[A-Z]{3,5}|[+-]\d+", rest)
            if not zm:
                return None
            if zm.group() == "UTC":
                off = 0
            pos += zm.end()
            continue
        if c[0] in "-Z":
            if c[0] == "Z" and rest[:1] == "Z":
                off, pos = 0, pos + 1
                continue
            zm = re.match(r"([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?", rest)
            if not zm:
                return None
            off = (int(zm.group(2)) * 3600 + int(zm.group(3) or 0) * 60 + int(zm.group(4) or 0))
            off = -off if zm.group(1) == "-" else off
            pos += zm.end()
            continue
        if c[0] in ".,":
            fm = re.match(r"[.,](\d+)", rest)
            if not fm:
                if c[1] == "9":
                    continue
                return None
            f["ns"] = int(fm.group(1)[:9].ljust(9, "0"))
            pos += fm.end()
            continue
        width = _NUM.get(c)
        nm = re.match(rf"\d{{{width}}}" if width else (r" ?\d{1,2}" if c == "_2" else r"\d{1,2}"), rest.lstrip(" ")
                      if c in ("_2", "__2") else rest)
        if not nm:
            return None
        pos += nm.end() + (len(rest) - len(rest.lstrip(" ")) if c in ("_2", "__2") else 0)
        n = int(nm.group())
        key = {"2006": "year", "06": "year", "01": "month", "1": "month", "02": "day", "2": "day", "_2": "day",
               "15": "hour", "03": "hour", "3": "hour", "04": "minute", "4": "minute", "05": "second",
               "5": "second"}.get(c)
        if c == "06":
            n += 1900 if n >= 69 else 2000
        if key is None:
            continue  # day of year: accepted, not applied
        f[key] = n
        if key == "second" and layout[lpos:lpos + 1] not in (".", ",") and re.match(r"[.,]\d", value[pos:]):
            fm = re.match(r"[.,](\d+)", value[pos:])
            assert fm is not None
            f["ns"] = int(fm.group(1)[:9].ljust(9, "0"))
            pos += fm.end()
    if value[pos:] != layout[lpos:]:
        return None
    if pm is not None:
        if not 1 <= f["hour"] <= 12:
            return None
        f["hour"] = f["hour"] % 12 + (12 if pm else 0)
    try:
        tz = dt.timezone(dt.timedelta(seconds=off)) if off is not None else loc
        if off == 0:
            tz = UTC
        d = dt.datetime(f["year"], f["month"], f["day"], f["hour"], f["minute"], f["second"], tzinfo=tz)
    except (ValueError, OverflowError):
        return None
    seconds = int((d - dt.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    return GoTime(seconds * 10**9 + f["ns"], tz)


def unix_to_time(epoch: str) -> GoTime:
    """Loki's unixToTime: days, seconds, ms, µs or ns by the number of digits."""
    scale = {5: 86400 * 10**9, 10: 10**9, 13: 10**6, 16: 10**3, 19: 1}
    try:
        n = int(epoch, 10)
    except ValueError:
        raise ValueError(f"unable to parse time '{epoch}': strconv.ParseInt: parsing \"{epoch}\": invalid syntax") from None
    if len(epoch) not in scale:
        raise ValueError(f"unable to parse time '{epoch}': %!w(<nil>)")
    return GoTime(n * scale[len(epoch)])
