"""What Grafana's Logs Drilldown asks besides queries: detected labels, fields and field values.

Detected labels (Loki's querier `DetectedLabels`):
1. The streams matching the selector with entries in range; each label's distinct values.
2. A label is left out when all its values look like ids (numbers or UUIDs), unless it is one of
   the static labels (`cluster`, `namespace`, `instance`, `pod`) or its values are only `0`/`1`.

Detected fields (Loki's query-frontend `NewDetectedFieldsHandler`):
1. Sample the newest `line_limit` entries of the log query (its filters and pipeline apply).
2. Read the entries stream by stream, streams in label order, each newest first (the order of
   Loki's answer). Structured metadata gives fields without a parser; each line is parsed as
   JSON, and where that fails as logfmt (lenient, empty values left out); a parsed name equal to
   a stream label gets `_extracted`.
3. A field's type is decided from the first value of each entry holding it, the last entry
   read deciding (int, float, boolean, duration, bytes, else string, tried in that order);
   its cardinality is its number of distinct values; at most `limit` fields are kept, the first
   met.

Field values: the distinct values of one field over the same sample, up to `limit`; a parsed
value that reads as bytes with a unit is rewritten the way Loki prints bytes (`1.5GB` -> `1.5GB`,
`1536KiB` -> `1.6MB`), so it can go straight into a query.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
import pyarrow as pa

from lokiarrow.compile.fields import field_filter
from lokiarrow.compile.prefilter import prefilters
from lokiarrow.exec import pipeline
from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.exec.parsers.json import parse_json
from lokiarrow.exec.parsers.logfmt import parse_logfmt
from lokiarrow.exec.parsers.names import sanitize_path
from lokiarrow.exec.sources import streams_in_range
from lokiarrow.logql import ast
from lokiarrow.model import Matcher
from lokiarrow.store.tenant import Snapshot
from lokiarrow.units import humanized_bytes

STATIC_LABELS = frozenset({"cluster", "namespace", "instance", "pod"})
ERROR_LABELS = frozenset({"__error__", "__error_details__", "__preserve_error__"})
_JSON = ast.JsonParser()
_LOGFMT = ast.LogfmtParser()


# --- detected labels ---------------------------------------------------------------------------

def _looks_like_id(value: str) -> bool:
    if go_float(value):
        return True
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def rejected(values: Iterable[str]) -> bool:
    """Whether a label with these values is left out: no values, or every value an id (a number
    or a UUID), except when the values are only `0` and `1` (booleans)."""
    values = list(values)
    if not values:
        return True
    if len(values) <= 2 and all(v in ("0", "1") for v in values):
        return False
    return all(_looks_like_id(v) for v in values)


def detected_labels(snapshot: Snapshot, start: int, end: int,
                    matchers: tuple[Matcher, ...] | None) -> list[dict[str, Any]]:
    """Labels of the streams in range with their number of distinct values, ordered by name."""
    labels_of = snapshot.index.streams.labels
    values: dict[str, set[str]] = {}
    for sid in streams_in_range(snapshot, start, end, matchers):
        for name, value in labels_of[sid].items():
            values.setdefault(name, set()).add(value)
    return [{"label": name, "cardinality": len(vals)} for name, vals in sorted(values.items())
            if name in STATIC_LABELS or not rejected(vals)]


# --- value types (Go's strconv, time.ParseDuration, go-humanize's ParseBytes) --------------------

_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
                       re.IGNORECASE)
_GO_DURATION = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+")
_BYTES_NUMBER = re.compile(r"[0-9.,]*")
_BYTE_UNITS = {
    "": 1, "b": 1,
    "kib": 1024, "ki": 1024, "kb": 1000, "k": 1000,
    "mib": 1024**2, "mi": 1024**2, "mb": 1000**2, "m": 1000**2,
    "gib": 1024**3, "gi": 1024**3, "gb": 1000**3, "g": 1000**3,
    "tib": 1024**4, "ti": 1024**4, "tb": 1000**4, "t": 1000**4,
    "pib": 1024**5, "pi": 1024**5, "pb": 1000**5, "p": 1000**5,
    "eib": 1024**6, "ei": 1024**6, "eb": 1000**6, "e": 1000**6,
}
# units after which a bytes value is rewritten for the values endpoint (Loki's allowedBytesUnits)
_REWRITTEN_UNITS = ("b", "kib", "kb", "mib", "mb", "gib", "gb", "tib", "tb", "pib", "pb", "eib", "eb",
                    "ki", "k", "mi", "m", "gi", "g", "ti", "t", "pi", "p", "ei", "e")


def go_int(value: str) -> bool:
    return bool(_GO_INT.fullmatch(value)) and -(2**63) <= int(value) < 2**63


def go_float(value: str) -> bool:
    if not _GO_FLOAT.fullmatch(value):
        return False
    return not math.isinf(float(value)) or value.lstrip("+-").lower() in ("inf", "infinity")


def go_bool(value: str) -> bool:
    return value in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")


def go_duration(value: str) -> bool:
    return value in ("0", "+0", "-0") or bool(_GO_DURATION.fullmatch(value))


def parse_bytes(value: str) -> int | None:
    """go-humanize's ParseBytes: a number (`,` allowed) then an optional unit, SI or IEC."""
    number = _BYTES_NUMBER.match(value)
    digits = number.group(0) if number else ""
    try:
        amount = float(digits.replace(",", ""))
    except ValueError:
        return None
    if "_" in digits or not digits.replace(",", "").replace(".", ""):
        return None
    unit = _BYTE_UNITS.get(value[len(digits):].strip(" \t\n\r").lower())
    if unit is None or amount * unit >= 2**64:
        return None
    return int(amount * unit)


def field_type(value: str) -> str:
    if go_int(value):
        return "int"
    if go_float(value):
        return "float"
    if go_bool(value):
        return "boolean"
    if go_duration(value):
        return "duration"
    if parse_bytes(value) is not None:
        return "bytes"
    return "string"


def si_bytes(size: int) -> str:
    """go-humanize's Bytes (SI units), without the space."""
    return humanized_bytes(size, iec=False).replace(" ", "")


def query_value(value: str) -> str:
    """A parsed value as the values endpoint gives it: bytes with a unit printed as Loki prints them."""
    size = parse_bytes(value)
    if size is not None and value.lower().endswith(_REWRITTEN_UNITS):
        return si_bytes(size)
    return value


# --- sampling and reading entries ---------------------------------------------------------------

@dataclass
class Entry:
    """One sampled entry as the detection reads it."""

    metadata: dict[str, str]
    parsed: dict[str, str]             # labels the line gave (query parsers, then JSON or logfmt)
    parser: str | None                 # "json", "logfmt", or None when neither parsed the line
    json_paths: dict[str, list[str]]   # for JSON lines: each parsed name's path of original keys


def sample(snapshot: Snapshot, expr: ast.LogExpr, start: int, end: int, line_limit: int) -> pa.Table:
    """The newest `line_limit` entries of the log query in [start, end)."""
    filters, rest = pipeline.split(expr.stages)
    ids = snapshot.index.streams.match(expr.matchers)
    if not ids:
        return pa.table({})
    names = {name for sid in ids for name in snapshot.index.streams.labels[sid]}
    q = LogQuery(expr.matchers, filters, start, end, line_limit, True, rest,
                 prefilters(rest, names), field_filter(rest, names))
    return select_logs(snapshot, ids, q, ScanStats())


def _json_paths(line: str) -> dict[str, list[str]]:
    """Each label name `| json` makes of the line, with the original keys leading to it."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    paths: dict[str, list[str]] = {}

    def walk(node: dict[str, Any], prefix: list[str]) -> None:
        for key, value in node.items():
            path = [*prefix, key]
            if isinstance(value, dict):
                walk(value, path)
            elif not isinstance(value, list):
                name = sanitize_path(path)
                if name:
                    paths.setdefault(name, path)

    if isinstance(doc, dict):
        walk(doc, [])
    return paths


def _parse_lines(lines: list[str], stream_names: set[str]) -> list[tuple[dict[str, str], str | None]]:
    """Each line's labels from JSON, else logfmt, and the parser that gave them."""
    out: list[tuple[dict[str, str], str | None]] = [({}, None)] * len(lines)
    parsed = parse_json(pa.array(lines, pa.string()), _JSON, stream_names)
    failed = [i for i, err in enumerate(parsed.error.to_pylist()) if err is not None]
    columns = {name: col.to_pylist() for name, col in parsed.columns.items()}
    bad = set(failed)
    for i in range(len(lines)):
        if i not in bad:
            out[i] = ({n: vals[i] for n, vals in columns.items() if vals[i] is not None}, "json")
    if failed:
        retry = parse_logfmt(pa.array([lines[i] for i in failed], pa.string()), _LOGFMT, stream_names)
        columns = {name: col.to_pylist() for name, col in retry.columns.items()}
        for k, (i, err) in enumerate(zip(failed, retry.error.to_pylist(), strict=True)):
            if err is None:
                out[i] = ({n: vals[k] for n, vals in columns.items() if vals[k] is not None}, "logfmt")
    return out


def entries(snapshot: Snapshot, rows: pa.Table) -> Iterator[Entry]:
    """The sampled rows as entries: streams in label order, each stream's entries newest first."""
    if rows.num_rows == 0:
        return
    labels_of = snapshot.index.streams.labels
    text_of = snapshot.index.streams.text
    sids = rows.column("stream_id").to_pylist()
    lines = rows.column("line").to_pylist()
    metadata = rows.column("metadata").to_pylist()
    final = rows.column("labels").to_pylist() if "labels" in rows.column_names else None
    by_stream: dict[int, list[int]] = {}
    for i, sid in enumerate(sids):
        by_stream.setdefault(sid, []).append(i)
    for sid in sorted(by_stream, key=lambda s: text_of[s]):
        stream_names = set(labels_of[sid])
        at = by_stream[sid]
        results = _parse_lines([lines[i] or "" for i in at], stream_names)
        for i, (found, parser) in zip(at, results, strict=True):
            meta = dict(metadata[i] or [])
            # labels the query's own parsers made: neither stream labels nor metadata
            parsed = {k: v for k, v in (final[i] if final is not None else [])
                      if k not in stream_names and k not in meta and k not in ERROR_LABELS}
            if parser is not None:
                parsed.update({k: v for k, v in found.items() if k not in ERROR_LABELS})
            paths = _json_paths(lines[i] or "") if parser == "json" else {}
            yield Entry(meta, parsed, parser, paths)


# --- detected fields ----------------------------------------------------------------------------

@dataclass
class _Field:
    parsers: list[str]
    kind: str = "string"
    values: set[str] = field(default_factory=set)
    json_path: list[str] | None = None


def detected_fields(snapshot: Snapshot, expr: ast.LogExpr, start: int, end: int, line_limit: int,
                    limit: int) -> dict[str, Any]:
    """Loki's detected_fields answer: `{"fields": [...], "limit": N}` (`{}` when nothing is found)."""
    found: dict[str, _Field] = {}
    for entry in entries(snapshot, sample(snapshot, expr, start, end, line_limit)):
        for name, value in entry.metadata.items():
            f = found.get(name)
            if f is None and len(found) < limit:
                f = found[name] = _Field([])
            if f is not None:
                f.kind = field_type(value)
                f.values.add(value)
        for name, value in entry.parsed.items():
            f = found.get(name)
            if f is None and len(found) < limit:
                f = found[name] = _Field([entry.parser] if entry.parser else [])
            if f is None:
                continue
            if entry.parser and entry.parser not in f.parsers:
                f.parsers.append(entry.parser)
            if entry.parser == "json":
                f.json_path = entry.json_paths.get(name)
            f.kind = field_type(value)
            f.values.add(value)
    fields = []
    for name, f in sorted(found.items()):
        one: dict[str, Any] = {"label": name, "type": f.kind, "cardinality": len(f.values),
                               "parsers": f.parsers or None}
        if f.json_path:
            one["jsonPath"] = f.json_path
        fields.append(one)
    return {"fields": fields, "limit": limit} if fields else {}


def detected_field_values(snapshot: Snapshot, expr: ast.LogExpr, name: str, start: int, end: int,
                          line_limit: int, limit: int) -> dict[str, Any]:
    """Loki's detected_field/<name>/values answer: `{"values": [...], "limit": N}` (`{}` when none)."""
    values: set[str] = set()
    for entry in entries(snapshot, sample(snapshot, expr, start, end, line_limit)):
        if len(values) >= limit:
            break
        if name in entry.metadata:
            values.add(entry.metadata[name])
        if name in entry.parsed:
            values.add(query_value(entry.parsed[name]))
    return {"values": sorted(values), "limit": limit} if values else {}
