"""`./run.sh bench agent`: the agent's throughput, from CRI log files into a real server.

1. Write the lines: CRI-wrapped JSON (`<time> stdout F {"level":…,"msg":…,…}`) spread over pod
   log files laid out as the kubelet does (`pods/<ns>_<pod>_<uid>/<container>/0.log`).
2. Start `lokiarrow serve` (auth on: each contender pushes to a tenant of its own).
3. Floor, same run: the least a Python shipper on this stack does for the same result, in this
   process: read each file, split the CRI fields, parse the JSON for `level`, group by stream,
   encode the push bodies (protobuf + snappy, ~1 MiB like Promtail's `batchsize`) and post
   them on one keep-alive connection. No positions, no stages, no retries.
4. The agent: `lokiarrow agent` as a subprocess with a Promtail config (`cri`, `json`, `labels`
   stages, positions file, Promtail's client defaults) reading the same files from the start;
   timed from its start until `promtail_sent_entries_total` reaches the line count; its RSS
   sampled every 20 ms, its CPU and the server's read from /proc.
5. Both tenants are counted back with a LogQL query: every line must be there exactly once.
6. The figures replace the agent section of BENCHMARKS.md (the other sections are kept).
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import http.client
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import orjson
import psutil

from bench.report import machine, write_section
from bench.server import ROOT, Sampler, ServerProcess, _die_with_parent
from lokiarrow.wire.push_protobuf import encode_streams
from tests.conftest import PERMISSIVE, free_port

DEFAULT_OUTPUT = ROOT / "BENCHMARKS.md"
SECTION = "agent"
TARGET_LINES_PER_S = 50_000
TARGET_RSS_BYTES = 200 * 1_000_000
AGENT_TENANT, FLOOR_TENANT = "bench-agent", "bench-floor"
BATCH_BYTES = 1 << 20           # Promtail's default batchsize
LEVELS = ("info", "info", "info", "debug", "warn", "error")
PATHS = ("/api/v1/users", "/api/v1/orders", "/healthz", "/api/v1/search", "/static/app.js")
_NS = 1_000_000_000


@dataclass
class AgentResult:
    lines: int
    files: int
    raw_bytes: int
    agent_seconds: float = 0.0
    agent_ready_seconds: float = 0.0
    agent_rss_peak: int = 0
    agent_cpu_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    floor_seconds: float = 0.0
    agent_stored: int = 0
    floor_stored: int = 0
    when: str = ""
    command: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def agent_lines_per_s(self) -> float:
        return self.lines / self.agent_seconds if self.agent_seconds else 0.0

    @property
    def floor_lines_per_s(self) -> float:
        return self.lines / self.floor_seconds if self.floor_seconds else 0.0

    @property
    def met(self) -> bool:
        return (self.agent_lines_per_s >= TARGET_LINES_PER_S and self.agent_rss_peak <= TARGET_RSS_BYTES
                and self.agent_stored == self.lines)


def write_pods(root: Path, lines: int, files: int, seed: int, start_ns: int) -> tuple[list[Path], int]:
    """`lines` CRI lines round-robin over `files` pod logs, one microsecond apart; their paths and
    size in bytes."""
    rng = random.Random(seed)
    paths = []
    for i in range(files):
        folder = root / "pods" / f"bench_pod-{i}_{i:08x}-0000-4000-8000-000000000000" / "app"
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / "0.log")
    handles = [p.open("w") for p in paths]
    try:
        for i in range(lines):
            ts_ns = start_ns + i * 1000
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ns // _NS)) + f".{ts_ns % _NS:09d}Z"
            body = orjson.dumps({"level": rng.choice(LEVELS), "msg": "request served", "n": i,
                                 "path": rng.choice(PATHS), "status": rng.choice((200, 200, 200, 404, 500)),
                                 "latency_ms": rng.randint(1, 900)}).decode()
            handles[i % files].write(f"{stamp} stdout F {body}\n")
    finally:
        for h in handles:
            h.close()
    return paths, sum(p.stat().st_size for p in paths)


def agent_config(root: Path, server_url: str, http_port: int) -> str:
    return f"""
server: {{http_listen_port: {http_port}, http_listen_address: 127.0.0.1, log_level: warn}}
positions: {{filename: {root / "positions.yaml"}}}
clients:
  - url: {server_url}/loki/api/v1/push
    tenant_id: {AGENT_TENANT}
scrape_configs:
  - job_name: pods
    static_configs:
      - targets: [localhost]
        labels: {{job: bench, __path__: "{root}/pods/*/*/*.log"}}
    pipeline_stages:
      - cri: {{}}
      - json: {{expressions: {{level: level}}}}
      - labels: {{level: }}
"""


def ship_floor(paths: list[Path], server_url: str, timeout: float) -> float:
    """The floor shipper (step 3); its wall time in seconds."""
    host, port = server_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"Content-Type": "application/x-protobuf", "X-Scope-OrgID": FLOOR_TENANT}
    start = time.perf_counter()

    def post(streams: dict[str, tuple[list[int], list[str]]]) -> None:
        body = encode_streams((labels, ts, lines, None) for labels, (ts, lines) in streams.items())
        conn.request("POST", "/loki/api/v1/push", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status >= 300:
            raise RuntimeError(f"floor push answered {answer.status}")

    for path in paths:
        streams: dict[str, tuple[list[int], list[str]]] = {}
        size = 0
        with path.open() as f:
            for raw in f:
                stamp, stream, _, content = raw.rstrip("\n").split(" ", 3)
                labels = f'{{filename="{path}", job="bench", level="{orjson.loads(content)["level"]}", stream="{stream}"}}'
                ts, lines = streams.setdefault(labels, ([], []))
                ts.append(_rfc3339_ns(stamp))
                lines.append(content)
                size += len(content)
                if size >= BATCH_BYTES:
                    post(streams)
                    streams, size = {}, 0
        if streams:
            post(streams)
    conn.close()
    return time.perf_counter() - start


_SECONDS: dict[str, int] = {}


def _rfc3339_ns(stamp: str) -> int:
    """`2026-01-19T22:00:00.123456789Z` in ns (the floor's own minimal reader)."""
    whole = _SECONDS.get(stamp[:19])
    if whole is None:
        whole = _SECONDS[stamp[:19]] = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    return whole * _NS + int(stamp[20:29])


def run_agent(root: Path, server_url: str, lines: int, res: AgentResult, timeout: float) -> None:
    """Step 4: the agent subprocess until everything is sent (or `timeout` seconds pass)."""
    port = free_port()
    config = root / "promtail.yaml"
    config.write_text(agent_config(root, server_url, port))
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    log = (root / "agent.log").open("ab")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "agent", f"-config.file={config}"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # noqa: PLW1509
    try:
        with Sampler(proc.pid) as sampler:
            sent = 0.0
            while sent < lines:
                if proc.poll() is not None:
                    raise RuntimeError(f"agent exited with {proc.returncode}: see {root / 'agent.log'}")
                if time.monotonic() - start > timeout:
                    raise RuntimeError(f"agent sent {sent:,.0f} of {lines:,} lines in {timeout:.0f} s")
                with contextlib.suppress(httpx.HTTPError):
                    text = httpx.get(metrics_url, timeout=2).text
                    if not res.agent_ready_seconds:
                        res.agent_ready_seconds = time.monotonic() - start
                    sent = sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
                               if ln.startswith("promtail_sent_entries_total{"))
                time.sleep(0.02)
            res.agent_seconds = time.monotonic() - start
            res.agent_cpu_seconds = sampler.cpu_seconds()
            res.agent_rss_peak = sampler.peak
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def count_stored(server_url: str, tenant: str, start_ns: int, end_ns: int) -> int:
    """Lines of `{job="bench"}` the tenant holds between the two times (one instant query)."""
    seconds = (end_ns - start_ns) // _NS + 1
    params = urlencode({"query": f'sum(count_over_time({{job="bench"}}[{seconds}s]))', "time": str(end_ns)})
    answer = httpx.get(f"{server_url}/loki/api/v1/query?{params}", headers={"X-Scope-OrgID": tenant}, timeout=120)
    answer.raise_for_status()
    result = answer.json()["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def run(lines: int, files: int, seed: int, workdir: Path | None, timeout: float) -> AgentResult:
    res = AgentResult(lines, files, 0, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    work = Path(tempfile.mkdtemp(prefix="lokiarrow-bench-agent-", dir=workdir))
    try:
        start_ns = (time.time_ns() // _NS - 3600) * _NS
        end_ns = start_ns + lines * 1000
        print(f"writing {lines:,} CRI lines in {files} pod files ...", flush=True)
        paths, res.raw_bytes = write_pods(work, lines, files, seed, start_ns)
        with ServerProcess(work / "server", PERMISSIVE + "auth_enabled: true\n") as srv:
            server = psutil.Process(srv.pid)
            print("floor: a minimal shipper in this process ...", flush=True)
            res.floor_seconds = ship_floor(paths, srv.url, timeout)
            print(f"  {res.floor_lines_per_s:,.0f} lines/s; the agent ...", flush=True)
            cpu_before = sum(server.cpu_times()[:2])
            run_agent(work, srv.url, lines, res, timeout)
            res.server_cpu_seconds = sum(server.cpu_times()[:2]) - cpu_before
            print(f"  {res.agent_lines_per_s:,.0f} lines/s; counting back ...", flush=True)
            res.agent_stored = count_stored(srv.url, AGENT_TENANT, start_ns, end_ns)
            res.floor_stored = count_stored(srv.url, FLOOR_TENANT, start_ns, end_ns)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, stored in (("agent", res.agent_stored), ("floor", res.floor_stored)):
        if stored != lines:
            res.notes.append(f"the {name}'s tenant holds {stored:,} lines, {lines:,} were written")
    return res


def markdown(r: AgentResult) -> str:
    m = machine()
    ratio = r.agent_seconds / r.floor_seconds if r.floor_seconds else 0.0
    return "\n".join([
        "## Agent",
        "",
        f"Written by `{r.command}` on {r.when} ({m['cpu']}, {m['ram']}, Python {m['python']}). "
        f"{r.lines:,} CRI-wrapped JSON lines ({r.raw_bytes / 1e6:,.1f} MB) in {r.files} pod log files, read "
        f"from the start into a real `lokiarrow serve` on the same 2 cores. The agent runs Promtail's "
        f"`cri`, `json` (`level`) and `labels` stages with a positions file and Promtail's client defaults "
        f"(1 MiB batches, 1 s batchwait), timed from its process start (start-up included, "
        f"{r.agent_ready_seconds:.1f} s to its first /metrics answer) until it has sent every line. "
        f"Floor: the same lines read, CRI-split, JSON-parsed for `level`, encoded and posted by a minimal "
        f"loop in the benchmark's own process (no positions, stages or retries), measured in the same run.",
        "",
        "| measure | agent | floor | agent / floor | target |",
        "|---|---|---|---|---|",
        f"| lines/s | **{r.agent_lines_per_s:,.0f}** | {r.floor_lines_per_s:,.0f} | "
        f"{ratio:.2f} × the time | ≥ {TARGET_LINES_PER_S:,} |",
        f"| wall time | {r.agent_seconds:.1f} s | {r.floor_seconds:.1f} s | | |",
        f"| peak RSS | **{r.agent_rss_peak / 1e6:,.0f} MB** | | | ≤ {TARGET_RSS_BYTES / 1e6:.0f} MB |",
        f"| CPU | agent {r.agent_cpu_seconds / r.agent_seconds if r.agent_seconds else 0:.2f} cores, server "
        f"{r.server_cpu_seconds / r.agent_seconds if r.agent_seconds else 0:.2f} cores | | | |",
        f"| lines stored, counted back | {r.agent_stored:,} of {r.lines:,} | {r.floor_stored:,} of {r.lines:,} "
        f"| | all, once |",
        f"| targets met | {'yes' if r.met else 'no'} | | | |",
        *(["", *[f"- {n}" for n in r.notes]] if r.notes else []),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run.sh bench agent",
                                     description="Benchmark lokiarrow agent: CRI files into a real server.")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8, help="pod log files the lines are spread over")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temporary folder")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per phase (default: scales with --lines)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown report to update")
    args = parser.parse_args(argv)
    res = run(args.lines, args.files, args.seed, args.workdir, args.timeout or max(120.0, args.lines / 2_000))
    res.command = " ".join(["./run.sh bench agent", *(sys.argv[1:] if argv is None else argv)])
    write_section(args.output, SECTION, markdown(res))
    print(f"agent {res.agent_lines_per_s:,.0f} lines/s (floor {res.floor_lines_per_s:,.0f}), peak RSS "
          f"{res.agent_rss_peak / 1e6:,.0f} MB, stored {res.agent_stored:,}/{res.lines:,} "
          f"[target ≥ {TARGET_LINES_PER_S:,} lines/s, ≤ {TARGET_RSS_BYTES / 1e6:.0f} MB]: "
          f"{'met' if res.met else 'NOT met'}")
    print(f"wrote {args.output}")
    return 0 if not res.notes else 1


if __name__ == "__main__":
    sys.exit(main())
