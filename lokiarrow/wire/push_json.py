"""Loki's JSON push bodies: `/loki/api/v1/push` and the legacy `/api/prom/push`.

v1:     {"streams": [{"stream": {"app": "x"}, "values": [["<ns>", "line"], ["<ns>", "line", {"k": "v"}]]}]}
legacy: {"streams": [{"labels": "{app=\"x\"}", "entries": [{"ts": "<RFC3339>", "line": "...",
                                                           "structuredMetadata": {"k": "v"}}]}]}

Rules, as Loki reads them: keys a stream object does not know are ignored; a null entry is skipped; a
v1 entry is [timestamp, line] or [timestamp, line, metadata] (more items are ignored); the timestamp
is a string holding integer nanoseconds; label and metadata values are strings (a label value that
is a number or a boolean is taken as its JSON text, a null one as absent).

Speed: orjson builds the document with the garbage collector paused (its many small lists would
otherwise trigger collections over and over), then each stream's columns are built in bulk (C loops:
`zip`, a cast of all timestamps at once); a stream that is not all plain [timestamp, line] entries, or
whose bulk build fails, is read entry by entry, which is exact and says what is wrong.
(pyarrow's JSON reader would be faster still, but crashes the process on some input: bytes that are
not UTF-8, a `null` document, deep nesting. It must not see request bodies.)
"""

from __future__ import annotations

import calendar
import gc
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.errors import BadRequest
from lokiarrow.wire.stream import Pairs, PushStream

_INT = re.compile(r"-?[0-9]+", re.ASCII)
_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))", re.ASCII)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def decode_json(data: bytes) -> list[PushStream]:
    """Decode a `/loki/api/v1/push` JSON body. Raises BadRequest when malformed."""
    with _gc_paused():
        out = []
        for i, stream in enumerate(_streams(_loads(data))):
            where = f"streams[{i}]"
            if type(stream) is not dict:
                raise _bad(f"{where} must be an object")
            labels: str | dict[str, str] = ""    # no "stream": Loki parses "" and refuses it
            if "stream" in stream:
                labels = _label_set(stream["stream"], f"{where}.stream")
            values = stream.get("values")
            if values is None:
                values = []
            elif type(values) is not list:
                raise _bad(f"{where}.values must be an array")
            columns = _plain_values(values) or _values(values, where)
            out.append(PushStream(labels, *columns))
        return out


def _bad(message: str) -> BadRequest:
    return BadRequest(f"cannot parse push request: {message}")


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause automatic garbage collection (process-wide) while any thread is inside."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def _plain_values(values: list[Any]) -> tuple[pa.Int64Array, pa.StringArray, None] | None:
    """All entries [timestamp, line] with valid values: both columns built in bulk; else None."""
    if not values or set(map(type, values)) != {list} or set(map(len, values)) != {2}:
        return None
    stamps, lines = zip(*values, strict=True)
    try:
        ts, text = pc.cast(pa.array(stamps, pa.string()), pa.int64()), pa.array(lines, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if ts.null_count or text.null_count:   # a null timestamp or line: `_values` names it
        return None
    return ts, text, None


def _values(values: list[Any], where: str) -> tuple[pa.Int64Array, pa.StringArray, list[Pairs] | None]:
    stamps: list[int] = []
    lines: list[str] = []
    metadata: list[Pairs] = []
    for j, value in enumerate(values):
        if value is None:
            continue
        at = f"{where}.values[{j}]"
        if type(value) is not list:
            raise _bad(f"{at} must be an array of [timestamp, line] or [timestamp, line, metadata]")
        stamps.append(_ns(value[0], at) if value else 0)
        line = value[1] if len(value) > 1 else ""
        if type(line) is not str:
            raise _bad(f"{at}: the log line must be a string")
        lines.append(line)
        metadata.append(_pairs(value[2], f"{at} structured metadata") if len(value) > 2 else [])
    return pa.array(stamps, pa.int64()), pa.array(lines, pa.string()), metadata if any(metadata) else None


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "utf-8" not in str(exc).lower():
            raise _bad(f"invalid JSON: {exc}") from None
    try:   # Loki accepts text that is not UTF-8; keep it, with U+FFFD for the bad bytes
        return orjson.loads(data.decode("utf-8", "replace"))
    except orjson.JSONDecodeError as exc:
        raise _bad(f"invalid JSON: {exc}") from None


def _streams(doc: Any) -> list[Any]:
    if type(doc) is not dict:
        raise _bad("the body must be a JSON object")
    streams = doc.get("streams")
    if streams is None:
        return []
    if type(streams) is not list:
        raise _bad('"streams" must be an array')
    return streams


def _label_set(value: Any, where: str) -> dict[str, str]:
    if type(value) is not dict:
        raise _bad(f"{where} must be an object of label names and values")
    out = {}
    for name, v in value.items():
        if v is None:
            continue
        out[name] = v if type(v) is str else orjson.dumps(v).decode()
    return out


def _pairs(value: Any, where: str) -> Pairs:
    if type(value) is not dict:
        raise _bad(f"{where} must be an object")
    for v in value.values():
        if type(v) is not str:
            raise _bad(f"{where}: values must be strings")
    return list(value.items())


def _ns(value: Any, where: str) -> int:
    if type(value) is not str or not _INT.fullmatch(value):
        raise _bad(f"{where}: the timestamp must be a string of integer nanoseconds, got {orjson.dumps(value).decode()}")
    ns = int(value)
    if not _INT64[0] <= ns <= _INT64[1]:
        raise _bad(f"{where}: timestamp {value} is out of range")
    return ns


def decode_legacy_json(data: bytes) -> list[PushStream]:
    """Decode a legacy `/api/prom/push` JSON body (label text, RFC3339 timestamps)."""
    with _gc_paused():
        return [_legacy_stream(stream, f"streams[{i}]") for i, stream in enumerate(_streams(_loads(data)))]


def _legacy_stream(stream: Any, where: str) -> PushStream:
    if type(stream) is not dict:
        raise _bad(f"{where} must be an object")
    labels = stream.get("labels", "")
    if type(labels) is not str:
        raise _bad(f"{where}.labels must be a string")
    entries = stream.get("entries")
    stamps: list[int] = []
    lines: list[str] = []
    metadata: list[Pairs] = []
    if entries is not None:
        if type(entries) is not list:
            raise _bad(f"{where}.entries must be an array")
        for j, entry in enumerate(entries):
            at = f"{where}.entries[{j}]"
            if entry is None:
                continue
            if type(entry) is not dict:
                raise _bad(f"{at} must be an object")
            stamps.append(_rfc3339(entry.get("ts"), at))
            line = entry.get("line", "")
            if type(line) is not str:
                raise _bad(f"{at}.line must be a string")
            lines.append(line)
            meta = entry.get("structuredMetadata")
            metadata.append([] if meta is None else _pairs(meta, f"{at}.structuredMetadata"))
    return PushStream(labels, pa.array(stamps, pa.int64()), pa.array(lines, pa.string()),
                      metadata if any(metadata) else None)


def _rfc3339(value: Any, where: str) -> int:
    """Nanoseconds since the epoch of an RFC3339 time (`2026-01-01T00:00:00.123Z`, `...+01:00`)."""
    if value is None:
        return 0   # Go's zero time.Time; validation rejects it as too old
    m = _RFC3339.fullmatch(value) if type(value) is str else None
    if m is None:
        raise _bad(f"{where}.ts: cannot parse {orjson.dumps(value).decode()} as an RFC3339 time")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    month_days = (31, 29 if calendar.isleap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= month <= 12 and 1 <= day <= month_days[month - 1]
            and hour < 24 and minute < 60 and second < 60):
        raise _bad(f"{where}.ts: {value} is not a valid time")
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        seconds -= offset if m.group(9) == "+" else -offset
    fraction = int((m.group(7) or "0")[:9].ljust(9, "0"))
    return min(max(seconds * 1_000_000_000 + fraction, _INT64[0]), _INT64[1])   # beyond 1677..2262: too old/new


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, unlike `calendar.timegm`)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
