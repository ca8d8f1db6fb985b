"""Shipping entries to Loki's push API as Promtail's client does.

1. `send` puts a list of entries on a bounded queue; when the queue is full (the server is down
   and the sender is retrying) it blocks, or refuses after its timeout: memory stays bounded.
2. One sender thread groups entries per tenant (the entry's, else `tenant_id`) into batches; a
   batch goes out when the next entry would take it past `batchsize` bytes, or after `batchwait`.
3. A batch is a snappy-compressed `logproto.PushRequest` (streams by label text, structured
   metadata kept), posted over one pooled HTTP connection.
4. 429, 5xx and connection errors are retried with exponential backoff and jitter, up to
   `max_retries` attempts (0: forever); other statuses are never retried. A batch that is not
   acknowledged in the end is dropped and counted in `promtail_dropped_*`.
5. `on_batch(marks, acknowledged)` is called once per batch acknowledged or dropped, with the
   marks given to `send` and how many of each mark's entries the batch held, so a reader can
   advance its positions only for what the server has.
"""

from __future__ import annotations

import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from lokiarrow import __version__
from lokiarrow.agent.entry import Entry
from lokiarrow.agent.metrics import REASON_GENERIC, REASON_RATE_LIMITED, AgentMetrics
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.model import labels_string
from lokiarrow.wire.push_protobuf import encode_streams

USER_AGENT = f"lokiarrow-agent/{__version__}"
TENANT_LABEL = "__tenant_id__"   # set by pipeline stages: overrides the tenant, never sent
_NS = 1_000_000_000
_STOP = object()

OnBatch = Callable[[list[tuple[Any, int]], bool], None]   # (mark, entries of it), acknowledged


@dataclass(frozen=True)
class TLSConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class ClientConfig:
    """One `clients[i]` section, with Promtail's defaults."""

    url: str
    tenant_id: str = ""
    batchwait_ns: int = 1 * _NS
    batchsize: int = 1 << 20
    timeout_ns: int = 10 * _NS
    min_period_ns: int = _NS // 2
    max_period_ns: int = 300 * _NS
    max_retries: int = 10
    external_labels: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    bearer_token: str | None = None
    tls: TLSConfig = TLSConfig()
    drop_rate_limited_batches: bool = False

    @classmethod
    def read(cls, s: Section) -> ClientConfig:
        url = s.string("url")
        if not url:
            raise ConfigError(s.at("url"), "missing client URL")
        backoff = s.section("backoff_config")
        auth = _basic_auth(s.section("basic_auth"))
        token = s.string("bearer_token")
        token_file = s.string("bearer_token_file")
        if token and token_file:
            raise ConfigError(s.path, "at most one of bearer_token & bearer_token_file must be configured")
        if auth and (token or token_file):
            raise ConfigError(s.path, "at most one of basic_auth, bearer_token & bearer_token_file must be configured")
        if token_file:
            token = _read_secret(token_file, s.at("bearer_token_file"))
        tls = s.section("tls_config")
        config = cls(
            url=url,
            tenant_id=s.string("tenant_id", "") or "",
            batchwait_ns=_positive(s, "batchwait", s.duration_ns("batchwait", _NS)),
            batchsize=_positive(s, "batchsize", s.size("batchsize", 1 << 20)),
            timeout_ns=_positive(s, "timeout", s.duration_ns("timeout", 10 * _NS)),
            min_period_ns=backoff.duration_ns("min_period", _NS // 2) or 0,
            max_period_ns=backoff.duration_ns("max_period", 300 * _NS) or 0,
            max_retries=backoff.integer("max_retries", 10) or 0,
            external_labels=s.mapping("external_labels"),
            headers=s.mapping("headers"),
            auth=auth,
            bearer_token=token,
            tls=TLSConfig(tls.string("ca_file"), tls.string("cert_file"), tls.string("key_file"),
                          tls.string("server_name"), bool(tls.boolean("insecure_skip_verify", False))),
            drop_rate_limited_batches=bool(s.boolean("drop_rate_limited_batches", False)),
        )
        s.raw("name")   # Promtail's client name: accepted, only used in its logs
        for sub in (backoff, tls, s):
            sub.done()
        if bool(config.tls.cert_file) != bool(config.tls.key_file):
            raise ConfigError(tls.path, "cert_file and key_file must be configured together")
        return config


def _positive(s: Section, key: str, value: int | None) -> int:
    if value is None or value <= 0:
        raise ConfigError(s.at(key), f"must be greater than zero, not {s.raw(key)!r}")
    return value


def _basic_auth(s: Section) -> tuple[str, str] | None:
    username = s.string("username")
    password = s.string("password")
    password_file = s.string("password_file")
    s.done()
    if password and password_file:
        raise ConfigError(s.path, "at most one of basic_auth password & password_file must be configured")
    if password_file:
        password = _read_secret(password_file, s.at("password_file"))
    if username is None and password is None:
        return None
    return username or "", password or ""


def _read_secret(path: str, at: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(at, f"cannot read {path}: {exc.strerror}") from None


def _ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _entry_bytes(entry: Entry) -> int:
    """What an entry counts toward `batchsize`: its line and its metadata, as Promtail counts."""
    size = len(entry.line) if entry.line.isascii() else len(entry.line.encode())
    if entry.metadata:
        size += sum(len(k.encode()) + len(v.encode()) for k, v in entry.metadata.items())
    return size


class _Batch:
    """One tenant's pending entries, grouped by stream label text."""

    def __init__(self, tenant: str, now: float) -> None:
        self.tenant = tenant
        self.created = now
        self.bytes = 0
        self.count = 0
        self.streams: dict[str, list[Entry]] = {}
        self.marks: dict[int, list[Any]] = {}   # id -> [mark, entries of it here]

    def add(self, entry: Entry, labels: str, size: int, mark: Any) -> None:
        entries = self.streams.get(labels)
        if entries is None:
            entries = self.streams[labels] = []
        entries.append(entry)
        self.bytes += size
        self.count += 1
        if mark is not None:
            counted = self.marks.get(id(mark))
            if counted is None:
                self.marks[id(mark)] = [mark, 1]
            else:
                counted[1] += 1

    def encode(self) -> bytes:
        return encode_streams(
            (labels, [e.ts for e in entries], [e.line for e in entries],
             [sorted(e.metadata.items()) if e.metadata else [] for e in entries])
            for labels, entries in self.streams.items())


class Client:
    """Ships entries to one `clients[i]` URL from a sender thread of its own.

    Thread safety: `send` may be called from any thread; `on_batch` runs on the sender thread, in
    the order batches finish. `stop` sends what is pending (retrying as configured) unless its
    deadline passes first; batches given up at stop are neither acknowledged nor dropped, so their
    lines are read again after a restart.
    """

    def __init__(self, config: ClientConfig, metrics: AgentMetrics | None = None,
                 on_batch: OnBatch | None = None, queue_size: int = 64) -> None:
        self.config = config
        self.metrics = metrics or AgentMetrics()
        self.on_batch = on_batch
        self.host = urlsplit(config.url).netloc
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._batches: dict[str, _Batch] = {}
        self._aborting = threading.Event()
        self._labels_cache: dict[tuple[tuple[str, str], ...], str] = {}
        headers = {"Content-Type": "application/x-protobuf", "User-Agent": USER_AGENT}
        # As Promtail: a custom header never replaces one the client sets itself.
        headers.update((k, v) for k, v in config.headers.items() if k.lower() not in {h.lower() for h in headers})
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        self._http = httpx.Client(
            headers=headers, auth=config.auth, timeout=config.timeout_ns / _NS,
            verify=_ssl_context(config.tls) if config.url.startswith("https") else True,
        )
        self._tenants_seen: set[str] = set()
        for counter in (self.metrics.encoded_bytes, self.metrics.sent_bytes, self.metrics.sent_entries):
            counter.labels(self.host)   # exported as 0 from the start, as Promtail does
        self._thread = threading.Thread(target=self._run, name=f"client {self.host}", daemon=True)
        self._thread.start()

    def send(self, entries: list[Entry], mark: Any = None, timeout: float | None = None) -> bool:
        """Queue entries (one item of the queue's `queue_size`); block while the queue is full, or
        return False after `timeout` seconds."""
        if not entries:
            return True
        try:
            self._queue.put((entries, mark), timeout=timeout)
        except queue.Full:
            return False
        return True

    def stop(self, timeout: float | None = None) -> None:
        """Send what is pending and end the sender thread (waiting at most `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self._queue.put(_STOP, timeout=0.05)
                break
            except queue.Full:
                if deadline is not None and time.monotonic() > deadline:
                    self._aborting.set()
                    self._drain_queue()
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._aborting.set()
            self._thread.join()
        self._http.close()

    def _drain_queue(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    # The sender thread.

    def _run(self) -> None:
        wait = self.config.batchwait_ns / _NS
        tick = max(wait / 10, 0.005)
        while True:
            try:
                item = self._queue.get(timeout=tick)
            except queue.Empty:
                item = None
            if item is _STOP:
                for tenant in list(self._batches):
                    self._ship(self._batches.pop(tenant))
                return
            now = time.monotonic()
            if item is not None:
                entries, mark = item
                for entry in entries:
                    self._add(entry, mark, now)
            for tenant, batch in list(self._batches.items()):
                if now - batch.created >= wait:
                    del self._batches[tenant]
                    self._ship(batch)

    def _add(self, entry: Entry, mark: Any, now: float) -> None:
        labels = entry.labels
        tenant = entry.tenant or self.config.tenant_id
        if TENANT_LABEL in labels:
            labels = {k: v for k, v in labels.items() if k != TENANT_LABEL}
            tenant = entry.labels[TENANT_LABEL]
        size = _entry_bytes(entry)
        batch = self._batches.get(tenant)
        if batch is not None and batch.count and batch.bytes + size > self.config.batchsize:
            self._ship(batch)
            batch = None
        if batch is None:
            batch = self._batches[tenant] = _Batch(tenant, now)
            if tenant not in self._tenants_seen:
                self._tenants_seen.add(tenant)
                self.metrics.batch_retries.labels(self.host, tenant)
                for reason in (REASON_GENERIC, REASON_RATE_LIMITED):
                    self.metrics.dropped_entries.labels(self.host, reason, tenant)
                    self.metrics.dropped_bytes.labels(self.host, reason, tenant)
        batch.add(entry, self._labels(labels), size, mark)

    def _labels(self, labels: dict[str, str]) -> str:
        key = tuple(labels.items())   # unsorted: label sets keep their order, and the text is sorted
        text = self._labels_cache.get(key)
        if text is None:
            merged = {**self.config.external_labels, **labels} if self.config.external_labels else labels
            if len(self._labels_cache) > 10_000:
                self._labels_cache.clear()
            text = self._labels_cache[key] = labels_string(merged)
        return text

    def _ship(self, batch: _Batch) -> None:
        """Post a batch until it is acknowledged, refused, or out of retries; then report it."""
        if self._batches.get(batch.tenant) is batch:
            del self._batches[batch.tenant]
        body = batch.encode()
        m = self.metrics
        m.encoded_bytes.labels(self.host).inc(len(body))
        headers = {"X-Scope-OrgID": batch.tenant} if batch.tenant else {}
        attempt = 0
        status = -1
        while not self._aborting.is_set():
            status = self._post(body, headers)
            if 200 <= status < 300:
                m.sent_bytes.labels(self.host).inc(len(body))
                m.sent_entries.labels(self.host).inc(batch.count)
                self._report(batch, True)
                return
            retryable = status == 429 or status >= 500 or status < 0
            if status == 429 and self.config.drop_rate_limited_batches:
                retryable = False
            if not retryable:
                break
            attempt += 1
            m.batch_retries.labels(self.host, batch.tenant).inc()   # each retryable failure, as Promtail
            if self.config.max_retries and attempt >= self.config.max_retries:
                break
            self._aborting.wait(self._backoff(attempt))
        if self._aborting.is_set():
            return
        reason = REASON_RATE_LIMITED if status == 429 else REASON_GENERIC
        m.dropped_entries.labels(self.host, reason, batch.tenant).inc(batch.count)
        m.dropped_bytes.labels(self.host, reason, batch.tenant).inc(len(body))   # encoded, as Promtail
        self._report(batch, False)

    def _post(self, body: bytes, headers: dict[str, str]) -> int:
        """One push attempt: the HTTP status, or -1 when no answer came."""
        start = time.monotonic()
        extensions = {"sni_hostname": self.config.tls.server_name} if self.config.tls.server_name else None
        try:
            status = self._http.post(self.config.url, content=body, headers=headers,
                                     extensions=extensions).status_code
        except httpx.HTTPError:
            status = -1
        self.metrics.request_duration.labels(str(status), self.host).observe(time.monotonic() - start)
        return status

    def _backoff(self, attempt: int) -> float:
        """Seconds before retry `attempt` (1-based): in [d, 2d) for d = min_period·2^(attempt-1),
        capped at max_period, as dskit's backoff jitters."""
        low = min(self.config.min_period_ns * (1 << min(attempt - 1, 40)), self.config.max_period_ns)
        high = min(low * 2, self.config.max_period_ns)
        return (low + random.random() * (high - low)) / _NS

    def _report(self, batch: _Batch, acknowledged: bool) -> None:
        if self.on_batch is not None:
            self.on_batch([(mark, n) for mark, n in batch.marks.values()], acknowledged)
