"""`kubernetes_sd_configs` with role `pod`: pods from the API server, as Prometheus labels them.

1. credentials: `api_server` + `bearer_token(_file)` + `tls_config`, or in-cluster (the service
   account's token and CA, KUBERNETES_SERVICE_HOST/PORT);
2. list `/api/v1[/namespaces/<ns>]/pods` with the `selectors` (Promtail's DaemonSet passes
   `field: spec.nodeName=$HOSTNAME`), keep the list's resourceVersion;
3. watch from it (newline-delimited events: ADDED, MODIFIED, DELETED, BOOKMARK, ERROR), each
   event replacing or removing that pod's targets; a 410 Gone (expired resourceVersion) or a
   broken stream goes back to 2.
Targets follow Prometheus' pod role: one per container port (one per container without
ports), none for a pod without an IP yet.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lokiarrow.agent.discovery import Target
from lokiarrow.agent.settings import ConfigError, Section

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
META = "__meta_kubernetes_"
UNSUPPORTED = ("kubeconfig_file", "basic_auth", "oauth2", "authorization", "proxy_url", "attach_metadata")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


class Gone(Exception):
    """The API server forgot our resourceVersion (HTTP 410): list again."""


@dataclass
class Connection:
    """Where and how to reach the API server."""

    server: str
    token: str | None
    context: ssl.SSLContext | None
    token_file: str | None = None

    def bearer(self) -> str | None:
        if self.token_file:  # re-read: projected tokens rotate
            with open(self.token_file, encoding="utf-8") as f:
                return f.read().strip()
        return self.token


def sanitize(name: str) -> str:
    """Prometheus' label-name sanitizing: every invalid character becomes `_`."""
    return _INVALID_LABEL_CHARS.sub("_", name)


def pod_targets(pod: dict[str, Any]) -> list[Target]:
    """The targets of one pod object, with every label Prometheus' pod role gives."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    source = f"pod/{meta.get('namespace', '')}/{meta.get('name', '')}"
    ip = status.get("podIP") or ""
    if not ip:
        return []
    common = _pod_labels(meta, spec, status)
    ids = {s.get("name"): s.get("containerID", "") for s in
           (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])}
    out: list[Target] = []
    groups = [(c, "false") for c in spec.get("containers") or []]
    groups += [(c, "true") for c in spec.get("initContainers") or []]
    for container, init in groups:
        labels = {
            **common,
            META + "pod_container_name": container.get("name", ""),
            META + "pod_container_image": container.get("image", ""),
            META + "pod_container_id": ids.get(container.get("name"), "") or "",
            META + "pod_container_init": init,
        }
        ports = container.get("ports") or []
        if not ports:
            out.append(Target({**labels, "__address__": ip}, source))
        for port in ports:
            number = str(port.get("containerPort", ""))
            out.append(Target({
                **labels,
                "__address__": f"[{ip}]:{number}" if ":" in ip else f"{ip}:{number}",
                META + "pod_container_port_name": port.get("name", ""),
                META + "pod_container_port_number": number,
                META + "pod_container_port_protocol": port.get("protocol", "TCP"),
            }, source))
    return out


def _pod_labels(meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any]) -> dict[str, str]:
    labels = {
        META + "namespace": meta.get("namespace", ""),
        META + "pod_name": meta.get("name", ""),
        META + "pod_ip": status.get("podIP", ""),
        META + "pod_ready": _ready(status),
        META + "pod_phase": status.get("phase", ""),
        META + "pod_node_name": spec.get("nodeName", ""),
        META + "pod_host_ip": status.get("hostIP", ""),
        META + "pod_uid": meta.get("uid", ""),
    }
    for kind in ("label", "annotation"):
        for key, value in (meta.get(kind + "s") or {}).items():
            name = sanitize(key)
            labels[f"{META}pod_{kind}_{name}"] = value or ""
            labels[f"{META}pod_{kind}present_{name}"] = "true"
    for owner in meta.get("ownerReferences") or []:
        if owner.get("controller"):
            labels[META + "pod_controller_kind"] = owner.get("kind", "")
            labels[META + "pod_controller_name"] = owner.get("name", "")
            break
    return labels


def _ready(status: dict[str, Any]) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status", "unknown")).lower()
    return "unknown"


class KubernetesPods:
    """Pod targets of one `kubernetes_sd_configs` entry, kept current by `run` (a thread).

    `targets()` may be called from any thread; `on_change` (if given) is called after every
    change of the target set, from the discovery thread."""

    def __init__(self, section: Section, on_change: Callable[[], None] | None = None) -> None:
        self.connection, self.namespaces, self.query = _read_config(section)
        self.on_change = on_change
        self._pods: dict[str, list[Target]] = {}
        self._lock = threading.Lock()

    def targets(self) -> list[Target]:
        with self._lock:
            return [t for key in sorted(self._pods) for t in self._pods[key]]

    def run(self, stop: threading.Event, retry_s: float = 1.0) -> None:
        """List and watch every namespace until `stop` is set; errors retry after `retry_s`."""
        threads = [threading.Thread(target=self._follow, args=(ns, stop, retry_s), daemon=True)
                   for ns in self.namespaces]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _follow(self, namespace: str, stop: threading.Event, retry_s: float) -> None:
        while not stop.is_set():
            try:
                version = self.list(namespace)
                while not stop.is_set():
                    version = self.watch(namespace, version, timeout_s=retry_s * 30)
            except (Gone, OSError, ValueError, http.client.HTTPException):
                stop.wait(retry_s)

    def list(self, namespace: str = "") -> str:
        """Replace the namespace's pods by a fresh list; its resourceVersion."""
        body = json.loads(self._get(self._path(namespace), dict(self.query), timeout_s=30).read())
        pods = {_key(p): pod_targets(p) for p in body.get("items") or []}
        with self._lock:
            for key in [k for k in self._pods if k.startswith(f"{namespace}/") or not namespace]:
                del self._pods[key]
            self._pods.update(pods)
        self._changed()
        return str((body.get("metadata") or {}).get("resourceVersion", ""))

    def watch(self, namespace: str, version: str, timeout_s: float = 30.0) -> str:
        """Apply watch events from `version` until the server ends the stream; the last
        resourceVersion seen. Raises Gone when the version has expired."""
        params = {**self.query, "watch": "1", "resourceVersion": version,
                  "allowWatchBookmarks": "true", "timeoutSeconds": str(int(timeout_s))}
        for event in _lines(self._get(self._path(namespace), params, timeout_s=timeout_s + 10)):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone(obj.get("message", "resource version too old"))
                raise ValueError(f"watch error: {obj.get('message', obj)}")
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                with self._lock:
                    self._pods[_key(obj)] = pod_targets(obj)
            elif kind == "DELETED":
                with self._lock:
                    self._pods.pop(_key(obj), None)
            else:
                continue
            self._changed()
        return version

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _path(self, namespace: str) -> str:
        return f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/pods" if namespace else "/api/v1/pods"

    def _get(self, path: str, params: dict[str, str], timeout_s: float) -> Any:
        url = self.connection.server.rstrip("/") + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        token = self.connection.bearer()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            return urllib.request.urlopen(request, timeout=timeout_s, context=self.connection.context)
        except urllib.error.HTTPError as exc:
            if exc.code == 410:
                raise Gone(exc.read().decode(errors="replace")) from None
            raise ValueError(f"cannot list pods: {url}: HTTP {exc.code}") from None


def _key(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _lines(response: Any) -> Iterator[dict[str, Any]]:
    with response:
        for raw in response:
            if raw.strip():
                yield json.loads(raw)


def _read_config(s: Section) -> tuple[Connection, list[str], dict[str, str]]:
    role = s.string("role")
    if role != "pod":
        raise ConfigError(s.at("role"), f"role {role!r} is not supported (only pod)")
    server = s.string("api_server")
    token = s.string("bearer_token")
    token_file = s.string("bearer_token_file")
    tls = s.section("tls_config")
    ca_file = tls.string("ca_file")
    cert_file = tls.string("cert_file")
    key_file = tls.string("key_file")
    insecure = tls.boolean("insecure_skip_verify", False)
    tls.done()
    namespaces = s.section("namespaces")
    names = namespaces.strings("names")
    own = namespaces.boolean("own_namespace", False)
    namespaces.done()
    query = _selectors(s.sections("selectors"))
    for key in UNSUPPORTED:
        if s.raw(key) is not None:
            raise ConfigError(s.at(key), "not supported by lokiarrow's agent")
    s.raw("follow_redirects")  # urllib follows redirects; HTTP/2 is not offered either way
    s.raw("enable_http2")
    s.done()
    if token and token_file:
        raise ConfigError(s.path, "at most one of bearer_token & bearer_token_file must be configured")
    if server is None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise ConfigError(s.path, "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST "
                                      "and KUBERNETES_SERVICE_PORT must be defined")
        server = f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"
        token_file = token_file or os.path.join(SERVICE_ACCOUNT, "token")
        ca_file = ca_file or os.path.join(SERVICE_ACCOUNT, "ca.crt")
    if own:
        with open(os.path.join(SERVICE_ACCOUNT, "namespace"), encoding="utf-8") as f:
            names.append(f.read().strip())
    context = None
    if server.startswith("https"):
        context = ssl.create_default_context(cafile=ca_file)
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return Connection(server, token, context, token_file), names or [""], query


def _selectors(sections: list[Section]) -> dict[str, str]:
    """Promtail's `selectors` for role pod, as the list's labelSelector / fieldSelector."""
    query: dict[str, str] = {}
    for sel in sections:
        role = sel.string("role")
        label = sel.string("label")
        field = sel.string("field")
        sel.done()
        if role != "pod":
            raise ConfigError(sel.at("role"), f"selector role {role!r} is not pod, the discovery's role")
        if label:
            query["labelSelector"] = label
        if field:
            query["fieldSelector"] = field
    return query
