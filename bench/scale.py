"""`./run.sh bench scale`: Loki's simple scalable deployment on this machine, against one process.

1. Ingest: the JSON set of bench/generate.py (24 h; `--lines`, 2 M by default), pushed by four
   clients into one writer (`-target=write`), then, on a fresh folder, into two writers (two
   clients each); lines/s from the first request to the last answer. The baseline is the one
   writer, measured in the same run.
2. Queries, over the two writers' data (flushed: the files of a shared folder): the 24 h metric
   queries of bench/metrics.py (me, mf, mg), each asked of a reader that answers alone (the
   baseline), of a reader that splits it by `--split` and sends the parts to itself, and of one that
   sends them through NGINX (round robin) to two readers; median ms of `--runs` after one untimed
   call. Every answer must equal the baseline's (series, steps, values within 1e-9 relative).
3. The figures replace the `scale` section of BENCHMARKS.md.

The machine has two cores: two writers or two readers share them with each other and with the
clients, so the figures say what a second process costs or brings here, not on more machines.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import generate, push
from bench.metrics import MetricQuery, answer_series, build_metric_queries, compare
from bench.report import machine, write_section
from bench.run import Http, flush
from bench.server import BENCH_CONFIG, ROOT, ServerProcess, _die_with_parent
from tests.conftest import free_port

DEFAULT_OUTPUT = ROOT / "BENCHMARKS.md"
SECTION = "scale"
QUERIES = ("me", "mf", "mg")


@dataclass
class Ingest:
    writers: int
    lines: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


@dataclass
class Timed:
    name: str
    logql: str
    ms: dict[str, float] = field(default_factory=dict)   # per way of asking
    same: bool = True


@dataclass
class ScaleResult:
    lines: int
    split: str
    ingest: list[Ingest] = field(default_factory=list)
    queries: list[Timed] = field(default_factory=list)
    when: str = ""


def _config(target: str, work: Path, extra: str = "") -> str:
    return BENCH_CONFIG + f"target: {target}\ningester: {{wal: {{dir: {work / 'wal'}}}}}\n" + extra


def _push_split(writers: list[ServerProcess], bodies: list[push.Body], timeout: float) -> Ingest:
    """Every body, the clients split evenly over the writers, all at once."""
    parts: list[list[push.Body]] = [[] for _ in writers]
    for body in bodies:
        parts[body.client % len(writers)].append(body)
    results: list[push.PushResult] = []
    clients = max(1, 4 // len(writers))
    threads = [threading.Thread(target=lambda w=w, p=p: results.append(push.push_all(w.url, p, clients, timeout)))
               for w, p in zip(writers, parts, strict=True)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - began
    failures = [f for r in results for f in r.failures]
    if failures or len(results) != len(writers):
        raise RuntimeError(f"push failed: {failures[:1]}")
    return Ingest(len(writers), sum(r.lines for r in results), took)


class Nginx:
    """NGINX spreading requests round robin over servers (the gateway's reader pool, without logins)."""

    def __init__(self, folder: Path, upstreams: list[str]) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = " ".join(f"server {u.split('://')[1]};" for u in upstreams)
        temp = " ".join(f"{kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (folder / "nginx.conf").write_text(
            f"worker_processes 1; pid {folder}/nginx.pid; error_log {folder}/error.log;\nevents {{}}\n"
            f"http {{ access_log off; {temp}\n upstream readers {{ {servers} keepalive 16; }}\n"
            f" server {{ listen 127.0.0.1:{self.port}; location / {{ proxy_pass http://readers; "
            'proxy_http_version 1.1; proxy_set_header Connection ""; proxy_read_timeout 900s; } } }\n')
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                                      "-g", "daemon off; user root;"], stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)  # noqa: PLW1509
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def _time(url: str, q: MetricQuery, runs: int, timeout: float) -> tuple[float, bytes]:
    client = Http(url, timeout)
    try:
        status, body = client.call("GET", q.path, q.params())
        if status != 200:
            raise RuntimeError(f"{q.name} at {url} answered {status}: {body[:300]!r}")
        took = []
        for _ in range(runs):
            began = time.perf_counter()
            client.call("GET", q.path, q.params())
            took.append((time.perf_counter() - began) * 1000)
        return statistics.median(took), body
    finally:
        client.close()


def run(lines: int, seed: int, runs: int, split: str, workdir: Path | None, timeout: float) -> ScaleResult:
    res = ScaleResult(lines, split, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    ds = generate.build(generate.Spec(lines, seed))
    bodies = push.bodies(ds)
    queries = [q for q in build_metric_queries(ds) if q.name in QUERIES]
    work = Path(tempfile.mkdtemp(prefix="lokiarrow-bench-scale-", dir=workdir))
    try:
        print(f"ingest: {lines:,} lines into one writer ...", flush=True)
        with ServerProcess(work / "one", _config("write", work / "one")) as one:
            res.ingest.append(_push_split([one], bodies, timeout))
        print("ingest: into two writers ...", flush=True)
        shared = work / "shared"
        with ServerProcess(work / "w1", _config("write", work / "w1"), data=shared) as w1, \
                ServerProcess(work / "w2", _config("write", work / "w2"), data=shared) as w2:
            res.ingest.append(_push_split([w1, w2], bodies, timeout))
            for w in (w1, w2):
                flush(w, timeout)
            writers = f"querier: {{writers: [{w1.url}, {w2.url}]}}\n"
            splitting = _config("read", work, writers).replace(
                "limits_config:\n", f"limits_config:\n  split_queries_by_interval: {split}\n", 1)
            pair = [ServerProcess(work / f"r{i}", splitting, data=shared) for i in (1, 2)]
            with Nginx(work / "nginx", [p.url for p in pair]) as nginx:
                for p in pair:
                    p.config_path.write_text(splitting + f"frontend: {{downstream_url: {nginx.url}}}\n")
                alone = ServerProcess(work / "alone", _config("read", work, writers), data=shared)
                itself = ServerProcess(work / "itself", splitting, data=shared)
                itself.config_path.write_text(splitting + f"frontend: {{downstream_url: {itself.url}}}\n")
                with alone, itself, pair[0], pair[1]:
                    for q in queries:
                        print(f"query {q.name} ...", flush=True)
                        timed = Timed(q.name, q.logql)
                        base_ms, base = _time(alone.url, q, runs, timeout)
                        timed.ms["alone"] = base_ms
                        expected = answer_series(base, q)[0]
                        for way, url in (("itself", itself.url), ("two", pair[0].url)):
                            timed.ms[way], body = _time(url, q, runs, timeout)
                            timed.same &= compare(answer_series(body, q)[0], expected, topk=bool(q.topk)) is None
                        res.queries.append(timed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def markdown(r: ScaleResult) -> str:
    m = machine()
    one, two = r.ingest
    rows = [f"| {q.name} | `{q.logql.replace('|', chr(92) + '|')}` | {q.ms['alone']:,.0f} ms | "
            f"{q.ms['itself']:,.0f} ms ({q.ms['alone'] / q.ms['itself']:.2f} ×) | "
            f"{q.ms['two']:,.0f} ms ({q.ms['alone'] / q.ms['two']:.2f} ×) | {'yes' if q.same else '**no**'} |"
            for q in r.queries]
    return "\n".join([
        "## Scaled out: writers and readers",
        "",
        f"`./run.sh bench scale --lines {r.lines}` ({r.when}; {m['cpu']}, {m['ram']}): "
        f"the JSON set, {r.lines:,} lines over 24 h, four push clients; the processes share one data folder.",
        "",
        "| ingest | lines/s | vs one writer |",
        "|---|---|---|",
        f"| one writer (baseline) | {one.rate:,.0f} | 1.00 × |",
        f"| two writers | {two.rate:,.0f} | {two.rate / one.rate:.2f} × |",
        "",
        f"24 h metric queries over both writers' flushed files; split by {r.split}, parts through NGINX:",
        "",
        "| query | LogQL | one reader (baseline) | split, parts to itself | split over two readers | same answer |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "On one machine of two cores a second process adds no cores: the writers, their clients and the",
        "readers (each reader's DuckDB scans on both cores) share the same two, so what this measures is the",
        "cost of the split, not its reach. A split query pays per part (an HTTP call, parsing, asking each",
        "writer, its own scans); across machines each writer and reader brings cores of its own.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--split", default="2h", help="split_queries_by_interval for the split readers")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    result = run(args.lines, args.seed, args.runs, args.split, args.workdir, args.timeout)
    text = markdown(result)
    print(text)
    write_section(args.output, SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
