"""The agent's client against a real `lokiarrow serve` and a scripted HTTP server on 127.0.0.1:
batching, tenants, retries with growing backoff, drops, metrics, no retry on 400, back-pressure."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from lokiarrow.agent.client import USER_AGENT, Client, ClientConfig
from lokiarrow.agent.entry import Entry
from lokiarrow.agent.metrics import AgentMetrics
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.wire.push_protobuf import decode_protobuf
from tests.conftest import PERMISSIVE, free_port
from tests.server.pushing import BASE_NS, query


def config(text: str) -> ClientConfig:
    return ClientConfig.read(Section(yaml.safe_load(text)["clients"][0], "clients[0]"))


class Attempt:
    def __init__(self, at: float, headers: dict[str, str], body: bytes) -> None:
        self.at = at
        self.headers = headers
        self.streams = decode_protobuf(body, 1 << 30)

    def lines(self) -> list[str]:
        return [line for s in self.streams for line in s.lines.to_pylist()]


class Scripted:
    """An HTTP server answering pushes with the next scripted status (the last one repeats)."""

    def __init__(self, statuses: list[int], port: int = 0) -> None:
        self.statuses = list(statuses)
        self.attempts: list[Attempt] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts.append(Attempt(time.monotonic(), dict(self.headers), body))
                status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/loki/api/v1/push"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def start(statuses: list[int], port: int = 0) -> Scripted:
        servers.append(Scripted(statuses, port))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


class Reports:
    def __init__(self) -> None:
        self.calls: list[tuple[list[tuple[Any, int]], bool]] = []
        self.done = threading.Event()

    def __call__(self, marks: list[tuple[Any, int]], acknowledged: bool) -> None:
        self.calls.append((marks, acknowledged))
        self.done.set()


def client_for(url: str, extra: str = "", **kwargs: Any) -> tuple[Client, AgentMetrics, Reports]:
    metrics, reports = AgentMetrics(), Reports()
    cfg = config(f"clients:\n- url: {url}\n  batchwait: 50ms\n{extra}")
    return Client(cfg, metrics, reports, **kwargs), metrics, reports


def sample(metrics: AgentMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def entry(line: str, i: int = 0, **kw: Any) -> Entry:
    return Entry(labels=kw.pop("labels", {"job": "t"}), ts=BASE_NS + i, line=line, **kw)


# Configuration.

def test_defaults_are_promtails() -> None:
    c = config("clients:\n- url: http://x/loki/api/v1/push\n")
    assert (c.batchwait_ns, c.batchsize, c.timeout_ns) == (10**9, 1 << 20, 10 * 10**9)
    assert (c.min_period_ns, c.max_period_ns, c.max_retries) == (5 * 10**8, 300 * 10**9, 10)
    assert c.tenant_id == "" and c.auth is None and c.bearer_token is None


def test_reads_every_setting(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    c = config(f"""clients:
- url: https://loki:3100/loki/api/v1/push
  tenant_id: team-a
  batchwait: 2s
  batchsize: 512KiB
  timeout: 3s
  backoff_config: {{min_period: 100ms, max_period: 10s, max_retries: 3}}
  external_labels: {{cluster: c1}}
  basic_auth: {{username: u, password_file: {tmp_path / "pw"}}}
  tls_config: {{server_name: loki.local, insecure_skip_verify: true}}
  headers: {{X-Extra: v1}}
  drop_rate_limited_batches: true
""")
    assert c.tenant_id == "team-a" and c.batchwait_ns == 2 * 10**9 and c.batchsize == 512 * 1024
    assert (c.min_period_ns, c.max_period_ns, c.max_retries) == (10**8, 10 * 10**9, 3)
    assert c.external_labels == {"cluster": "c1"} and c.headers == {"X-Extra": "v1"}
    assert c.auth == ("u", "s3cret") and c.tls.server_name == "loki.local" and c.tls.insecure_skip_verify
    assert c.drop_rate_limited_batches


@pytest.mark.parametrize(("text", "message"), [
    ("- url: http://x\n  batchwiat: 1s\n", "clients[0].batchwiat: unknown field"),
    ("- url: http://x\n  backoff_config: {min_priod: 1s}\n", "clients[0].backoff_config.min_priod: unknown field"),
    ("- url: http://x\n  basic_auth: {user: a}\n", "clients[0].basic_auth.user: unknown field"),
    ("- url: http://x\n  tls_config: {ca: a}\n", "clients[0].tls_config.ca: unknown field"),
    ("- tenant_id: a\n", "clients[0].url: missing client URL"),
    ("- url: http://x\n  batchwait: soon\n", "clients[0].batchwait: invalid duration 'soon'"),
    ("- url: http://x\n  batchsize: 0\n", "clients[0].batchsize: must be greater than zero"),
    ("- url: http://x\n  bearer_token: a\n  bearer_token_file: /b\n", "clients[0]: at most one of bearer_token"),
    ("- url: http://x\n  bearer_token_file: /nonexistent/token\n", "clients[0].bearer_token_file: cannot read"),
])
def test_invalid_settings_fail_with_their_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config("clients:\n" + text)
    assert str(err.value).startswith(message), str(err.value)


# Against a real server.

def own(stream: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A stream's labels without those the server adds (`service_name`, `detected_level`)."""
    return tuple(sorted((k, v) for k, v in stream.items() if k not in ("service_name", "detected_level")))


def test_real_server_answers_exactly_the_lines_sent(start_server: Callable[..., Any]) -> None:
    server = start_server(PERMISSIVE + "auth_enabled: true\n")
    client, metrics, reports = client_for(f"{server.url}/loki/api/v1/push",
                                          "  tenant_id: team-a\n  external_labels: {cluster: c1}\n")
    for part in range(3):
        client.send([entry(f"a line {i}", i, labels={"job": "t", "pod": f"p{i % 3}"}, metadata={"trace_id": f"t{i}"})
                     for i in range(part * 100, part * 100 + 100)], mark=part)
    client.send([entry(f"b line {i}", i, tenant="team-b") for i in range(50)])
    client.stop()
    assert all(ok for _, ok in reports.calls)
    counted: dict[int, int] = {}
    for marks, _ in reports.calls:
        for mark, n in marks:
            counted[mark] = counted.get(mark, 0) + n
    assert counted == {0: 100, 1: 100, 2: 100}
    assert sample(metrics, "promtail_sent_entries_total", host=f"127.0.0.1:{server.port}") == 350
    with server.client() as http:
        http.headers["X-Scope-OrgID"] = "team-a"
        answer = query(http, '{job="t"}', limit=1000)
        got = {(own(s["stream"]), int(ts), line) for s in answer["data"]["result"] for ts, line in s["values"]}
        assert got == {((("cluster", "c1"), ("job", "t"), ("pod", f"p{i % 3}"), ("trace_id", f"t{i}")),
                        BASE_NS + i, f"a line {i}") for i in range(300)}
        http.headers["X-Scope-OrgID"] = "team-b"
        b = query(http, '{job="t"}', limit=1000)["data"]["result"]
        assert [own(s["stream"]) for s in b] == [(("cluster", "c1"), ("job", "t"))]
        assert sorted(line for s in b for _, line in s["values"]) == sorted(f"b line {i}" for i in range(50))


# Against a scripted server.

def test_request_shape(scripted: Callable[..., Scripted], tmp_path: Path) -> None:
    srv = scripted([204])
    client, _, reports = client_for(srv.url, "  tenant_id: t1\n  basic_auth: {username: u, password: p}\n"
                                    "  headers: {X-Extra: v1, User-Agent: other}\n")
    client.send([entry("hello", metadata={"k": "v"})])
    client.stop()
    [attempt] = srv.attempts
    h = {k.lower(): v for k, v in attempt.headers.items()}
    assert h["content-type"] == "application/x-protobuf" and h["user-agent"] == USER_AGENT
    assert h["x-scope-orgid"] == "t1" and h["x-extra"] == "v1"
    assert h["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    [stream] = attempt.streams
    assert stream.labels == '{job="t"}' and stream.lines.to_pylist() == ["hello"]
    assert stream.metadata == [[("k", "v")]] and stream.timestamps.to_pylist() == [BASE_NS]
    assert reports.calls == [([], True)]


def test_bearer_token_file(scripted: Callable[..., Scripted], tmp_path: Path) -> None:
    srv = scripted([204])
    (tmp_path / "token").write_text("tok-123\n")
    client, _, _ = client_for(srv.url, f"  bearer_token_file: {tmp_path / 'token'}\n")
    client.send([entry("é")])
    client.stop()
    [attempt] = srv.attempts
    assert attempt.headers["Authorization"] == "Bearer tok-123" and attempt.lines() == ["é"]


def test_batches_by_size_and_by_tenant(scripted: Callable[..., Scripted]) -> None:
    srv = scripted([204])
    client, _, _ = client_for(srv.url, "  batchsize: 100\n  batchwait: 10s\n")
    for i in range(10):
        client.send([entry("x" * 30, i)])    # three fit in 100 bytes, the fourth starts a new batch
    client.send([entry("other", tenant="t2")])
    client.send([entry("staged", labels={"job": "t", "__tenant_id__": "t3"}, tenant="t2")])
    client.stop()
    sizes = sorted(len(a.lines()) for a in srv.attempts if a.headers.get("X-Scope-OrgID") is None)
    assert sizes == [1, 3, 3, 3]
    assert [a.lines() for a in srv.attempts if a.headers.get("X-Scope-OrgID") == "t2"] == [["other"]]
    [t3] = [a for a in srv.attempts if a.headers.get("X-Scope-OrgID") == "t3"]
    assert t3.lines() == ["staged"] and t3.streams[0].labels == '{job="t"}'


def test_a_list_split_across_batches_reports_its_mark_with_each_part(scripted: Callable[..., Scripted]) -> None:
    srv = scripted([204])
    client, _, reports = client_for(srv.url, "  batchsize: 100\n  batchwait: 10s\n")
    client.send([entry("x" * 30, i) for i in range(7)], mark="a")
    client.send([entry("y" * 30, i) for i in range(2)], mark="b")
    client.stop()
    assert [len(a.lines()) for a in srv.attempts] == [3, 3, 3]
    assert reports.calls == [([("a", 3)], True), ([("a", 3)], True), ([("a", 1), ("b", 2)], True)]


def test_batchwait_sends_a_partial_batch(scripted: Callable[..., Scripted]) -> None:
    srv = scripted([204])
    client, _, reports = client_for(srv.url)             # batchwait 50ms
    client.send([entry("alone")])
    assert reports.done.wait(30)                          # sent by the wait, not by a full batch or the stop
    assert [a.lines() for a in srv.attempts] == [["alone"]]
    client.stop()
    waiting, _, held = client_for(srv.url, "  batchwait: 1h\n")
    waiting.send([entry("held")])
    assert not held.done.wait(0.5)                        # a partial batch waits for its batchwait
    waiting.stop()                                        # ... or the stop
    assert held.calls == [([], True)] and srv.attempts[-1].lines() == ["held"]


def test_retries_5xx_and_429_then_acknowledges(scripted: Callable[..., Scripted]) -> None:
    srv = scripted([500, 429, 503, 204])
    client, metrics, reports = client_for(srv.url, "  backoff_config: {min_period: 10ms, max_period: 100ms}\n")
    client.send([entry("retried")], mark="m")
    client.stop()
    assert [a.lines() for a in srv.attempts] == [["retried"]] * 4
    assert reports.calls == [([("m", 1)], True)]
    host = srv.url.split("/")[2]
    assert sample(metrics, "promtail_batch_retries_total", host=host, tenant="") == 3
    assert sample(metrics, "promtail_sent_entries_total", host=host) == 1
    assert sample(metrics, "promtail_request_duration_seconds_count", status_code="500", host=host) == 1
    assert sample(metrics, "promtail_request_duration_seconds_count", status_code="204", host=host) == 1


def test_backoff_grows_then_drops_with_a_metric(scripted: Callable[..., Scripted]) -> None:
    srv = scripted([500])
    client, metrics, reports = client_for(
        srv.url, "  backoff_config: {min_period: 50ms, max_period: 1s, max_retries: 4}\n")
    client.send([entry("doomed")], mark="m")
    client.stop()
    assert len(srv.attempts) == 4
    assert reports.calls == [([("m", 1)], False)]
    host = srv.url.split("/")[2]
    assert sample(metrics, "promtail_dropped_entries_total", host=host, reason="ingester_error", tenant="") == 1
    assert sample(metrics, "promtail_dropped_bytes_total", host=host, reason="ingester_error", tenant="") == \
        sample(metrics, "promtail_encoded_bytes_total", host=host) > 0
    assert sample(metrics, "promtail_batch_retries_total", host=host, tenant="") == 4
    assert sample(metrics, "promtail_sent_entries_total", host=host) == 0


def test_rate_limited_drop_reason(scripted: Callable[..., Scripted]) -> None:
    srv = scripted([429])
    client, metrics, _ = client_for(srv.url, "  backoff_config: {min_period: 1ms, max_period: 5ms, max_retries: 3}\n")
    client.send([entry("limited")])
    client.stop()
    assert len(srv.attempts) == 3
    host = srv.url.split("/")[2]
    assert sample(metrics, "promtail_dropped_entries_total", host=host, reason="rate_limited", tenant="") == 1


def test_drop_rate_limited_batches_never_retries_429(scripted: Callable[..., Scripted]) -> None:
    srv = scripted([429])
    client, _, reports = client_for(srv.url, "  drop_rate_limited_batches: true\n")
    client.send([entry("limited")])
    client.stop()
    assert len(srv.attempts) == 1 and reports.calls == [([], False)]


def test_400_is_never_retried(scripted: Callable[..., Scripted]) -> None:
    srv = scripted([400, 204])
    client, metrics, reports = client_for(srv.url, "  backoff_config: {min_period: 1ms}\n")
    client.send([entry("bad")], mark="m")
    client.stop()
    assert len(srv.attempts) == 1 and reports.calls == [([("m", 1)], False)]
    host = srv.url.split("/")[2]
    assert sample(metrics, "promtail_batch_retries_total", host=host, tenant="") == 0
    assert sample(metrics, "promtail_dropped_entries_total", host=host, reason="ingester_error", tenant="") == 1
    assert b"promtail_dropped_entries_total" in generate_latest(metrics.registry)


def test_back_pressure_while_unreachable_then_resumes(scripted: Callable[..., Scripted]) -> None:
    port = free_port()
    client, metrics, reports = client_for(
        f"http://127.0.0.1:{port}/loki/api/v1/push",
        "  batchsize: 10\n  backoff_config: {min_period: 20ms, max_period: 50ms, max_retries: 0}\n", queue_size=5)
    accepted = 0
    for i in range(50):
        if not client.send([entry(f"line {i:02}", i)], mark=i, timeout=0.05):
            break
        accepted += 1
    assert 5 <= accepted < 20          # a full queue refuses: memory stays bounded
    assert client.send([entry("refused")], timeout=0.1) is False
    assert reports.calls == []
    srv = scripted([204], port)        # the server comes back: everything queued goes out
    client.stop(timeout=10)
    assert sorted(line for a in srv.attempts for line in a.lines()) == [f"line {i:02}" for i in range(accepted)]
    assert sorted(m for ms, ok in reports.calls if ok for m, _ in ms) == list(range(accepted))
    assert sample(metrics, "promtail_request_duration_seconds_count", status_code="-1",
                  host=f"127.0.0.1:{port}") >= 1


def test_backoff_doubles_with_jitter_up_to_max_period() -> None:
    """Retry n waits in [d, 2d) for d = min_period * 2^(n-1), both ends capped at max_period."""
    client, _, _ = client_for("http://127.0.0.1:9/loki/api/v1/push",
                              "  backoff_config: {min_period: 50ms, max_period: 1s}\n")
    try:
        for attempt, (low, high) in enumerate([(0.05, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 0.8), (0.8, 1.0),
                                               (1.0, 1.0), (1.0, 1.0)], start=1):
            waits = [client._backoff(attempt) for _ in range(200)]
            assert all(low <= w <= high for w in waits), (attempt, min(waits), max(waits))
            assert low == high or len(set(waits)) > 1     # jittered
    finally:
        client.stop()


def test_stop_gives_up_on_an_unreachable_server_without_reporting() -> None:
    client, _, reports = client_for(f"http://127.0.0.1:{free_port()}/loki/api/v1/push",
                                    "  backoff_config: {min_period: 20ms, max_period: 50ms, max_retries: 0}\n")
    client.send([entry("unsent")])
    stopping = threading.Thread(target=client.stop, kwargs={"timeout": 0.5})
    stopping.start()
    stopping.join(60)
    assert not stopping.is_alive() and reports.calls == []   # it returned, and reported nothing
