"""OTLP/HTTP log exports to push streams, as Loki 3's distributor converts them (default otlp_config)."""

from __future__ import annotations

import base64
import gzip
import math
from collections.abc import Callable
from typing import Any

import cramjam
import orjson
import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from lokiarrow.config import DEFAULT_SERVICE_NAME_LABELS
from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.wire.otlp import (
    BodyTooLarge,
    any_value_text,
    decode_otlp,
    encode_status,
    go_float,
    label_name,
)
from lokiarrow.wire.stream import PushStream

PB = "application/x-protobuf"
JSON = "application/json"
NOW = 1_800_000_000_000_000_000
T = 1_768_860_000_000_000_000
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def value(v: Any) -> AnyValue:
    """An AnyValue from a Python value: dict -> kvlist, list -> array, bytes, bool, int, float, str."""
    if v is None:
        return AnyValue()
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=attrs(v)))
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=v)


def attrs(d: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=value(v)) for k, v in d.items()]


def request(*resources: tuple[dict[str, Any], list[LogRecord]], scope: dict[str, Any] | None = None) -> bytes:
    scope_fields = scope or {}
    return ExportLogsServiceRequest(resource_logs=[
        ResourceLogs(resource=Resource(attributes=attrs(res)),
                     scope_logs=[ScopeLogs(scope=InstrumentationScope(
                         name=scope_fields.get("name", ""), version=scope_fields.get("version", ""),
                         attributes=attrs(scope_fields.get("attributes", {})),
                         dropped_attributes_count=scope_fields.get("dropped", 0)), log_records=records)])
        for res, records in resources]).SerializeToString()


def record(body: Any = "line", time: int = T, **fields: Any) -> LogRecord:
    extra = fields.pop("attributes", {})
    return LogRecord(time_unix_nano=time, body=value(body), attributes=attrs(extra), **fields)


def decode(body: bytes, content_type: str = PB, encoding: str | None = None,
           discover: tuple[str, ...] = DEFAULT_SERVICE_NAME_LABELS, **kw: Any) -> list[PushStream]:
    return decode_otlp(body, content_type, encoding, NOW, discover_service_name=discover, **kw)


def rows(streams: list[PushStream]) -> list[tuple[dict[str, str], int, str, list[tuple[str, str]]]]:
    out = []
    for s in streams:
        assert isinstance(s.labels, dict)
        meta = s.metadata or [[] for _ in range(len(s))]
        out += [(s.labels, ts, line, m) for ts, line, m in zip(s.timestamps.to_pylist(), s.lines.to_pylist(), meta,
                                                               strict=True)]
    return out


def only(streams: list[PushStream]) -> tuple[dict[str, str], int, str, list[tuple[str, str]]]:
    [row] = rows(streams)
    return row


# --- labels and structured metadata ---

def test_default_resource_attributes_are_labels_the_rest_metadata() -> None:
    res = {"service.name": "checkout", "k8s.namespace.name": "shop", "team.owner": "payments",
           "deployment.environment.name": "prod", "host.name": "node-1", "cloud.region": "eu-west-1"}
    labels, _, _, meta = only(decode(request((res, [record()]))))
    assert labels == {"service_name": "checkout", "k8s_namespace_name": "shop",
                      "deployment_environment_name": "prod", "cloud_region": "eu-west-1"}
    assert meta == [("team_owner", "payments"), ("host_name", "node-1")]


@pytest.mark.parametrize(("res", "discover", "service"), [
    ({"k8s.namespace.name": "ns"}, DEFAULT_SERVICE_NAME_LABELS, "unknown_service"),
    ({"service.name": "", "k8s.container.name": "web"}, DEFAULT_SERVICE_NAME_LABELS, "web"),
    # the first indexed attribute, in the resource's order, whose label is in the list
    ({"k8s.job.name": "migrate", "k8s.container.name": "web"}, DEFAULT_SERVICE_NAME_LABELS, "migrate"),
    ({"k8s.container.name": "web", "k8s.job.name": "migrate"}, DEFAULT_SERVICE_NAME_LABELS, "web"),
    ({"app": "not-indexed"}, DEFAULT_SERVICE_NAME_LABELS, "unknown_service"),   # metadata is not looked at
    ({"service.name": "svc", "k8s.container.name": "web"}, DEFAULT_SERVICE_NAME_LABELS, "svc"),
    ({"k8s.container.name": "web"}, (), None),
    ({"service.name": "svc"}, (), "svc"),
], ids=["unknown", "empty-service-name", "attribute-order", "attribute-order-2", "metadata-ignored",
        "service-name-wins", "discovery-off", "discovery-off-service-name"])
def test_service_name(res: dict[str, Any], discover: tuple[str, ...], service: str | None) -> None:
    labels, _, _, _ = only(decode(request((res, [record()])), discover=discover))
    assert labels.get("service_name") == service


def test_record_metadata_in_lokis_order() -> None:
    rec = record(time=T, observed_time_unix_nano=T + 5, severity_number=17, severity_text="ERROR",
                 dropped_attributes_count=2, flags=1, trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN),
                 attributes={"http.method": "GET", "user": {"id": 7, "tags": ["a", "b"]}})
    scope = {"name": "my.lib", "version": "1.2.3", "attributes": {"lib.attr": True}, "dropped": 3}
    _, ts, line, meta = only(decode(request(({"service.name": "s", "pod.ip": "10.0.0.1"}, [rec]), scope=scope)))
    assert (ts, line) == (T, "line")
    assert meta == [("http_method", "GET"), ("user_id", "7"), ("user_tags", '["a","b"]'),
                    ("observed_timestamp", str(T + 5)), ("severity_number", "17"), ("severity_text", "ERROR"),
                    ("dropped_attributes_count", "2"), ("flags", "1"), ("trace_id", TRACE), ("span_id", SPAN),
                    ("pod_ip", "10.0.0.1"),
                    ("lib_attr", "true"), ("scope_name", "my.lib"), ("scope_version", "1.2.3"),
                    ("scope_dropped_attributes_count", "3")]


def test_unset_fields_add_nothing() -> None:
    rec = record(trace_id=bytes(16), span_id=bytes(8))   # all-zero ids are no ids
    assert only(decode(request(({"service.name": "s"}, [rec]))))[3] == []


@pytest.mark.parametrize(("key", "name"), [
    ("k8s.pod.name", "k8s_pod_name"), ("a..b", "a_b"), ("a__b", "a_b"), ("a._-b", "a_b"), ("1abc", "key_1abc"),
    ("__meta__", "__meta__"), ("__a.b__", "__a_b__"), ("h\u00e9llo", "h_llo"), ("_x", "_x"), ("x.", "x_"),
    ("ABC09", "ABC09"), ("9", "key_9"),
])
def test_label_names(key: str, name: str) -> None:
    assert label_name(key) == name


@pytest.mark.parametrize(("key", "message"), [
    ("", "symbolizer lookup: label name is empty"),
    ("...", 'symbolizer lookup: normalization for label name "..." resulted in invalid name "_"'),
    ("____", 'symbolizer lookup: normalization for label name "____" resulted in invalid name "____"'),
])
def test_bad_attribute_names_refuse_the_request(key: str, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        decode(request(({"service.name": "s"}, [record(attributes={key: "v"})])))
    assert err.value.message == message


# --- bodies and values as text ---

@pytest.mark.parametrize(("body", "line"), [
    ("plain text", "plain text"),
    (None, ""),
    (42, "42"),
    (-(1 << 63), str(-(1 << 63))),
    (True, "true"),
    (False, "false"),
    (1.0, "1"),
    (0.1, "0.1"),
    (-2.5, "-2.5"),
    (123456.789, "123456.789"),
    (1e20, "100000000000000000000"),
    (1e21, "1e+21"),
    (1.5e-7, "1.5e-7"),
    (1e-6, "0.000001"),
    (-0.0, "-0"),
    (float("nan"), "NaN"),
    (float("inf"), "Infinity"),
    (float("-inf"), "-Infinity"),
    (b"\x00\xffbin", "AP9iaW4="),
    ([1, "two", 3.5, True, None, b"\x01", [], {}], '[1,"two",3.5,true,null,"AQ==",[],{}]'),
    ({"b": 1, "a": {"y": [1.0], "x": "<&>"}}, '{"a":{"x":"<&>","y":[1]},"b":1}'),
    ({"s": "q\"\\\n\r\t\b\f\x01\u2028\u00e9"}, '{"s":"q\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u2028\u00e9"}'),
    ({"bad": float("nan")}, ""),   # Go's encoder refuses NaN: pdata gives ""
    ([], "[]"),
])
def test_bodies_of_every_kind(body: Any, line: str) -> None:
    assert any_value_text(value(body)) == line
    assert only(decode(request(({"service.name": "s"}, [record(body)]))))[2] == line


@pytest.mark.parametrize("f", [0.0, 1.0, 0.1, 1 / 3, 2.5e-6, 9.999e20, 1e21, 1.7976931348623157e308, 5e-324,
                               123456789.123456789, 1e-6, 9.99e-7])
def test_go_float_reads_back(f: float) -> None:
    text = go_float(f)
    assert float(text) == f
    assert ("e" in text) == (f != 0 and (abs(f) < 1e-6 or abs(f) >= 1e21))
    assert not math.isnan(float(text))


def test_map_attributes_are_flattened_other_values_rendered() -> None:
    rec = record(attributes={"http": {"req": {"method": "GET", "size": 12}}, "ids": [1, 2], "raw": b"ab",
                             "ratio": 0.5, "ok": False, "empty.map": {}})
    meta = only(decode(request(({"service.name": "s"}, [rec]))))[3]
    assert meta == [("http_req_method", "GET"), ("http_req_size", "12"), ("ids", "[1,2]"), ("raw", "YWI="),
                    ("ratio", "0.5"), ("ok", "false")]


def test_map_resource_attribute_named_for_index_gives_labels_per_leaf() -> None:
    labels = only(decode(request(({"service.name": "s", "k8s.pod.name": {"a": "x"}}, [record()]))))[0]
    assert labels == {"service_name": "s", "k8s_pod_name_a": "x"}


# --- times and streams ---

def test_times() -> None:
    recs = [record("both", time=T, observed_time_unix_nano=T + 1), record("observed", time=0,
            observed_time_unix_nano=T + 2), record("none", time=0)]
    got = [(ts, line, meta) for _, ts, line, meta in rows(decode(request(({"service.name": "s"}, recs))))]
    assert got == [(T, "both", [("observed_timestamp", str(T + 1))]), (T + 2, "observed", []), (NOW, "none", [])]


def test_records_group_into_streams_by_labels_in_request_order() -> None:
    body = request(({"service.name": "a", "x": "1"}, [record("a1"), record("a2")]),
                   ({"service.name": "b"}, [record("b1")]),
                   ({"service.name": "a", "x": "2"}, [record("a3")]))
    streams = decode(body)
    assert [(s.labels, s.lines.to_pylist()) for s in streams] == [
        ({"service_name": "a"}, ["a1", "a2", "a3"]), ({"service_name": "b"}, ["b1"])]
    assert [m[0] for m in streams[0].metadata or []] == [("x", "1"), ("x", "1"), ("x", "2")]


@pytest.mark.parametrize(("body", "content_type"), [
    (b"", PB), (b"{}", JSON), (b"null", JSON), (b'{"resourceLogs": []}', JSON),
    (request(({"service.name": "s"}, [])), PB),
], ids=["empty-pb", "empty-json", "null-json", "no-resources", "no-records"])
def test_no_log_records_give_no_streams(body: bytes, content_type: str) -> None:
    assert decode(body, content_type) == []


# --- JSON and protobuf ---

def to_otlp_json(pb: bytes, names: bool) -> bytes:
    """OTLP/JSON as exporters write it: hex ids, camelCase (or the proto names)."""
    doc = json_format.MessageToDict(ExportLogsServiceRequest.FromString(pb), preserving_proto_field_name=names)
    for res in doc["resource_logs" if names else "resourceLogs"]:
        for scope in res["scope_logs" if names else "scopeLogs"]:
            for rec in scope["log_records" if names else "logRecords"]:
                for key in ("trace_id", "span_id") if names else ("traceId", "spanId"):
                    if key in rec:
                        rec[key] = base64.b64decode(rec[key]).hex()
    return orjson.dumps(doc)


FULL = request(({"service.name": "api", "k8s.pod.name": "p-1", "region": "x", "nested": {"a": [1, {"b": 2}]}},
                [record({"msg": "hi", "n": 1.5}, severity_number=9, severity_text="INFO", flags=1,
                        trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN),
                        observed_time_unix_nano=T + 9, attributes={"k": "v", "b": b"\x00"}),
                 record(7, time=0, observed_time_unix_nano=T + 3)]),
               ({"k8s.namespace.name": "ns"}, [record("plain")]), scope={"name": "sc", "version": "v"})


@pytest.mark.parametrize("names", [False, True], ids=["camelCase", "proto-names"])
def test_json_and_protobuf_give_the_same_streams(names: bool) -> None:
    from_pb = rows(decode(FULL))
    assert len(from_pb) == 3
    assert rows(decode(to_otlp_json(FULL, names), JSON)) == from_pb


def test_handwritten_otlp_json() -> None:
    doc = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]},
                             "scopeLogs": [{"scope": {"name": "s"}, "logRecords": [
                                 {"timeUnixNano": str(T), "severityNumber": "SEVERITY_NUMBER_WARN",
                                  "traceId": TRACE.upper(), "spanId": "", "unknownField": {"x": 1},
                                  "body": {"kvlistValue": {"values": [
                                      {"key": "n", "value": {"intValue": "5"}},
                                      {"key": "d", "value": {"doubleValue": 2}}]}},
                                  "attributes": [{"key": "a", "value": {"boolValue": True}}]}]}]}]}
    assert only(decode(orjson.dumps(doc), JSON)) == (
        {"service_name": "j"}, T, '{"d":2,"n":5}',
        [("a", "true"), ("severity_number", "13"), ("trace_id", TRACE), ("scope_name", "s")])


# --- encodings ---

@pytest.mark.parametrize(("encoding", "encode"), [
    ("gzip", gzip.compress),
    ("gzip", lambda b: gzip.compress(b[:7]) + gzip.compress(b[7:])),   # two members, as Go reads them
    ("zstd", lambda b: bytes(cramjam.zstd.compress(b))),
    ("lz4", lambda b: bytes(cramjam.lz4.compress(b))),
    ("", lambda b: b),
])
def test_content_encodings(encoding: str, encode: Any) -> None:
    assert rows(decode(encode(FULL), PB, encoding)) == rows(decode(FULL))
    json_body = to_otlp_json(FULL, False)
    assert rows(decode(encode(json_body), JSON, encoding)) == rows(decode(FULL))


# --- malformed bodies ---

GZ = gzip.compress(FULL)


@pytest.mark.parametrize(("body", "content_type", "encoding", "message"), [
    (FULL, "text/plain", None, "content type: text/plain is not supported"),
    (FULL, None, None, "content type:  is not supported"),
    (FULL, "application/json; charset=utf-8", None, "content type: application/json; charset=utf-8 is not supported"),
    (FULL, PB, "deflate", "unsupported content encoding deflate: only gzip, lz4 and zstd are supported"),
    (FULL, PB, "snappy", "unsupported content encoding snappy: only gzip, lz4 and zstd are supported"),
    (b"", PB, "gzip", "EOF"),
    (FULL, PB, "gzip", "gzip: invalid header"),
    (GZ[:-12], PB, "gzip", "unexpected EOF"),
    (GZ[:-8] + b"\0\0\0\0" + GZ[-4:], PB, "gzip", "gzip: invalid checksum"),
    (GZ + b"trailing garbage", PB, "gzip", "gzip: invalid header"),
    (b"\x0a\x05\x0a\x03", PB, None, "cannot parse OTLP protobuf request: "),
    (b"\xff\xff", PB, None, "cannot parse OTLP protobuf request: "),
    (b"{", JSON, None, "cannot parse OTLP JSON request: "),
    (b"[]", JSON, None, "cannot parse OTLP JSON request: the document must be an object"),
    (b'{"resourceLogs": 5}', JSON, None, "cannot parse OTLP JSON request: "),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}', JSON, None,
     "cannot parse OTLP JSON request: "),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "abc"}]}]}]}', JSON, None,
     'cannot parse OTLP JSON request: traceId "abc" is not 32 hex digits'),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"span_id": "zzzzzzzzzzzzzzzz"}]}]}]}', JSON, None,
     'cannot parse OTLP JSON request: span_id "zzzzzzzzzzzzzzzz" is not 16 hex digits'),
    (request(({}, [record(trace_id=b"\x01" * 8)])), PB, None, "unmarshal: invalid TraceID length"),
    (request(({}, [record(span_id=b"\x01" * 16)])), PB, None, "unmarshal: invalid SpanID length"),
    (b"\x28\xb5\x2f\xfd garbage", PB, "zstd", "zstd: "),
], ids=lambda v: None)
def test_malformed_bodies_are_400(body: bytes, content_type: str | None, encoding: str | None, message: str) -> None:
    with pytest.raises(LokiError) as err:
        decode_otlp(body, content_type, encoding, NOW, discover_service_name=DEFAULT_SERVICE_NAME_LABELS)
    assert err.value.status == 400
    if message.endswith(": "):   # the decoder's own words follow
        assert err.value.message.startswith(message) and len(err.value.message) > len(message)
    else:
        assert err.value.message == message


@pytest.mark.parametrize("encoding", ["gzip", "zstd", "lz4"])
def test_decompressed_size_limit(encoding: str) -> None:
    compress: dict[str, Callable[[bytes], Any]] = {"gzip": gzip.compress, "zstd": cramjam.zstd.compress,
                                                   "lz4": cramjam.lz4.compress}
    body = bytes(compress[encoding](b"\0" * 5000))
    with pytest.raises(BadRequest) as err:
        decode(body, PB, encoding, max_decompressed_bytes=1000)
    assert err.value.message == "decompressed message size too large than max (1001 vs 1000)"
    with pytest.raises(BadRequest) as err:
        decode(b"\0" * 1001, PB, None, max_decompressed_bytes=1000)
    assert err.value.message == "decompressed message size too large than max (1001 vs 1000)"


def test_compressed_size_limit_is_413() -> None:
    with pytest.raises(BodyTooLarge) as err:
        decode(b"\0" * ((100 << 20) + 1), PB, "gzip")
    assert (err.value.status, err.value.message) == (
        413, f"request body too large: message size too large than max ({(100 << 20) + 1} vs {100 << 20})")


@pytest.mark.parametrize("message", ["", "x", "content type: text/plain is not supported", "\u00e9" * 300])
def test_error_body_is_a_google_rpc_status(message: str) -> None:
    status = Status.FromString(encode_status(message))
    assert (status.code, status.message) == (0, message)
