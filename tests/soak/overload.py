"""Overload: pushes at twice the tenant's ingestion rate for minutes. The long run:
`.venv/bin/python -m tests.soak.overload --minutes 6` (it writes the `overload` section of
RELIABILITY.md); tests/soak/test_overload.py runs a short one.

1. A real server with a small ingestion rate (`limits_config.ingestion_rate_mb`, burst
   `ingestion_burst_size_mb`) and quick flushes starts; its idle RSS is read.
2. Pushing clients together offer twice that rate, each pacing batches of unique lines; on a 429,
   a 5xx or a timeout a client waits and sends the same batch again (Promtail's backoff: doubling
   from 0.5 s up to a cap, with jitter), and only then makes its next batch.
3. Meanwhile a query client asks, every second, in turn: a log query_range, a metric query_range
   and an instant metric query; a sampler reads the server's RSS every second.
4. At the end the clients deliver their last batch, the server flushes and stops, and the store's
   files are read through the Python API: every acknowledged line must be there exactly once.

Held: pushes answer only 204 or 429 (some of each), no request times out (a generous client
timeout) and none answers 5xx, every query answers 200, RSS stays under the ceiling and does not
climb (the last third's peak against the first third's, with a margin). Latencies are reported,
not asserted: other processes may share the CPU.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import psutil

import lokiarrow
from bench.report import write_section
from tests.conftest import PERMISSIVE, ROOT, Server

MIB = 1 << 20
RATE_MB = 1.0                 # the tenant's ingestion rate, MiB/s
BURST_MB = 2.0
OVERLOAD = 2.0                # the clients together offer this many times the rate
CLIENTS = 4
LINES_PER_BATCH = 500
LINE_BYTES = 200              # each line's length: the rate limiter counts line bytes
CLIENT_TIMEOUT_S = 10.0
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 5.0
HEADROOM = 400 * MIB          # default ceiling: the idle server's RSS plus this (under load it used 250)
GROWTH_MARGIN = 64 * MIB      # the last third's peak may exceed the first third's by this (plus 25 %)
DRAIN_S = 120.0               # how long the clients get to deliver their last batch

CONFIG = PERMISSIVE.replace("ingestion_rate_mb: 1000", f"ingestion_rate_mb: {RATE_MB}").replace(
    "ingestion_burst_size_mb: 2000", f"ingestion_burst_size_mb: {BURST_MB}") + """ingester:
  max_chunk_age: 10s
  flush_check_period: 1s
"""
QUERIES = (   # (kind, path, LogQL): the query client asks them in turn
    ("log", "/loki/api/v1/query_range", '{app="overload"} |= "-b1"'),
    ("metric", "/loki/api/v1/query_range", 'sum by (client) (bytes_over_time({app="overload"}[10s]))'),
    ("instant", "/loki/api/v1/query", 'sum(count_over_time({app="overload"}[1m]))'),
)


@dataclass
class OverloadResult:
    minutes: float = 0.0                      # asked for
    seconds: float = 0.0                      # the run took, the clients' last batches included
    offered_bytes_per_s: float = 0.0          # what the clients' pacing asks for
    statuses: Counter[int] = field(default_factory=Counter)   # push answers
    timeouts: int = 0                         # push and query requests past the client timeout
    errors: list[str] = field(default_factory=list)   # other transport errors
    sent_bytes: int = 0                       # line bytes of every push sent, retries included
    acked_batches: int = 0
    acked_lines: int = 0
    undelivered_batches: int = 0              # batches a client still held at the end
    missing: int = 0
    duplicated: int = 0
    queries: Counter[str] = field(default_factory=Counter)    # "kind status" -> count
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    rss_idle: int = 0
    rss_ceiling: int = 0
    rss: list[int] = field(default_factory=list)              # one sample a second while loaded

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def query_failures(self) -> int:
        return sum(n for key, n in self.queries.items() if not key.endswith(" 200"))

    @property
    def rss_peak(self) -> int:
        return max(self.rss, default=0)

    def thirds(self) -> tuple[int, int]:
        """The peak RSS of the first and of the last third of the samples."""
        third = max(len(self.rss) // 3, 1)
        return max(self.rss[:third], default=0), max(self.rss[-third:], default=0)

    @property
    def rss_climbs(self) -> bool:
        first, last = self.thirds()
        return last > first * 1.25 + GROWTH_MARGIN

    def problems(self) -> list[str]:
        """What broke a promise; empty when everything held."""
        found = []
        if set(self.statuses) - {204, 429}:
            found.append(f"push answers other than 204 and 429: {dict(self.statuses)}")
        if not self.statuses[429] or not self.statuses[204]:
            found.append(f"expected some 429 and some 204: {dict(self.statuses)}")
        if self.timeouts or self.errors:
            found.append(f"{self.timeouts} timeouts, errors: {self.errors[:5]}")
        if self.undelivered_batches or self.missing or self.duplicated:
            found.append(f"{self.undelivered_batches} batches undelivered, {self.missing} lines missing, "
                         f"{self.duplicated} stored twice")
        if self.query_failures or not self.queries:
            found.append(f"queries: {dict(self.queries)}")
        if self.rss_peak > self.rss_ceiling:
            found.append(f"RSS {self.rss_peak / MIB:.0f} MiB over the ceiling {self.rss_ceiling / MIB:.0f} MiB")
        if self.rss_climbs:
            first, last = self.thirds()
            found.append(f"RSS climbs: peak {first / MIB:.0f} MiB in the first third, {last / MIB:.0f} MiB in the last")
        return found


class Pusher(threading.Thread):
    """One Promtail-like client: paced batches of unique lines, each sent until acknowledged."""

    def __init__(self, url: str, client: int, bytes_per_s: float, result: OverloadResult, lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.url, self.client, self.result, self.lock = url, client, result, lock
        self.interval_s = LINES_PER_BATCH * LINE_BYTES / bytes_per_s
        self.rng = random.Random(client)
        self.acked: list[int] = []          # batch numbers acknowledged
        self.undelivered = 0                # batches refused for good, or still unacknowledged at the end
        self.stopping = threading.Event()
        self.gave_up = threading.Event()    # past the drain deadline: stop retrying

    def body(self, batch: int, now_ns: int) -> bytes:
        values = []
        for j in range(LINES_PER_BATCH):
            key = f"c{self.client}-b{batch}-{j}"
            values.append([str(now_ns + j), key + " " + "x" * (LINE_BYTES - len(key) - 1)])
        return orjson.dumps({"streams": [{"stream": {"app": "overload", "client": str(self.client)},
                                          "values": values}]})

    def run(self) -> None:
        batch = 0
        next_at = time.monotonic()
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as http:
            while not self.stopping.is_set():
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += self.interval_s     # behind after a backoff: the next batch goes at once
                if self.deliver(http, self.body(batch, time.time_ns())):
                    self.acked.append(batch)
                else:
                    self.undelivered += 1
                batch += 1

    def deliver(self, http: httpx.Client, body: bytes) -> bool:
        backoff = BACKOFF_MIN_S
        while not self.gave_up.is_set():
            status = None
            try:
                status = http.post(f"{self.url}/loki/api/v1/push", content=body,
                                   headers={"Content-Type": "application/json"}).status_code
            except httpx.TimeoutException:
                with self.lock:
                    self.result.timeouts += 1
            except httpx.HTTPError as exc:
                with self.lock:
                    self.result.errors.append(f"push: {type(exc).__name__}: {exc}")
            with self.lock:
                self.result.sent_bytes += LINES_PER_BATCH * LINE_BYTES
                if status is not None:
                    self.result.statuses[status] += 1
            if status == 204:
                return True
            if status is not None and status != 429 and status < 500:
                return False            # refused for good: counted, and the promise is broken
            self.gave_up.wait(backoff * self.rng.uniform(0.5, 1.0))
            backoff = min(backoff * 2, BACKOFF_MAX_S)
        return False


class QueryClient(threading.Thread):
    """Asks QUERIES in turn, one a second, over the last five minutes."""

    def __init__(self, url: str, result: OverloadResult, lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.url, self.result, self.lock = url, result, lock
        self.stopping = threading.Event()

    def run(self) -> None:
        i = 0
        with httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT_S) as http:
            while not self.stopping.wait(1.0):
                kind, path, logql = QUERIES[i % len(QUERIES)]
                i += 1
                now = time.time_ns()
                params: dict[str, str | int] = {"query": logql}
                if kind == "instant":
                    params["time"] = now
                else:
                    params.update(start=now - 300 * 10**9, end=now, limit=100, step="10s")
                began = time.perf_counter()
                try:
                    status = http.get(path, params=params).status_code
                except httpx.TimeoutException:
                    status = 0
                    with self.lock:
                        self.result.timeouts += 1
                except httpx.HTTPError as exc:
                    status = -1
                    with self.lock:
                        self.result.errors.append(f"{kind} query: {type(exc).__name__}: {exc}")
                with self.lock:
                    self.result.queries[f"{kind} {status}"] += 1
                    self.result.latencies_ms.setdefault(kind, []).append((time.perf_counter() - began) * 1000)


class RssSampler(threading.Thread):
    def __init__(self, pid: int, samples: list[int]) -> None:
        super().__init__(daemon=True)
        self.process, self.samples = psutil.Process(pid), samples
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                self.samples.append(self.process.memory_info().rss)
            except psutil.Error:
                return


def idle_rss(pid: int) -> int:
    process = psutil.Process(pid)
    samples = []
    for _ in range(5):
        samples.append(process.memory_info().rss)
        time.sleep(0.2)
    return max(samples)


def stored_keys(data: Path) -> Counter[str]:
    """How many times each line key (`c<client>-b<batch>-<j>`) is in the store's files."""
    frame = lokiarrow.open(data).sql(
        "SELECT split_part(line, ' ', 1) AS key, count(*) AS n FROM logs GROUP BY key")
    return Counter(dict(zip(frame["key"].to_list(), frame["n"].to_list(), strict=True)))


def run(seconds: float, folder: Path, rss_ceiling: int | None = None, clients: int = CLIENTS) -> OverloadResult:
    res = OverloadResult(minutes=seconds / 60)
    lock = threading.Lock()
    data = folder / "data"
    data.mkdir(parents=True)
    server = Server(data, CONFIG, []).start()
    try:
        assert server.proc is not None
        res.rss_idle = idle_rss(server.proc.pid)
        res.rss_ceiling = rss_ceiling or res.rss_idle + HEADROOM
        res.offered_bytes_per_s = OVERLOAD * RATE_MB * MIB
        pushers = [Pusher(server.url, c, res.offered_bytes_per_s / clients, res, lock) for c in range(clients)]
        querier = QueryClient(server.url, res, lock)
        sampler = RssSampler(server.proc.pid, res.rss)
        began = time.monotonic()
        for thread in (sampler, querier, *pushers):
            thread.start()
        time.sleep(seconds)
        for pusher in pushers:
            pusher.stopping.set()
        deadline = time.monotonic() + DRAIN_S
        for pusher in pushers:
            pusher.join(max(deadline - time.monotonic(), 0))
            pusher.gave_up.set()
            pusher.join(CLIENT_TIMEOUT_S * 2)
        querier.stopping.set()
        querier.join(CLIENT_TIMEOUT_S * 2)
        sampler.stopping.set()
        sampler.join(5)
        res.seconds = time.monotonic() - began
        with httpx.Client(base_url=server.url, timeout=300) as http:
            http.post("/flush").raise_for_status()
        server.stop()
    finally:
        server.kill()
    stored = stored_keys(data)
    expected = [f"c{p.client}-b{b}-{j}" for p in pushers for b in p.acked for j in range(LINES_PER_BATCH)]
    res.acked_batches = sum(len(p.acked) for p in pushers)
    res.acked_lines = len(expected)
    res.undelivered_batches = sum(p.undelivered for p in pushers)
    res.missing = sum(1 for key in expected if stored[key] == 0)
    res.duplicated = sum(1 for n in stored.values() if n > 1)
    return res


SLOW_CLIENTS = """### Slow and stalled clients (tests/server/test_slow_clients.py, in CI)

The server answers from one event loop and runs blocking work in a thread pool that a request takes
only once its body has arrived, so a stalled client holds a connection (a file descriptor and what
it sent), never a worker. Checked against a real server:

| tried | held |
|---|---|
| 150 connections stalled after half their headers and 150 after their headers and part of a 100 kB body | pushes, queries and labels from another client answered meanwhile, each within its 10 s timeout |
| the same with `server.http_server_read_timeout: 2s` | headers: closed without an answer; bodies: `400 read tcp <server>-><client>: i/o timeout` and the connection closed, as Loki (Go's net/http) does; no connection left open, nothing of a cut body stored |
| a body trickled a byte every 0.2 s | cut at the deadline, counted from the request's start (not an idle timer) |
| `http_server_read_header_timeout: 1s` beside a read timeout of 120 s | stalled headers cut, stalled bodies still waiting |
| 50 clients asking for a 4 MB answer and reading none of it | the others served meanwhile; with `http_server_write_timeout: 2s` the unread answers are dropped and their connections closed |
| 300 stalled connections against an open-file limit of 200 | new connections are dropped at once (the event loop cannot accept them; Go's server would leave them waiting in the backlog); once the read timeout frees the stalled ones every client is served again |

Before this, uvicorn had no bound on either: a stalled header or body held its connection for
ever. `lokiarrow serve` also raises its soft open-file limit to the hard one at start, as Go
programs (so Loki) do."""


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "–"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49]:,.0f} / {cuts[94]:,.0f} / {cuts[98]:,.0f} / {max(values):,.0f} ms"


def markdown(r: OverloadResult, when: str) -> str:
    first, last = r.thirds()
    accepted = r.acked_lines * LINE_BYTES / r.seconds / MIB if r.seconds else 0.0
    queries = sum(r.queries.values())
    latency_rows = [f"| {kind} query latency p50 / p95 / p99 / max | {_percentiles(r.latencies_ms.get(kind, []))} |"
                    for kind, _, _ in QUERIES]
    return "\n".join([
        "## Overload",
        "",
        f"`python -m tests.soak.overload --minutes {r.minutes:.3g}` ({when}, {r.seconds:.0f} s): a server whose tenant "
        f"may ingest {RATE_MB:g} MiB/s (burst {BURST_MB:g} MiB), flushing every 10 s; {CLIENTS} clients pacing "
        f"{LINES_PER_BATCH}-line JSON batches of {LINE_BYTES}-byte unique lines to offer {OVERLOAD:g} × that rate, each "
        f"sending a batch again after a 429, a 5xx or a timeout with Promtail's backoff ({BACKOFF_MIN_S:g} s doubling "
        f"to {BACKOFF_MAX_S:g} s, jittered) and making the next only once it is acknowledged; a client asking a log "
        f"query_range, a metric query_range and an instant query in turn every second; the server's RSS read every "
        f"second. Every request has a {CLIENT_TIMEOUT_S:g} s client timeout. At the end the store's files were read "
        f"back through `lokiarrow.open`.",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| push answers | {', '.join(f'{n:,} × {s}' for s, n in sorted(r.statuses.items()))} |",
        f"| client timeouts / transport errors / 5xx | {r.timeouts} / {len(r.errors)} / {r.server_errors} |",
        f"| offered / sent (retries included) / accepted | {r.offered_bytes_per_s / MIB:.1f} / "
        f"{r.sent_bytes / r.seconds / MIB if r.seconds else 0:.1f} / {accepted:.2f} MiB/s |",
        f"| lines acknowledged ({r.acked_batches:,} batches) | {r.acked_lines:,}: {r.missing} missing, "
        f"{r.duplicated} stored twice, {r.undelivered_batches} batches undelivered |",
        f"| queries answered | {queries:,} ({', '.join(f'{n:,} {k}' for k, n in sorted(r.queries.items()))}) |",
        *latency_rows,
        f"| server RSS: idle / peak / ceiling | {r.rss_idle / MIB:.0f} / {r.rss_peak / MIB:.0f} / "
        f"{r.rss_ceiling / MIB:.0f} MiB |",
        f"| peak RSS, first third / last third | {first / MIB:.0f} / {last / MIB:.0f} MiB |",
        f"| peak RSS of each minute | {' / '.join(f'{max(r.rss[i:i + 60]) / MIB:.0f}' for i in range(0, len(r.rss), 60))} MiB |",
        f"| held | {'everything' if not r.problems() else '**' + '; '.join(r.problems()) + '**'} |",
        "",
        SLOW_CLIENTS,
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests.soak.overload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--rss-ceiling", type=float, default=None,
                        help=f"MiB the server's RSS must stay under (default: idle + {HEADROOM // MIB})")
    parser.add_argument("--output", type=Path, default=ROOT / "RELIABILITY.md")
    args = parser.parse_args(argv)
    ceiling = int(args.rss_ceiling * MIB) if args.rss_ceiling else None
    with tempfile.TemporaryDirectory(prefix="lokiarrow-overload-") as folder:
        result = run(args.minutes * 60, Path(folder), ceiling)
    text = markdown(result, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(text)
    write_section(args.output, "overload", text, "# Reliability\n")
    return 0 if not result.problems() else 1


if __name__ == "__main__":
    raise SystemExit(main())
