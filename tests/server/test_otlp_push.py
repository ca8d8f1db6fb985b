"""`POST /otlp/v1/logs` end to end: the real OpenTelemetry Python SDK and its OTLP/HTTP exporter send to a
real `lokiarrow serve`; what `query_range` answers is what Loki gives for the same export."""

from __future__ import annotations

import gzip
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tests.conftest import PERMISSIVE, Server

CATEGORIZE = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
SPAN_ID = 0xEEE19B7EC3C1B174
SDK_VERSION = "1.45.2"


class Captured(logging.Handler):
    """Keeps the stdlib records, to know the times and lines the SDK read from them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def provider(server: Server, resource: Resource, compression: Compression = Compression.NoCompression,
             ) -> LoggerProvider:
    logs = LoggerProvider(resource=resource)
    exporter = OTLPLogExporter(endpoint=f"{server.url}/otlp/v1/logs", compression=compression, timeout=30)
    logs.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return logs


@pytest.fixture
def bridged() -> Iterator[Callable[[LoggerProvider, str], tuple[logging.Logger, Captured]]]:
    """A stdlib logger whose records go to an SDK LoggerProvider through the LoggingHandler bridge."""
    loggers: list[tuple[logging.Logger, list[logging.Handler]]] = []

    def bridge(logs: LoggerProvider, name: str) -> tuple[logging.Logger, Captured]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # the SDK's handler is deprecated, still shipped
            handler = LoggingHandler(logger_provider=logs)
        captured = Captured()
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(captured)
        logger.addHandler(handler)
        loggers.append((logger, [captured, handler]))
        return logger, captured

    yield bridge
    for logger, handlers in loggers:
        for handler in handlers:
            logger.removeHandler(handler)


def query(server: Server, q: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    now = time.time_ns()
    r = httpx.get(f"{server.url}/loki/api/v1/query_range", headers=CATEGORIZE if headers is None else headers,
                  timeout=30,
                  params={"query": q, "start": now - 3600 * 10**9, "end": now + 3600 * 10**9,
                          "direction": "forward"})
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def observed(meta: dict[str, str], lo: int, hi: int) -> dict[str, str]:
    """`meta` without its observed_timestamp, once that is checked to lie in [lo, hi]."""
    rest = dict(meta)
    assert lo <= int(rest.pop("observed_timestamp")) <= hi
    return rest


def test_sdk_logging_bridge_and_logs_api(start_server: Callable[..., Server], bridged: Any) -> None:
    server = start_server()
    resource = Resource.create({"service.name": "checkout", "k8s.namespace.name": "shop", "team.owner": "payments"})
    logs = provider(server, resource)
    logger, captured = bridged(logs, "shop.checkout")
    before = time.time_ns()
    span = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1)))
    with trace.use_span(span):
        logger.warning("payment failed for %s", "order-7", extra={"order.id": "order-7", "amount": 12.5})
    logger.info("paid")
    explicit = before - 5 * 10**9
    logs.get_logger("direct.api", "2.0.1").emit(LogRecord(
        timestamp=explicit, severity_number=SeverityNumber.ERROR, body={"event": "refund", "ok": True, "n": 3},
        attributes={"tags": ["a", "b"], "http": {"status": 502}}))
    assert logs.force_flush(30_000)
    after = time.time_ns()

    [stream] = query(server, '{service_name="checkout"}')
    # Resource.create adds a random service.instance.id, one of Loki's index attributes too
    assert stream["stream"] == {"service_name": "checkout", "k8s_namespace_name": "shop",
                                "service_instance_id": str(resource.attributes["service.instance.id"])}
    warned, paid = captured.records
    resource_meta = {"team_owner": "payments", "telemetry_sdk_language": "python",
                     "telemetry_sdk_name": "opentelemetry", "telemetry_sdk_version": SDK_VERSION}
    assert [v[1] for v in stream["values"]] == ['{"event":"refund","n":3,"ok":true}', "payment failed for order-7",
                                                "paid"]   # forward: oldest first
    by_line = {v[1]: (int(v[0]), v[2]["structuredMetadata"]) for v in stream["values"]}

    ts, meta = by_line["payment failed for order-7"]
    assert ts == int(warned.created * 1e9)
    assert observed(meta, before, after) == {
        "order_id": "order-7", "amount": "12.5", "code_file_path": warned.pathname,
        "code_function_name": "test_sdk_logging_bridge_and_logs_api", "code_line_number": str(warned.lineno),
        "severity_number": "13", "severity_text": "WARN", "flags": "1",
        "trace_id": f"{TRACE_ID:032x}", "span_id": f"{SPAN_ID:016x}",
        **resource_meta, "scope_name": "shop.checkout", "detected_level": "warn"}

    ts, meta = by_line["paid"]
    assert ts == int(paid.created * 1e9)
    assert observed(meta, before, after) == {
        "code_file_path": paid.pathname, "code_function_name": "test_sdk_logging_bridge_and_logs_api",
        "code_line_number": str(paid.lineno), "severity_number": "9", "severity_text": "INFO",
        **resource_meta, "scope_name": "shop.checkout", "detected_level": "info"}

    ts, meta = by_line['{"event":"refund","n":3,"ok":true}']
    assert ts == explicit
    assert observed(meta, before, after) == {
        "tags": '["a","b"]', "http_status": "502", "severity_number": "17", **resource_meta,
        "scope_name": "direct.api", "scope_version": "2.0.1", "detected_level": "error"}

    # metadata is queryable as Loki's is, and the index label is a stream selector
    assert [v[1] for s in query(server, '{k8s_namespace_name="shop"} | trace_id="' + f"{TRACE_ID:032x}" + '"')
            for v in s["values"]] == ["payment failed for order-7"]
    assert [v[1] for s in query(server, '{service_name="checkout"} | detected_level="info"')
            for v in s["values"]] == ["paid"]
    logs.shutdown()


def test_sdk_gzip_and_service_name_discovery(start_server: Callable[..., Server], bridged: Any) -> None:
    server = start_server()
    resource = Resource({"k8s.pod.name": "pod-1", "k8s.container.name": "worker", "host.name": "node-a"})
    logs = provider(server, resource, Compression.Gzip)
    logger, captured = bridged(logs, "jobs")
    for i in range(50):
        logger.error("job %d failed", i)
    assert logs.force_flush(30_000)
    [stream] = query(server, '{service_name="worker"}')
    assert stream["stream"] == {"service_name": "worker", "k8s_pod_name": "pod-1", "k8s_container_name": "worker"}
    assert [v[1] for v in stream["values"]] == [f"job {i} failed" for i in range(50)]
    assert [int(v[0]) for v in stream["values"]] == [int(r.created * 1e9) for r in captured.records]
    assert {v[2]["structuredMetadata"]["host_name"] for v in stream["values"]} == {"node-a"}
    # without categorize-labels, Loki's default answer: metadata shown among the stream's labels
    plain = query(server, '{service_name="worker"}', headers={})
    assert {s["stream"]["detected_level"] for s in plain} == {"error"}
    assert {s["stream"]["k8s_pod_name"] for s in plain} == {"pod-1"}
    logs.shutdown()


# raw OTLP/HTTP requests: JSON, encodings, errors

@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("otlp") / "data"
    folder.mkdir()
    server = Server(folder, PERMISSIVE + "  max_label_names_per_series: 3\n", []).start()
    yield server
    server.kill()


def post(server: Server, body: bytes, content_type: str, encoding: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type} | ({"Content-Encoding": encoding} if encoding else {})
    return httpx.post(f"{server.url}/otlp/v1/logs", content=body, headers=headers, timeout=30)


def status_message(r: httpx.Response) -> str:
    assert r.headers["content-type"] == "application/octet-stream"
    return str(Status.FromString(r.content).message)


def json_export(service: str, records: list[dict[str, Any]], **resource: str) -> bytes:
    attributes = [{"key": k.replace("_", "."), "value": {"stringValue": v}} for k, v in resource.items()]
    return orjson.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}, *attributes]},
        "scopeLogs": [{"scope": {"name": "raw"}, "logRecords": records}]}]})


def test_otlp_json_with_gzip(srv: Server) -> None:
    now = time.time_ns()
    body = json_export("json-app", [
        {"timeUnixNano": str(now), "body": {"stringValue": "from json"}, "severityText": "debug",
         "traceId": f"{TRACE_ID:032x}", "spanId": f"{SPAN_ID:016x}",
         "attributes": [{"key": "user.id", "value": {"intValue": "42"}}]},
        {"observed_time_unix_nano": now + 1, "body": {"arrayValue": {"values": [{"doubleValue": 1e21}]}}}])
    assert post(srv, gzip.compress(body), "application/json", "gzip").status_code == 204
    [stream] = query(srv, '{service_name="json-app"}')
    assert stream["stream"] == {"service_name": "json-app"}
    assert stream["values"] == [
        [str(now), "from json", {"structuredMetadata": {
            "user_id": "42", "severity_text": "debug", "trace_id": f"{TRACE_ID:032x}", "span_id": f"{SPAN_ID:016x}",
            "scope_name": "raw", "detected_level": "debug"}}],
        [str(now + 1), "[1e+21]", {"structuredMetadata": {"scope_name": "raw", "detected_level": "unknown"}}]]


@pytest.mark.parametrize(("body", "content_type", "encoding", "status", "message"), [
    (b"{}", "text/plain", None, 400, "content type: text/plain is not supported"),
    (b"{}", "application/json", "br", 400, "unsupported content encoding br: only gzip, lz4 and zstd are supported"),
    (b'{"resourceLogs": []}', "application/json", "gzip", 400, "gzip: invalid header"),
    (b"{}", "application/json", "gzip", 400, "unexpected EOF"),   # shorter than a gzip header
    (b"\xff\xff", "application/x-protobuf", None, 400, "cannot parse OTLP protobuf request: "),
    (b'{"resourceLogs": {}}', "application/json", None, 400, "cannot parse OTLP JSON request: "),
    (b"", "application/x-protobuf", None, 422, "error at least one valid stream is required for ingestion"),
    (b'{"resourceLogs": []}', "application/json", None, 422,
     "error at least one valid stream is required for ingestion"),
], ids=["content-type", "encoding", "not-gzip", "short-gzip", "protobuf", "json", "empty-protobuf", "empty-json"])
def test_bad_requests_answer_lokis_status_and_an_otlp_status_body(srv: Server, body: bytes, content_type: str,
                                                                   encoding: str | None, status: int,
                                                                   message: str) -> None:
    r = post(srv, body, content_type, encoding)
    assert r.status_code == status
    got = status_message(r)
    assert got.startswith(message) and (len(got) > len(message) if message.endswith(": ") else got == message)


def test_invalid_streams_are_refused_the_valid_ones_stored(srv: Server) -> None:
    now = time.time_ns()
    request = ExportLogsServiceRequest()
    for service, extra in (("fits", {}), ("too-many", {"k8s.pod.name": "p", "k8s.namespace.name": "n",
                                                       "cloud.region": "r", "cloud.availability_zone": "z"})):
        resource_logs = request.resource_logs.add()
        for key, val in {"service.name": service, **extra}.items():
            resource_logs.resource.attributes.add(key=key).value.string_value = val
        resource_logs.scope_logs.add().log_records.add(time_unix_nano=now).body.string_value = f"line of {service}"
    r = post(srv, request.SerializeToString(), "application/x-protobuf")
    assert r.status_code == 400
    assert status_message(r) == ("entry for stream '{cloud_availability_zone=\"z\", cloud_region=\"r\", "
                                 "k8s_namespace_name=\"n\", k8s_pod_name=\"p\", service_name=\"too-many\"}' "
                                 "has 4 label names; limit 3")   # service_name is not counted
    assert [v[1] for s in query(srv, '{service_name=~"fits|too-many"}') for v in s["values"]] == ["line of fits"]


def test_rate_limit_is_429_with_a_status_body(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE.replace("ingestion_rate_mb: 1000", "ingestion_rate_mb: 0.0001")
                          .replace("ingestion_burst_size_mb: 2000", "ingestion_burst_size_mb: 0.0001"))
    body = json_export("busy", [{"body": {"stringValue": "x" * 500}}])
    r = post(server, body, "application/json")
    assert r.status_code == 429
    assert "ingestion rate limit" in status_message(r)
    assert query(server, '{service_name="busy"}') == []
