"""Loki's JSON push bodies: `/loki/api/v1/push` and the legacy `/api/prom/push`.

v1:     {"streams": [{"stream": {"app": "x"}, "values": [["<ns>", "line"], ["<ns>", "line", {"k": "v"}]]}]}
legacy: {"streams": [{"labels": "{app=\"x\"}", "entries": [{"ts": "<RFC3339>", "line": "...",
                                                           "structuredMetadata": {"k": "v"}}]}]}

Rules, as Loki reads them: keys a stream object does not know are ignored; a null entry is skipped; a
v1 entry is [timestamp, line] or [timestamp, line, metadata] (more items are ignored); the timestamp
is a string holding integer nanoseconds; label and metadata values are strings (a label value that
is a number or a boolean is taken as its JSON text, a null one as absent).

The v1 decoder has a fast path: pyarrow's JSON reader turns a body whose entries all have the plain
[timestamp, line] shape into Arrow columns without a Python object per entry. Anything else (metadata,
an unusual type, invalid UTF-8, a bad timestamp) goes to the orjson decoder, which is exact and is the
one that reports what is wrong.
"""

from __future__ import annotations

import calendar
import io
import re
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from lokiarrow.errors import BadRequest
from lokiarrow.wire.stream import Pairs, PushStream

_INT = re.compile(r"-?[0-9]+", re.ASCII)
_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))", re.ASCII)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_PLAIN_VALUES = pa.list_(pa.list_(pa.string()))
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


def decode_json(data: bytes) -> list[PushStream]:
    """Decode a `/loki/api/v1/push` JSON body. Raises BadRequest when malformed."""
    return _decode_json_fast(data) or _decode_json_exact(data)


def _bad(message: str) -> BadRequest:
    return BadRequest(f"cannot parse push request: {message}")


def _decode_json_fast(data: bytes) -> list[PushStream] | None:
    """The Arrow path; None when the body is not in the plain shape it handles.

    pyarrow's JSON reader crashes the process on some input (bytes that are not UTF-8, a first row
    that is `null`), so it only ever sees one line of valid UTF-8 that starts with `{`.
    """
    start = _LEADING_SPACE.match(data).end()   # type: ignore[union-attr]
    if data[start:start + 1] != b"{" or not _is_utf8(data):
        return None
    for newline in (data.find(b"\n", start), data.find(b"\r", start)):
        if newline >= 0 and data[newline:].strip():
            return None
    try:
        table = pa_json.read_json(io.BytesIO(data), read_options=pa_json.ReadOptions(
            use_threads=False, block_size=max(len(data) + 1, 1 << 10)))
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows != 1 or "streams" not in table.column_names:
        return None
    column = table.column("streams")
    if column.null_count or not pa.types.is_list(column.type):
        return None
    streams = column.combine_chunks().values
    if not pa.types.is_struct(streams.type) or streams.null_count:
        return None
    kinds = {f.name: f.type for f in streams.type}
    no_values = "values" not in kinds or streams.field("values").null_count == len(streams)
    if not no_values and kinds["values"] != _PLAIN_VALUES:
        return None
    stream_labels = streams.field("stream") if "stream" in kinds else None
    if stream_labels is None or not pa.types.is_struct(stream_labels.type) or stream_labels.null_count:
        return None
    if any(f.type not in (pa.string(), pa.null()) for f in stream_labels.type):
        return None
    n = len(streams)
    labels: list[dict[str, str]] = [{} for _ in range(n)]
    for field in stream_labels.type:
        for i, value in enumerate(stream_labels.field(field.name).to_pylist()):
            if value is not None:
                labels[i][field.name] = value
    if no_values:
        empty_ts, empty_lines = pa.array([], pa.int64()), pa.array([], pa.string())
        return [PushStream(lbs, empty_ts, empty_lines) for lbs in labels]
    values = streams.field("values")
    entries = values.flatten()           # one [timestamp, line] list per entry
    if entries.null_count:
        return None
    if len(entries) and (pc.min_max(pc.list_value_length(entries)).as_py() != {"min": 2, "max": 2}):
        return None
    try:
        items = entries.flatten()
        if len(items) != 2 * len(entries) or items.null_count:
            return None
        items.validate(full=True)        # pyarrow's reader does not check UTF-8
        stamps = pc.cast(pc.list_element(entries, 0), pa.int64())
        lines = pc.list_element(entries, 1)
        for field in stream_labels.type:
            stream_labels.field(field.name).validate(full=True)
    except pa.ArrowException:
        return None
    out = []
    offsets = values.offsets.to_pylist()
    for i in range(n):
        start, stop = offsets[i], offsets[i + 1]
        out.append(PushStream(labels[i], stamps.slice(start, stop - start), lines.slice(start, stop - start)))
    return out


def _is_utf8(data: bytes) -> bool:
    offsets = pa.py_buffer(pa.array([0, len(data)], pa.int32()).buffers()[1])
    try:
        pa.StringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


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


def _decode_json_exact(data: bytes) -> list[PushStream]:
    out = []
    for i, stream in enumerate(_streams(_loads(data))):
        where = f"streams[{i}]"
        if type(stream) is not dict:
            raise _bad(f"{where} must be an object")
        labels: str | dict[str, str] = ""    # no "stream": Loki parses "" and rejects it
        if "stream" in stream:
            labels = _label_set(stream["stream"], f"{where}.stream")
        values = stream.get("values")
        stamps: list[int] = []
        lines: list[str] = []
        metadata: list[Pairs] = []
        if values is not None:
            if type(values) is not list:
                raise _bad(f"{where}.values must be an array")
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
        out.append(PushStream(labels, pa.array(stamps, pa.int64()), pa.array(lines, pa.string()),
                              metadata if any(metadata) else None))
    return out


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
    out = []
    for i, stream in enumerate(_streams(_loads(data))):
        where = f"streams[{i}]"
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
        out.append(PushStream(labels, pa.array(stamps, pa.int64()), pa.array(lines, pa.string()),
                              metadata if any(metadata) else None))
    return out


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
