"""`./run.sh bench compact`: what the compactor does to a day of data: files and bytes on disk, and
query times, before and after.

1. The JSON set of bench/generate.py (24 h; `--lines`, 10 M by default) pushed into `lokiarrow
   serve` as the ingest benchmark pushes it, with the server's default flushing (a flush every
   `flush_max_rows` entries writes a file per hour of data it holds: many small files).
2. Before: chunk, index and rollup files and bytes; the JSON-set log queries of bench/queries.py
   and the metric queries of bench/metrics.py, each timed over HTTP (median of `--runs` after a
   warm-up), answers kept.
3. Stop the server (it holds the store); `lokiarrow compact` twice (`retention_delete_delay: 0s`:
   the second run deletes what the first replaced); both timed, with the compactor's peak RSS.
4. After: the same counts, and the same queries on the server started again; each answer must
   equal its answer before (entries, or series and points).
5. The figures replace the `compaction` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psutil

from bench import generate, legacy, push
from bench.metrics import MetricQuery, answer_series, build_metric_queries
from bench.queries import Query, build_queries
from bench.report import machine, write_section
from bench.run import Http, flush
from bench.server import ROOT, ServerProcess, _die_with_parent

DEFAULT_OUTPUT = ROOT / "BENCHMARKS.md"
SECTION = "compaction"
TENANT = "fake"
JSON_SET_QUERIES = ("a", "b", "c", "d", "f")   # e and g read the plain-text set, not pushed here
COMPACT_CONFIG = "compactor:\n  retention_delete_delay: 0s\n"


@dataclass
class Disk:
    chunk_files: int = 0
    index_files: int = 0
    rollup_files: int = 0
    bytes: int = 0


@dataclass
class Timed:
    name: str
    logql: str
    before_ms: float = 0.0
    after_ms: float = 0.0
    same: bool = False


@dataclass
class CompactionResult:
    lines: int
    raw_bytes: int = 0
    before: Disk = field(default_factory=Disk)
    after: Disk = field(default_factory=Disk)
    compact_seconds: float = 0.0
    collect_seconds: float = 0.0
    compact_rss: int = 0
    queries: list[Timed] = field(default_factory=list)
    when: str = ""
    command: str = ""


def disk(data: Path) -> Disk:
    tenant = data / TENANT
    files = {kind: [p for p in (tenant / kind).rglob("*.parquet")] for kind in ("chunks", "index", "rollups")}
    return Disk(len(files["chunks"]), len(files["index"]), len(files["rollups"]),
                sum(p.stat().st_size for found in files.values() for p in found))


def _calls(queries: list[Query], metrics: list[MetricQuery]) -> list[tuple[str, str, str, dict[str, object]]]:
    out: list[tuple[str, str, str, dict[str, object]]] = []
    for q in queries:
        out.append((q.name, q.logql, "/loki/api/v1/query_range", {
            "query": q.logql, "start": q.start, "end": q.end, "limit": q.limit,
            "direction": "backward" if q.backward else "forward"}))
    for m in metrics:
        out.append((m.name, m.logql, m.path, m.params()))
    return out


def _answer(body: bytes, name: str, metrics: dict[str, MetricQuery]) -> object:
    """What must stay the same: a log answer's entries, a metric answer's series."""
    if name in metrics:
        return answer_series(body, metrics[name])[0]
    data = orjson.loads(body)["data"]
    return sorted((int(v[0]), v[1]) for s in data["result"] for v in s["values"])


def time_queries(url: str, calls: list[tuple[str, str, str, dict[str, object]]], runs: int,
                 metrics: dict[str, MetricQuery], timeout: float) -> dict[str, tuple[float, object]]:
    """Per query: the median ms of `runs` calls after one untimed, and its answer."""
    client = Http(url, timeout)
    out = {}
    try:
        for name, _, path, params in calls:
            body = _get(client, path, params)
            took = []
            for _ in range(runs):
                began = time.perf_counter()
                _get(client, path, params)
                took.append((time.perf_counter() - began) * 1000)
            out[name] = (statistics.median(took), _answer(body, name, metrics))
    finally:
        client.close()
    return out


def _get(client: Http, path: str, params: dict[str, object]) -> bytes:
    status, body = client.call("GET", path, params)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
    return body


def compact(data: Path, config: Path, timeout: float) -> tuple[float, int]:
    """One `lokiarrow compact` run: seconds and peak RSS."""
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "compact", f"-config.file={config}",
                             f"-common.path-prefix={data}", "-log.level=warn"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # noqa: PLW1509
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            pass
        if time.perf_counter() - began > timeout:
            proc.kill()
            raise RuntimeError(f"lokiarrow compact ran past {timeout:.0f} s")
        time.sleep(0.05)
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"lokiarrow compact failed ({proc.returncode}): {output[-2000:]}")
    return time.perf_counter() - began, peak


def run(lines: int, seed: int, runs: int, workdir: Path | None, timeout: float) -> CompactionResult:
    res = CompactionResult(lines, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    spec = generate.Spec(lines, seed)
    print(f"data: {lines:,} lines over 24 h ...", flush=True)
    ds = generate.build(spec)
    tiny = legacy.build(generate.Spec(1000, seed))   # only for the query builder; its queries are left out
    queries = [q for q in build_queries(ds, tiny) if q.name in JSON_SET_QUERIES]
    metric_queries = build_metric_queries(ds)
    metrics = {m.name: m for m in metric_queries}
    calls = _calls(queries, metric_queries)
    bodies = push.bodies(ds)
    work = Path(tempfile.mkdtemp(prefix="lokiarrow-bench-compact-", dir=workdir))
    try:
        srv = ServerProcess(work)
        with srv:
            print(f"push into {srv.url} ...", flush=True)
            pushed = push.push_all(srv.url, bodies, 4, timeout)
            if pushed.failures:
                raise RuntimeError(f"push failed: {pushed.failures[0]}")
            res.raw_bytes = pushed.raw_bytes
            flush(srv, timeout)   # what is left in the head
            res.before = disk(srv.data)
            print(f"before: {res.before}; queries ...", flush=True)
            before = time_queries(srv.url, calls, runs, metrics, timeout)
        config = work / "compact.yaml"
        config.write_text(COMPACT_CONFIG)
        print("compact ...", flush=True)
        res.compact_seconds, res.compact_rss = compact(srv.data, config, timeout)
        res.collect_seconds, rss = compact(srv.data, config, timeout)
        res.compact_rss = max(res.compact_rss, rss)
        res.after = disk(srv.data)
        print(f"after: {res.after}; queries ...", flush=True)
        with ServerProcess(work) as again:
            after = time_queries(again.url, calls, runs, metrics, timeout)
        for name, logql, _, _ in calls:
            res.queries.append(Timed(name, logql, before[name][0], after[name][0], before[name][1] == after[name][1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def markdown(r: CompactionResult) -> str:
    m = machine()
    ratio = r.before.bytes / r.after.bytes if r.after.bytes else 0.0
    rows = [f"| {q.name} | `{q.logql.replace('|', chr(92) + '|')}` | {q.before_ms:,.1f} ms | {q.after_ms:,.1f} ms | "
            f"{q.before_ms / q.after_ms if q.after_ms else 0:.2f} × | {'yes' if q.same else '**no**'} |"
            for q in r.queries]
    return "\n".join([
        "## Compaction",
        "",
        f"Written by `{r.command}` on {r.when} ({m['cpu']}, {m['ram']}, Python {m['python']}). The JSON set of "
        f"bench/generate.py, {r.lines:,} lines over 24 h ({r.raw_bytes / 1e6:,.0f} MB raw), pushed into `lokiarrow "
        f"serve` with its default flushing; then `lokiarrow compact` on the stopped server's store (a second run "
        f"deletes the replaced files), and the server started again. Query times: median of the runs after one "
        f"warm-up, over HTTP.",
        "",
        "| | chunk files | index files | rollup files | bytes on disk | raw / disk |",
        "|---|---|---|---|---|---|",
        f"| before | {r.before.chunk_files:,} | {r.before.index_files:,} | {r.before.rollup_files:,} | "
        f"{r.before.bytes / 1e6:,.1f} MB | {r.raw_bytes / r.before.bytes if r.before.bytes else 0:.2f} |",
        f"| after | {r.after.chunk_files:,} | {r.after.index_files:,} | {r.after.rollup_files:,} | "
        f"{r.after.bytes / 1e6:,.1f} MB | {r.raw_bytes / r.after.bytes if r.after.bytes else 0:.2f} |",
        "",
        f"Compaction: {r.compact_seconds:.1f} s, then {r.collect_seconds:.1f} s to delete the replaced files; "
        f"compactor peak RSS {r.compact_rss / 1e6:,.0f} MB; disk before / after: {ratio:.2f} ×.",
        "",
        "| query | LogQL | before | after | before / after | same answer |",
        "|---|---|---|---|---|---|",
        *rows,
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run.sh bench compact",
                                     description="Benchmark lokiarrow compact: disk and query times before and after.")
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per query (median reported)")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temporary folder")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per step (default: scales with --lines)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown report to update")
    args = parser.parse_args(argv)
    res = run(args.lines, args.seed, args.runs, args.workdir, args.timeout or max(600.0, args.lines / 5_000))
    res.command = " ".join(["./run.sh bench compact", *(sys.argv[1:] if argv is None else argv)])
    write_section(args.output, SECTION, markdown(res))
    print(f"disk {res.before.bytes / 1e6:,.1f} MB in {res.before.chunk_files:,} chunk files -> "
          f"{res.after.bytes / 1e6:,.1f} MB in {res.after.chunk_files:,}; compaction {res.compact_seconds:.1f} s")
    for q in res.queries:
        print(f"query {q.name:<3} {q.before_ms:9.1f} ms -> {q.after_ms:9.1f} ms  same answer: {q.same}")
    print(f"wrote {args.output}")
    return 0 if all(q.same for q in res.queries) else 1


if __name__ == "__main__":
    sys.exit(main())
