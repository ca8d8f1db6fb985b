"""OTLP/HTTP log exports (`POST /otlp/v1/logs`) to push streams, as Loki 3's distributor converts them
with its default `otlp_config`.

1. Undo `Content-Encoding`: gzip, zstd, lz4 or none (Loki's set); anything else is refused.
2. `Content-Type`, compared as a whole as Loki does: `application/x-protobuf` or `application/json`
   (OTLP/JSON: camelCase or proto field names, hex trace and span ids, unknown fields ignored) give an
   `ExportLogsServiceRequest`; anything else is refused. A request without log records gives no stream.
3. Per resource: an attribute named in `index_attributes` becomes stream labels, the others structured
   metadata. Names are sanitised as Prometheus' OTLP translator does (`k8s.pod.name` -> `k8s_pod_name`);
   a map value gives one pair per leaf (`a: {b: 1}` -> `a_b="1"`); other values are rendered as text
   (`any_value_text`). `service_name`: the resource's `service.name`, else the first indexed label (in
   attribute order) named in `discover_service_name`, else `unknown_service`; none when that list is empty.
4. Per record, the structured metadata, in Loki's order: the record's attributes, `observed_timestamp`
   (when both times are set), `severity_number`, `severity_text`, `dropped_attributes_count`, `flags`,
   `trace_id`, `span_id` (hex; each only when set), then the resource's pairs, then the scope's (its
   attributes, `scope_name`, `scope_version`, `scope_dropped_attributes_count`).
5. The line is the body as text; the time is `timeUnixNano`, else `observedTimeUnixNano`, else `now_ns`.
6. Records with the same labels make one stream, streams in order of first record, entries in request order.
Errors are BadRequest (400) with Loki's words where Loki's are reproducible, BodyTooLarge (413).
"""

from __future__ import annotations

import base64
import math
import mmap
import re
import zlib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import cramjam
import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from lokiarrow.errors import BadRequest, BodyTooLarge
from lokiarrow.model import go_quote
from lokiarrow.wire.push import MAX_DECOMPRESSED_BYTES, MAX_RECV_MSG_SIZE, inflate_into
from lokiarrow.wire.stream import Pairs, PushStream

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Loki's distributor.otlp.default_resource_attributes_as_index_labels
DEFAULT_INDEX_ATTRIBUTES = ("service.name", "service.namespace", "service.instance.id", "deployment.environment",
                            "deployment.environment.name", "cloud.region", "cloud.availability_zone",
                            "k8s.cluster.name", "k8s.namespace.name", "k8s.pod.name", "k8s.container.name",
                            "container.name", "k8s.replicaset.name", "k8s.deployment.name", "k8s.statefulset.name",
                            "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name")
SERVICE_NAME = "service_name"
UNKNOWN_SERVICE = "unknown_service"
_ENCODINGS = ("gzip", "zstd", "lz4")
_INT64 = 1 << 63


def decode_otlp(body: bytes, content_type: str | None, content_encoding: str | None, now_ns: int, *,
                discover_service_name: Sequence[str],
                index_attributes: Iterable[str] = DEFAULT_INDEX_ATTRIBUTES,
                max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES) -> list[PushStream]:
    """Steps 1-6: an OTLP/HTTP logs body to push streams. Raises LokiError (400, 413), nothing else."""
    request = parse_export(decompress(body, content_encoding or "", max_decompressed_bytes), content_type or "")
    return export_to_streams(request, now_ns, discover_service_name, frozenset(index_attributes))


def decompress(body: bytes, encoding: str, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Step 1: the body without its Content-Encoding, at most `limit` bytes."""
    if encoding and encoding not in _ENCODINGS:
        raise BadRequest(f"unsupported content encoding {encoding}: only gzip, lz4 and zstd are supported")
    if len(body) > MAX_RECV_MSG_SIZE:
        raise BodyTooLarge(f"request body too large: message size too large than max "
                           f"({len(body)} vs {MAX_RECV_MSG_SIZE})")
    if encoding == "gzip":
        body = _gunzip(body, limit)
    elif encoding:
        body = _unframe(body, encoding, limit)
    if len(body) > limit:
        raise _too_large(len(body), limit)
    return body


def _too_large(size: int, limit: int) -> BadRequest:
    return BadRequest(f"decompressed message size too large than max ({size} vs {limit})")


def _gunzip(body: bytes, limit: int) -> bytes:
    """Gzip members one after another, with the errors Go's gzip reader gives."""
    if not body:
        raise BadRequest("EOF")
    out = bytearray()
    while body:
        if len(body) < 10:
            raise BadRequest("unexpected EOF")
        if body[:3] != b"\x1f\x8b\x08":
            raise BadRequest("gzip: invalid header")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            inflate_into(inflater, body, out, limit)
        except zlib.error as exc:
            cause = str(exc).split(": ", 1)[-1]   # zlib's "Error -3 while decompressing data: <cause>"
            check = cause in ("incorrect data check", "incorrect length check")
            raise BadRequest("gzip: invalid checksum" if check else f"flate: corrupt input: {cause}") from None
        if len(out) > limit:
            raise _too_large(len(out), limit)
        if not inflater.eof:
            raise BadRequest("unexpected EOF")
        body = inflater.unused_data
    return bytes(out)


def _unframe(body: bytes, encoding: str, limit: int) -> bytes:
    """A zstd or LZ4 frame, inflated into a lazily mapped buffer of `limit + 1` bytes."""
    codec = cramjam.zstd if encoding == "zstd" else cramjam.lz4
    with mmap.mmap(-1, limit + 1) as out:
        try:
            size = codec.decompress_into(body, out)
        except cramjam.DecompressionError as exc:
            if "whole buffer" in str(exc):
                raise _too_large(limit + 1, limit) from None
            raise BadRequest(f"{encoding}: {exc}") from None
        return out[:size]


def parse_export(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    """Step 2: the request of a protobuf or OTLP/JSON body."""
    request = ExportLogsServiceRequest()
    if content_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"cannot parse OTLP protobuf request: {exc}") from None
        return request
    if content_type == JSON:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"cannot parse OTLP JSON request: {exc}") from None
        if doc is None:
            return request
        if not isinstance(doc, dict):
            raise BadRequest("cannot parse OTLP JSON request: the document must be an object")
        _hex_ids_to_base64(doc)
        try:
            json_format.ParseDict(doc, request, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise BadRequest(f"cannot parse OTLP JSON request: {exc}") from None
        return request
    raise BadRequest(f"content type: {content_type} is not supported")


_IDS = (("traceId", 16), ("trace_id", 16), ("spanId", 8), ("span_id", 8))


def _items(doc: dict[str, Any], *names: str) -> list[Any]:
    for name in names:
        value = doc.get(name)
        if isinstance(value, list):
            return value
    return []


def _hex_ids_to_base64(doc: dict[str, Any]) -> None:
    """OTLP/JSON writes trace and span ids in hex where protobuf's JSON mapping expects base64 bytes:
    rewrite them in place (an empty id is no id). Anything else malformed is left to ParseDict."""
    for resource in _items(doc, "resourceLogs", "resource_logs"):
        for scope in _items(resource, "scopeLogs", "scope_logs") if isinstance(resource, dict) else ():
            for record in _items(scope, "logRecords", "log_records") if isinstance(scope, dict) else ():
                if not isinstance(record, dict):
                    continue
                for key, size in _IDS:
                    value = record.get(key)
                    if not isinstance(value, str):
                        continue
                    if not value:
                        del record[key]
                        continue
                    try:
                        raw = bytes.fromhex(value) if len(value) == 2 * size else b""
                    except ValueError:
                        raw = b""
                    if len(raw) != size:
                        raise BadRequest(f"cannot parse OTLP JSON request: {key} {go_quote(value)} is not "
                                         f"{2 * size} hex digits")
                    record[key] = base64.b64encode(raw).decode()


# --- step 3-6: the conversion ---

def export_to_streams(request: ExportLogsServiceRequest, now_ns: int, discover_service_name: Sequence[str],
                      index_attributes: frozenset[str] = frozenset(DEFAULT_INDEX_ATTRIBUTES)) -> list[PushStream]:
    """Steps 3-6 over a decoded request."""
    streams: dict[tuple[tuple[str, str], ...], tuple[list[int], list[str], list[Pairs]]] = {}
    if not any(scope.log_records for resource in request.resource_logs for scope in resource.scope_logs):
        return []
    for resource_logs in request.resource_logs:
        labels, resource_meta = _resource(resource_logs.resource.attributes, discover_service_name,
                                          index_attributes)
        key = tuple(sorted(labels.items()))
        for scope_logs in resource_logs.scope_logs:
            scope_meta = _scope(scope_logs.scope)
            if not scope_logs.log_records:
                continue
            timestamps, lines, metadata = streams.setdefault(key, ([], [], []))
            for record in scope_logs.log_records:
                pairs = _record_metadata(record)
                pairs += resource_meta
                pairs += scope_meta
                timestamps.append(_record_time(record, now_ns))
                lines.append(any_value_text(record.body))
                metadata.append(pairs)
    return [PushStream.of(dict(key), *columns) for key, columns in streams.items()]


def _resource(attributes: Sequence[KeyValue], discover: Sequence[str],
              index_attributes: frozenset[str]) -> tuple[dict[str, str], Pairs]:
    labels: dict[str, str] = {}
    metadata: Pairs = []
    named = next((kv for kv in attributes if kv.key == "service.name"), None)
    has_service = named is not None and any_value_text(named.value) != ""
    for kv in attributes:
        pairs = attribute_pairs(kv.key, kv.value)
        if kv.key not in index_attributes:
            metadata += pairs
            continue
        for name, value in pairs:
            labels[name] = value
            if not has_service and name in discover:
                labels[SERVICE_NAME] = value
                has_service = True
    if not has_service and discover:
        labels[SERVICE_NAME] = UNKNOWN_SERVICE
    return labels, metadata


def _scope(scope: Any) -> Pairs:
    pairs: Pairs = []
    for kv in scope.attributes:
        pairs += attribute_pairs(kv.key, kv.value)
    if scope.name:
        pairs.append(("scope_name", scope.name))
    if scope.version:
        pairs.append(("scope_version", scope.version))
    if scope.dropped_attributes_count:
        pairs.append(("scope_dropped_attributes_count", str(scope.dropped_attributes_count)))
    return pairs


def _record_metadata(record: Any) -> Pairs:
    pairs: Pairs = []
    for kv in record.attributes:
        pairs += attribute_pairs(kv.key, kv.value)
    if record.time_unix_nano and record.observed_time_unix_nano:
        pairs.append(("observed_timestamp", str(_signed(record.observed_time_unix_nano))))
    if record.severity_number:
        pairs.append(("severity_number", str(record.severity_number)))
    if record.severity_text:
        pairs.append(("severity_text", record.severity_text))
    if record.dropped_attributes_count:
        pairs.append(("dropped_attributes_count", str(record.dropped_attributes_count)))
    if record.flags:
        pairs.append(("flags", str(record.flags)))
    for name, raw, size, kind in (("trace_id", record.trace_id, 16, "TraceID"),
                                  ("span_id", record.span_id, 8, "SpanID")):
        if raw and len(raw) != size:
            raise BadRequest(f"unmarshal: invalid {kind} length")
        if raw.strip(b"\0"):
            pairs.append((name, raw.hex()))
    return pairs


def _record_time(record: Any, now_ns: int) -> int:
    if record.time_unix_nano:
        return _signed(record.time_unix_nano)
    if record.observed_time_unix_nano:
        return _signed(record.observed_time_unix_nano)
    return now_ns


def _signed(ns: int) -> int:
    """A fixed64 time as Go's int64 conversion reads it."""
    return ns - (1 << 64) if ns >= _INT64 else ns


# --- names and values as text ---

_INVALID_RUN = re.compile(r"[^a-zA-Z0-9]+")
_NAMES: dict[str, str] = {}


def label_name(key: str) -> str:
    """An attribute name as a label name, as Prometheus' OTLP translator builds it: each run of
    characters other than ASCII letters and digits becomes one `_`, `__x__` keeps its underscores,
    a leading digit gets `key_`. Raises BadRequest for a name that leaves only underscores."""
    name = _NAMES.get(key)
    if name is not None:
        return name
    if not key:
        raise BadRequest("symbolizer lookup: label name is empty")
    reserved = len(key) >= 4 and key.startswith("__") and key.endswith("__")
    name = _INVALID_RUN.sub("_", key[2:-2] if reserved else key)
    if reserved:
        name = f"__{name}__"
    if name[0].isdigit():
        name = "key_" + name
    if not name.strip("_"):
        raise BadRequest(f"symbolizer lookup: normalization for label name {go_quote(key)} resulted in "
                         f"invalid name {go_quote(name)}")
    if len(_NAMES) < 10_000:
        _NAMES[key] = name
    return name


def attribute_pairs(key: str, value: AnyValue, prefix: str = "") -> Pairs:
    """An attribute as (label name, text) pairs: one, or one per leaf of a map value."""
    name = label_name(f"{prefix}_{key}" if prefix else key)
    if value.WhichOneof("value") != "kvlist_value":
        return [(name, any_value_text(value))]
    pairs: Pairs = []
    for kv in value.kvlist_value.values:
        pairs += attribute_pairs(kv.key, kv.value, name)
    return pairs


def any_value_text(value: AnyValue) -> str:
    """An AnyValue as pdata's AsString renders it: strings as they are, numbers and booleans as Go
    prints them, bytes in base64, maps and arrays as compact JSON (keys sorted); nothing is ""."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return go_float(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    try:
        return _json(_raw(value))
    except ValueError:   # NaN or an infinity inside: Go's encoder fails and pdata gives ""
        return ""


def _raw(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [_raw(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None if kind is None else getattr(value, kind)


def _json(raw: Any) -> str:
    """Go's encoding/json output for the values `_raw` builds (map keys sorted, no HTML escaping)."""
    if raw is None:
        return "null"
    if raw is True or raw is False:
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError("unsupported value")
        return go_float(raw)
    if isinstance(raw, str):
        return _json_string(raw)
    if isinstance(raw, list):
        return "[" + ",".join(_json(v) for v in raw) + "]"
    return "{" + ",".join(f"{_json_string(k)}:{_json(raw[k])}" for k in sorted(raw)) + "}"


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_JSON_SPECIAL = re.compile('["\\\\\x00-\x1f\u2028\u2029]')


def _json_string(text: str) -> str:
    return '"' + _JSON_SPECIAL.sub(lambda m: _JSON_ESCAPES.get(m[0]) or f"\\u{ord(m[0]):04x}", text) + '"'


def go_float(f: float) -> str:
    """A float as Go's JSON encoder and pdata write it: the shortest digits that read back, in plain
    notation, or in exponent notation below 1e-6 and from 1e21 (`1e-7`, `1e+21`)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    exact = Decimal(repr(f)).normalize()
    if f == 0 or 1e-6 <= abs(f) < 1e21:
        return format(exact, "f")
    sign, digits, exponent = exact.as_tuple()
    text = "".join(map(str, digits))
    power = int(exponent) + len(text) - 1
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return ("-" if sign else "") + mantissa + (f"e-{-power}" if power < 0 else f"e+{power:02d}")


# --- the error body ---

def encode_status(message: str) -> bytes:
    """The OTLP error body Loki writes: a protobuf `google.rpc.Status` holding only `message`
    (field 2; the code is left out, as the OTLP specification allows)."""
    data = message.encode()
    return b"\x12" + _varint(len(data)) + data if data else b""


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)

