"""A small Kubernetes API server for the discovery tests: pods list and watch over real HTTP.

It answers `GET /api/v1[/namespaces/<ns>]/pods` as the API server does: a PodList with its
resourceVersion, or with `watch=1` a stream of newline-delimited watch events after the given
resourceVersion, an `ERROR` event carrying a 410 Status when that version has been compacted
away. `fieldSelector` (`spec.nodeName=`, `metadata.namespace=`) and equality `labelSelector`s
filter as on a real server. Every request is recorded for the tests to inspect.
"""

from __future__ import annotations

import copy
import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def pod(name: str, namespace: str = "default", node: str = "node-a", ip: str = "10.0.0.5",
        labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
        uid: str = "", owner: tuple[str, str] | None = None, ports: list[dict[str, Any]] | None = None,
        ready: str = "True", phase: str = "Running") -> dict[str, Any]:
    """A Pod object shaped as the API returns it (the fields discovery reads, and some more)."""
    meta: dict[str, Any] = {
        "name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}",
        "resourceVersion": "0", "creationTimestamp": "2026-12-01T10:00:00Z",
        "labels": labels or {}, "annotations": annotations or {},
    }
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": "owner-uid", "controller": True, "blockOwnerDeletion": True}]
    container: dict[str, Any] = {"name": "main", "image": "registry.example/app:1.2",
                                 "imagePullPolicy": "IfNotPresent", "resources": {}}
    if ports is not None:
        container["ports"] = ports
    return {
        "kind": "Pod", "apiVersion": "v1", "metadata": meta,
        "spec": {
            "nodeName": node, "restartPolicy": "Always", "serviceAccountName": "default",
            "initContainers": [{"name": "setup", "image": "busybox:1.36", "resources": {}}],
            "containers": [container],
        },
        "status": {
            "phase": phase, "hostIP": "192.168.1.10", "podIP": ip, "podIPs": [{"ip": ip}] if ip else [],
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": ready}],
            "initContainerStatuses": [{"name": "setup", "containerID": "containerd://init111", "ready": True,
                                       "restartCount": 0, "image": "busybox:1.36"}],
            "containerStatuses": [{"name": "main", "containerID": "containerd://abc123", "ready": True,
                                   "restartCount": 0, "image": "registry.example/app:1.2"}],
        },
    }


class FakeKubernetes:
    """Pods, their event log and the HTTP server serving them; use as a context manager."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.version = 100
        self.oldest = 0  # watches from a version below this get 410 Gone
        self.generation = 0  # bumping it ends the open watch streams
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.cond = threading.Condition()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeKubernetes:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.cond:
            self.generation += 1
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _record(self, kind: str, obj: dict[str, Any], event: bool = True) -> None:
        with self.cond:
            self.version += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.version)
            key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            if kind == "DELETED":
                self.pods.pop(key, None)
            else:
                self.pods[key] = obj
            if event:
                self.events.append((self.version, kind, obj))
            self.cond.notify_all()

    def add(self, obj: dict[str, Any]) -> None:
        self._record("ADDED", obj)

    def modify(self, obj: dict[str, Any]) -> None:
        self._record("MODIFIED", obj)

    def delete(self, obj: dict[str, Any]) -> None:
        self._record("DELETED", obj)

    def compact(self) -> None:
        """Forget the event history (etcd compaction) and end the open watches: clients must
        re-list. A pod added by `add_unseen` afterwards is only visible to a new list."""
        with self.cond:
            self.oldest = self.version + 1
            self.events.clear()
            self.generation += 1
            self.cond.notify_all()

    def add_unseen(self, obj: dict[str, Any]) -> None:
        self._record("ADDED", obj, event=False)


def _matches(obj: dict[str, Any], namespace: str, query: dict[str, str]) -> bool:
    meta = obj["metadata"]
    if namespace and meta["namespace"] != namespace:
        return False
    for part in filter(None, query.get("fieldSelector", "").split(",")):
        field, _, want = part.partition("=")
        have = {"spec.nodeName": obj["spec"].get("nodeName", ""),
                "metadata.namespace": meta["namespace"], "metadata.name": meta["name"]}[field]
        if have != want:
            return False
    for part in filter(None, query.get("labelSelector", "").split(",")):
        key, _, want = part.partition("=")
        if meta.get("labels", {}).get(key) != want:
            return False
    return True


def _handler(fake: FakeKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            fake.requests.append((url.path, query, dict(self.headers)))
            parts = url.path.strip("/").split("/")
            if parts[:2] != ["api", "v1"] or parts[-1] != "pods":
                self._json(404, {"kind": "Status", "status": "Failure", "code": 404, "reason": "NotFound"})
                return
            namespace = parts[3] if len(parts) == 5 and parts[2] == "namespaces" else ""
            if query.get("watch") in ("1", "true"):
                self._watch(namespace, query)
                return
            with fake.cond:
                items = [p for _, p in sorted(fake.pods.items()) if _matches(p, namespace, query)]
                body = {"kind": "PodList", "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(fake.version)}, "items": items}
            self._json(200, body)

        def _json(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self, namespace: str, query: dict[str, str]) -> None:
            since = int(query.get("resourceVersion") or 0)
            deadline = time.monotonic() + float(query.get("timeoutSeconds", "5"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            with fake.cond:
                generation = fake.generation
                if since < fake.oldest:
                    self._send({"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": f"too old resource version: {since} ({fake.oldest})",
                        "reason": "Expired", "code": 410}})
                    return
                while fake.generation == generation and time.monotonic() < deadline:
                    for version, kind, obj in fake.events:
                        if version > since and _matches(obj, namespace, query):
                            self._send({"type": kind, "object": obj})
                    since = fake.version
                    fake.cond.wait(max(0.0, min(0.2, deadline - time.monotonic())))

        def _send(self, event: dict[str, Any]) -> None:
            self.wfile.write(json.dumps(event).encode() + b"\n")
            self.wfile.flush()

    return Handler
