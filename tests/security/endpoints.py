"""Every HTTP endpoint of the server that may take a tenant, as one call each, for the isolation
tests: the call sends a valid request apart from its `X-Scope-OrgID`."""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import orjson

from lokiarrow.wire.push_protobuf import encode_streams
from tests.server.pushing import BASE_NS

SPAN = {"start": str(BASE_NS - 3600 * 10**9), "end": str(BASE_NS + 3600 * 10**9)}
SELECTOR = '{app=~".+"}'


def _json_push(labels: str, line: str) -> bytes:
    return orjson.dumps({"streams": [{"stream": {"app": labels}, "values": [[str(BASE_NS), line]]}]})


def _otlp_push(app: str, line: str) -> bytes:
    return orjson.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": app}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": str(BASE_NS), "body": {"stringValue": line}}]}]}]})


Call = Callable[[httpx.Client, dict[str, bytes]], httpx.Response]
JSON = {"Content-Type": "application/json"}


def _get(path: str, **params: str) -> Call:
    return lambda http, h: http.get(path, params={**SPAN, **params}, headers=h)


def _post(path: str, body: bytes, content_type: str, **params: str) -> Call:
    return lambda http, h: http.post(path, params=params, content=body, headers={"Content-Type": content_type, **h})


# name -> call; the delete API needs `compactor.retention_enabled`
ENDPOINTS: dict[str, Call] = {
    "push json": _post("/loki/api/v1/push", _json_push("probe", "probe line"), "application/json"),
    "push protobuf": _post("/loki/api/v1/push", encode_streams([('{app="probe"}', [BASE_NS], ["probe line"], None)]),
                           "application/x-protobuf"),
    "push legacy": _post("/api/prom/push", _json_push("probe", "probe line"), "application/json"),
    "push otlp": _post("/otlp/v1/logs", _otlp_push("probe", "probe line"), "application/json"),
    "query": lambda http, h: http.get("/loki/api/v1/query", params={"query": f"count_over_time({SELECTOR}[1h])",
                                                                   "time": SPAN["end"]}, headers=h),
    "query_range": _get("/loki/api/v1/query_range", query=SELECTOR),
    "labels": _get("/loki/api/v1/labels"),
    "label": _get("/loki/api/v1/label"),
    "label values": _get("/loki/api/v1/label/app/values"),
    "series": _get("/loki/api/v1/series", **{"match[]": SELECTOR}),
    "index/stats": _get("/loki/api/v1/index/stats", query=SELECTOR),
    "index/volume": _get("/loki/api/v1/index/volume", query=SELECTOR),
    "index/volume_range": _get("/loki/api/v1/index/volume_range", query=SELECTOR, step="60"),
    "patterns": _get("/loki/api/v1/patterns", query=SELECTOR),
    "detected_labels": _get("/loki/api/v1/detected_labels", query=SELECTOR),
    "detected_fields": _get("/loki/api/v1/detected_fields", query=SELECTOR),
    "detected_field values": _get("/loki/api/v1/detected_field/app/values", query=SELECTOR),
    "delete add": lambda http, h: http.post("/loki/api/v1/delete", params={
        "query": '{app="nothing"}', "start": str(BASE_NS // 10**9), "end": str(BASE_NS // 10**9 + 1)}, headers=h),
    "delete list": lambda http, h: http.get("/loki/api/v1/delete", headers=h),
    "delete cancel": lambda http, h: http.delete("/loki/api/v1/delete", params={"request_id": "nope"}, headers=h),
    "unflushed": _post("/lokiarrow/v1/unflushed", orjson.dumps({"start": int(SPAN["start"]), "end": int(SPAN["end"])}),
                       "application/json"),
}
# endpoints that take no tenant in Loki either: they must still neither fail nor write anywhere
TENANTLESS: dict[str, Call] = {
    "format_query": lambda http, h: http.get("/loki/api/v1/format_query", params={"query": SELECTOR}, headers=h),
    "flush": lambda http, h: http.post("/flush", headers=h),
}
# endpoints that read: a tenant must find nothing of another's through any of them
READS = [name for name in ENDPOINTS if not name.startswith(("push", "delete"))]


def tail_url(base: str, **params: str) -> str:
    return base.replace("http://", "ws://") + "/loki/api/v1/tail?" + urlencode({"query": SELECTOR, **params})


def raw_status(port: int, org: bytes, path: str = "/loki/api/v1/labels") -> int:
    """The status line's code for a GET whose `X-Scope-OrgID` carries bytes no HTTP client sends
    (NUL, CR, other control characters): written on a bare socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Scope-OrgID: "
                     + org + b"\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])
