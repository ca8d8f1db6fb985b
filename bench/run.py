"""`./run.sh bench`: ingest and log-query benchmark of a real `lokiarrow serve`, written to BENCHMARKS.md.

1. Generate the data (bench/generate.py's JSON set, bench/legacy.py's smaller plain-text set for the
   pipeline queries) and encode every push body (cached in bench/out/cache).
2. Start `lokiarrow serve` on a free port over a fresh temporary folder; sample its RSS and CPU.
3. Push every body of the JSON set with N concurrent keep-alive clients; lines/s, MB/s, peak RSS,
   CPU, latency.
4. `POST /flush`; bytes on disk, rows stored, raw/disk ratio: all of the JSON set alone.
5. Push the plain-text set and flush again (not measured; its streams have no `namespace` label,
   so the queries over the JSON set select none of them).
6. Each query of bench/queries.py over the HTTP API and its floors (DuckDB, Polars) over the same
   Parquet files, runs interleaved; medians after a warm-up; our answer is compared with the floor's.
   Then the metric queries of bench/metrics.py the same way (matrix or vector answers, compared
   series by series). A call that runs into the query timeout is reported as timed out and not
   repeated; the run first waits (bounded) until the server has stopped working on it, since the
   server finishes an abandoned request anyway and would slow down what is measured next.
7. Stop the server (always), write BENCHMARKS.md and bench/out/results-<spec>.json, print a summary.

Every network wait has a timeout, so a stuck server fails the run (push, flush) or its query (reported as
timed out) instead of hanging it.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import duckdb
import orjson
import psutil
import pyarrow as pa

from bench import generate, legacy, push
from bench.metrics import (
    MetricQuery,
    answer_series,
    build_metric_queries,
    compare,
    floor_series,
    metric_floor_duckdb,
    metric_floor_polars,
)
from bench.queries import (
    NGINX_PATTERN,
    Query,
    StoreFiles,
    build_queries,
    floor_duckdb,
    floor_polars,
    logfmt_value_pattern,
    regexp_group,
    setup_duckdb,
)
from bench.report import MetricResult, QueryResult, Results, keep_sections, markdown, summary
from bench.server import Noise, Sampler, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
DEFAULT_OUTPUT = ROOT / "BENCHMARKS.md"
TENANT = "fake"  # the tenant when auth is off


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


class Http:
    """One keep-alive connection to the server; every call has a timeout."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname or "127.0.0.1", parts.port or 80, timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, method: str, path: str, params: dict[str, object] | None = None) -> tuple[int, bytes]:
        """One request; a keep-alive connection the server closed while idle is reopened once."""
        target = f"{path}?{urlencode(params)}" if params else path
        for attempt in (1, 2):
            try:
                self.conn.request(method, target)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.reconnect()
                if attempt == 2:
                    raise
            except (OSError, http.client.HTTPException):
                self.reconnect()
                raise
        raise AssertionError("unreachable")

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def close(self) -> None:
        self.conn.close()


class CallTimedOut(Exception):
    """Our HTTP call ran into the query timeout."""

    def __init__(self, seconds: float, note: str) -> None:
        super().__init__(f"no answer within {seconds:g} s; {note}")
        self.seconds = seconds


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]  # one line: a table cell


def _interleaved_ms(contenders: dict[str, Callable[[], object]], runs: int,
                    warmup: int) -> tuple[dict[str, float], dict[str, object], dict[str, Exception]]:
    """Median ms of each contender, their runs interleaved so a noisy moment hits all alike.

    Returns (median ms, last result, error) by name; a contender that raises is dropped (so a call
    that timed out is not repeated).
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    results: dict[str, object] = {}
    errors: dict[str, Exception] = {}
    live = dict(contenders)
    for i in range(warmup + runs):
        for name, fn in list(live.items()):
            began = time.perf_counter()
            try:
                results[name] = fn()
            except Exception as exc:  # report it, keep measuring the others
                errors[name] = exc
                del live[name]
                continue
            if i >= warmup:
                times[name].append((time.perf_counter() - began) * 1000)
    medians = {name: statistics.median(t) for name, t in times.items() if t and name in live}
    return medians, results, errors


class Settle:
    """After a timed-out call: wait until the server's CPU stays below `quiet` cores for `calm`
    seconds (it finishes the abandoned request first), at most `limit` seconds."""

    def __init__(self, pid: int, limit: float, quiet: float = 0.15, calm: float = 1.0, period: float = 0.25) -> None:
        self.pid, self.limit, self.quiet, self.calm, self.period = pid, limit, quiet, calm, period

    def __call__(self) -> str:
        try:
            return self._wait()
        except psutil.Error as exc:
            return f"the server process is gone ({type(exc).__name__})"

    def _wait(self) -> str:
        proc = psutil.Process(self.pid)
        began = last_t = time.monotonic()
        last_cpu = sum(proc.cpu_times()[:2])
        calm_since: float | None = None
        while True:
            time.sleep(self.period)
            now, cpu = time.monotonic(), sum(proc.cpu_times()[:2])
            busy = (cpu - last_cpu) / max(now - last_t, 1e-9)
            last_t, last_cpu = now, cpu
            if busy < self.quiet:
                calm_since = calm_since or now
                if now - calm_since >= self.calm:
                    return f"the server went on working on it for {calm_since - began:.0f} s"
            else:
                calm_since = None
            if now - began >= self.limit:
                return (f"the server was still busy ({busy:.1f} cores) {self.limit:g} s later: the figures "
                        f"measured after this one are skewed")


def _ours(client: Http, path: str, params: dict[str, object], settle: Callable[[], str]) -> Callable[[], bytes]:
    """Our answer over HTTP as a contender: an error status raises; a timeout waits for the server
    to settle, then raises CallTimedOut."""
    def call() -> bytes:
        try:
            status, body = client.call("GET", path, params)
        except TimeoutError:
            raise CallTimedOut(client.timeout, settle()) from None
        if status != 200:
            raise RuntimeError(f"answered {status}: {body[:300].decode(errors='replace')}")
        return body
    return call


def _errors_of(errors: dict[str, Exception]) -> tuple[str, float | None]:
    """The errors as one table cell; and the timeout our call ran into, if it did."""
    ours = errors.get("ours")
    return "; ".join(f"{k}: {_one_line(v)}" for k, v in errors.items()), (
        ours.seconds if isinstance(ours, CallTimedOut) else None)


def _entries(answer: bytes) -> set[tuple[int, str]]:
    data = orjson.loads(answer)["data"]
    if data.get("resultType") != "streams":
        raise RuntimeError(f"expected streams, got {data.get('resultType')}")
    return {(int(v[0]), v[1]) for s in data["result"] for v in s["values"]}


def _table_entries(table: pa.Table) -> set[tuple[int, str]]:
    return set(zip(table.column("ts").to_pylist(), table.column("line").to_pylist(), strict=True))


def _folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


def run_ingest(srv: ServerProcess, sampler: Sampler, bodies: list[push.Body], res: Results, timeout: float) -> None:
    me = psutil.Process()
    res.rss_idle = sampler.rss()
    sampler.mark("push")
    noise = Noise(srv.pid)
    cpu0, mine0 = sampler.cpu_seconds(), sum(me.cpu_times()[:2])
    pushed = push.push_all(srv.url, bodies, res.clients, timeout)
    cpu1, mine1 = sampler.cpu_seconds(), sum(me.cpu_times()[:2])
    res.push_seconds = pushed.seconds
    res.raw_bytes, res.wire_bytes = pushed.raw_bytes, pushed.wire_bytes
    res.push_requests, res.push_retries, res.push_failures = pushed.requests, pushed.retries, pushed.failures
    lat = sorted(pushed.latencies) or [0.0]
    res.push_p50_ms = lat[len(lat) // 2] * 1000
    res.push_p99_ms = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    res.server_cpu_cores = (cpu1 - cpu0) / pushed.seconds
    res.client_cpu_cores = (mine1 - mine0) / pushed.seconds
    res.other_cpu_push = noise.cores()
    res.rss_peak_push = sampler.peaks.get("push", 0)
    if pushed.failures:
        raise RuntimeError(f"push failed: {pushed.failures[0]}\n{srv.log_tail()}")


def flush(srv: ServerProcess, timeout: float) -> float:
    """`POST /flush`; its seconds."""
    client = Http(srv.url, timeout)
    began = time.perf_counter()
    status, text = client.call("POST", "/flush")
    took = time.perf_counter() - began
    client.close()
    if status not in (200, 204):
        raise RuntimeError(f"POST /flush answered {status}: {text[:300]!r}")
    return took


def run_flush(srv: ServerProcess, sampler: Sampler, res: Results, timeout: float) -> None:
    sampler.mark("flush")
    res.flush_seconds = flush(srv, timeout)
    res.rss_peak_flush = sampler.peaks.get("flush", 0)
    tenant = srv.data / TENANT
    res.chunk_files, res.chunk_bytes = _folder_bytes(tenant / "chunks")
    res.index_bytes = _folder_bytes(tenant / "index")[1]
    res.wal_bytes = _folder_bytes(tenant / "wal")[1]
    time.sleep(0.5)
    res.rss_after_flush = sampler.rss()


def data_facts(con: duckdb.DuckDBPyConnection, files: StoreFiles, ds: generate.Dataset, res: Results) -> None:
    """What the stored data is, counted from the chunk files themselves."""
    levels = ", ".join(f"count(*) FILTER (contains(line, '\"level\":\"{lv}\"'))" for lv in generate.LEVELS)
    row = con.sql(f"SELECT count(*), count(*) FILTER (contains(line, 'error')), "
                  f"count(*) FILTER (contains(line, 'timeout')), {levels} "
                  f"FROM read_parquet(?, hive_partitioning = false)", params=[files.chunks_glob]).fetchall()[0]
    n, err, tmo, *lv = row
    res.stored_rows = int(n)
    vols = sorted((s.lines for s in ds.streams), reverse=True)
    ns = ", ".join(f"{k} {v:.1%}" for k, v in sorted(ds.namespace_share().items(), key=lambda kv: -kv[1]))
    res.data = [
        f"{res.lines:,} lines, {res.raw_bytes / 1e6:,.0f} MB raw (mean {res.raw_bytes / max(res.lines, 1):.0f} bytes), "
        f"from `bench/generate.py` (seed {res.seed}): JSON objects with fields "
        f"{', '.join(generate.field_names())}.",
        f"{len(ds.streams)} streams {{app, container, namespace, pod}} (8 namespaces × 5 apps × 5 pods) with "
        f"Zipf-like volumes: largest {vols[0]:,} lines ({vols[0] / max(res.lines, 1):.1%}), median "
        f"{vols[len(vols) // 2]:,}, smallest {vols[-1]:,}. Namespaces: {ns}.",
        "24 h from 2026-01-19T00:00Z, in time order; each client pushes the streams of one node "
        "(volumes balanced), batches grouped per stream as Promtail sends them.",
        "Counted in the stored chunks: level " + ", ".join(
            f"{name} {c / max(n, 1):.1%}" for name, c in zip(generate.LEVELS, lv, strict=True))
        + f"; `error` in {err / max(n, 1):.2%} of lines, `timeout` in {tmo / max(n, 1):.3%} ({tmo:,} lines).",
    ]


def push_legacy(srv: ServerProcess, bodies: list[push.Body], res: Results, timeout: float) -> None:
    """Push the plain-text set and flush it, after the ingest and disk figures were taken."""
    pushed = push.push_all(srv.url, bodies, res.clients, timeout)
    if pushed.failures:
        raise RuntimeError(f"push of the legacy set failed: {pushed.failures[0]}\n{srv.log_tail()}")
    res.legacy_lines, res.legacy_raw_bytes = pushed.lines, pushed.raw_bytes
    res.legacy_push_seconds = pushed.seconds
    res.legacy_flush_seconds = flush(srv, timeout)


def legacy_facts(con: duckdb.DuckDBPyConnection, files: StoreFiles, lg: legacy.LegacyDataset, res: Results) -> None:
    """What the plain-text set is, counted from the chunk files (after its flush)."""
    ids = {fmt: sorted(sid for sid, labels in files.streams.items() if labels.get("format") == fmt)
           for fmt in legacy.FORMATS}
    status = regexp_group(NGINX_PATTERN, "status")
    row = con.sql(
        "SELECT count(*) FILTER (list_contains($logfmt, stream_id)), "
        "count(*) FILTER (list_contains($logfmt, stream_id) AND go_duration_ns(regexp_extract(line, $dur, 1)) > 1e9), "
        "min_by(line, ts) FILTER (list_contains($logfmt, stream_id)), "
        "count(*) FILTER (list_contains($nginx, stream_id)), "
        "count(*) FILTER (list_contains($nginx, stream_id) AND regexp_extract(line, $nginx_re, $status) = '500'), "
        "min_by(line, ts) FILTER (list_contains($nginx, stream_id)) "
        "FROM read_parquet($glob, hive_partitioning = false) WHERE list_contains($logfmt || $nginx, stream_id)",
        params={"logfmt": ids["logfmt"], "nginx": ids["nginx"], "dur": logfmt_value_pattern("duration"),
                "nginx_re": NGINX_PATTERN, "status": status, "glob": files.chunks_glob}).fetchall()[0]
    n_logfmt, slow, logfmt_sample, n_nginx, errors, nginx_sample = row
    res.legacy_stored_rows = int(n_logfmt + n_nginx)
    if res.legacy_stored_rows != res.legacy_lines:
        res.notes.append(f"the chunk files hold {res.legacy_stored_rows:,} rows of the legacy set, "
                         f"{res.legacy_lines:,} were pushed")
    vols = sorted((s.lines for s in lg.streams), reverse=True)
    res.legacy_data = [
        f"{res.legacy_lines:,} lines, {res.legacy_raw_bytes / 1e6:,.1f} MB raw (mean "
        f"{res.legacy_raw_bytes / max(res.legacy_lines, 1):.0f} bytes), from `bench/legacy.py` (seed {res.seed}; "
        f"a tenth of the JSON set, at least {legacy.MIN_LINES:,}), over the same 24 h.",
        f"{len(lg.streams)} streams {{format, host, job}}, no `namespace` label: "
        f"{len(legacy.LOGFMT_APPS)} logfmt and {len(legacy.NGINX_APPS)} nginx apps on {legacy.HOSTS} hosts each, "
        f"`job=\"legacy/<app>\"`; Zipf-like volumes inside a format: largest {vols[0]:,} lines, smallest {vols[-1]:,}.",
        f"logfmt, {n_logfmt:,} lines ({n_logfmt / max(res.legacy_stored_rows, 1):.0%}), durations in Go's text "
        f"(`850µs`, `12.345ms`, `1.5s`, `2m3.25s`), above 1 s in {slow / max(n_logfmt, 1):.2%} ({slow:,} lines): "
        f"`{logfmt_sample}`",
        f"nginx combined log format, {n_nginx:,} lines, status 500 in {errors / max(n_nginx, 1):.2%} "
        f"({errors:,} lines): `{nginx_sample}`",
        f"Pushed after the ingest and disk figures above were taken ({res.legacy_push_seconds:.1f} s), then "
        f"flushed again ({res.legacy_flush_seconds:.2f} s), so those figures are about the JSON set alone; "
        f"queries a–d select none of its streams.",
    ]


def run_query(client: Http, con: duckdb.DuckDBPyConnection, files: StoreFiles, q: Query,
              runs: int, warmup: int, settle: Callable[[], str]) -> QueryResult:
    out = QueryResult(q.name, q.title, q.logql, str(q.target), q.peers)
    params: dict[str, object] = {"query": q.logql, "start": q.start, "end": q.end, "limit": q.limit,
                                 "direction": "backward" if q.backward else "forward"}
    ids = files.stream_ids(q)
    client.reconnect()  # uvicorn drops keep-alive connections idle for 5 s
    medians, results, errors = _interleaved_ms({
        "ours": _ours(client, "/loki/api/v1/query_range", params, settle),
        "duckdb": lambda: floor_duckdb(con, files, q, ids),
        "polars": lambda: floor_polars(files, q, ids),
    }, runs, warmup)
    out.ours_ms, out.duckdb_ms, out.polars_ms = (medians.get(k) for k in ("ours", "duckdb", "polars"))
    out.error, out.timed_out = _errors_of(errors)
    floors = [_table_entries(results[k]) for k in ("duckdb", "polars") if k in medians]  # type: ignore[arg-type]
    want = floors[0] if floors else set()
    out.floor_lines = len(want)
    if any(f != want for f in floors):
        out.error += " (the DuckDB and Polars floors disagree)"
    if "ours" in medians:
        got = _entries(results["ours"])  # type: ignore[arg-type]
        out.lines = len(got)
        out.same_as_floor = got == want if floors else None
        out.met = q.target.met(medians["ours"], out.floor_ms)
    else:
        out.met = False
    return out


def run_metric_query(client: Http, con: duckdb.DuckDBPyConnection, files: StoreFiles, q: MetricQuery,
                     runs: int, warmup: int, settle: Callable[[], str]) -> MetricResult:
    out = MetricResult(q.name, q.title, q.logql, q.describe(), str(q.target), q.peers)
    ids = files.select(q.streams)
    client.reconnect()  # uvicorn drops keep-alive connections idle for 5 s
    medians, results, errors = _interleaved_ms({
        "ours": _ours(client, q.path, q.params(), settle),
        "duckdb": lambda: metric_floor_duckdb(con, files, q, ids),
        "polars": lambda: metric_floor_polars(files, q, ids),
    }, runs, warmup)
    out.ours_ms, out.duckdb_ms, out.polars_ms = (medians.get(k) for k in ("ours", "duckdb", "polars"))
    out.error, out.timed_out = _errors_of(errors)
    floors = [floor_series(results[k], q, files) for k in ("duckdb", "polars") if k in medians]  # type: ignore[arg-type]
    want = floors[0] if floors else {}
    out.floor_series, out.floor_points = len(want), sum(len(p) for p in want.values())
    if len(floors) == 2 and (why := compare(floors[1], floors[0], topk=q.topk is not None)):
        out.error += f" (the DuckDB and Polars floors disagree: {why})"
    if "ours" in medians:
        try:
            got, problems = answer_series(results["ours"], q)  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            out.difference = f"unreadable answer: {_one_line(exc)}"
            out.same_as_floor, out.met = False, False
            return out
        out.series, out.points = len(got), sum(len(p) for p in got.values())
        if floors:
            why = compare(got, want, topk=q.topk is not None)
            out.difference = "; ".join([*problems, *([why] if why else [])])
            out.same_as_floor = not out.difference
        out.met = q.target.met(medians["ours"], out.floor_ms)
    else:
        out.met = False
    return out


def select_queries(queries: list[Query], metrics: list[MetricQuery], names: str
                   ) -> tuple[list[Query], list[MetricQuery]]:
    """The log and metric queries named in `names` (comma-separated), all of them for "all", none
    for "none"."""
    if names == "all":
        return queries, metrics
    wanted = {n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"}
    known = [q.name for q in queries] + [q.name for q in metrics]
    unknown = wanted - set(known)
    if unknown:
        raise ValueError(f"unknown queries {sorted(unknown)}; known: {known}")
    return [q for q in queries if q.name in wanted], [q for q in metrics if q.name in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run.sh bench", description="Benchmark lokiarrow serve: ingest and log queries.")
    parser.add_argument("--lines", type=int, default=1_000_000, help="log lines to push (ANCHORS.md: 5000000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=4, help="concurrent push clients")
    parser.add_argument("--batch", type=int, default=1000, help="lines per push request")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per query first")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="the Markdown report (raw figures go to bench/out/, or beside a non-default output)")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temporary data folder")
    parser.add_argument("--keep", action="store_true", help="keep the data folder (printed) afterwards")
    parser.add_argument("--no-cache", action="store_true", help="re-encode the push bodies")
    parser.add_argument("--push-timeout", type=float, default=None, help="seconds (default: scales with --lines)")
    parser.add_argument("--queries", default="all",
                        help="comma-separated query names to run (log queries a-g of bench/queries.py, "
                             "metric queries me-mh of bench/metrics.py), 'all' or 'none'")
    parser.add_argument("--query-timeout", type=float, default=300.0,
                        help="seconds per HTTP call; a query that takes longer is reported as timed out")
    parser.add_argument("--settle-timeout", type=float, default=600.0,
                        help="after a timed-out query, seconds to wait at most for the server to finish it")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)

    command = " ".join(["./run.sh bench", *(sys.argv[1:] if argv is None else argv)])
    res = Results(command, args.lines, args.seed, args.clients, args.batch, args.runs, args.warmup,
                  load_before=os.getloadavg()[0], query_timeout=args.query_timeout)
    spec = generate.Spec(args.lines, args.seed, args.clients, args.batch)
    print(f"data: {args.lines:,} lines, seed {args.seed}, {args.clients} clients, batches of {args.batch:,}")
    ds = generate.build(spec)
    lg = legacy.build(generate.Spec(legacy.lines_for(args.lines), args.seed, args.clients, args.batch))
    try:
        queries, metrics = select_queries(build_queries(ds, lg), build_metric_queries(ds), args.queries)
    except ValueError as exc:
        parser.error(str(exc))
    bodies = push.bodies(ds, use_cache=not args.no_cache)
    legacy_bodies = push.bodies(lg, use_cache=not args.no_cache) if queries or metrics else []
    push_timeout = args.push_timeout or max(300.0, args.lines / 2_000)

    work = Path(tempfile.mkdtemp(prefix="lokiarrow-bench-", dir=args.workdir))
    con = duckdb.connect(config={"threads": 2})
    setup_duckdb(con)
    try:
        with ServerProcess(work) as srv, Sampler(srv.pid) as sampler:
            print(f"server: pid {srv.pid} on {srv.url}, data in {srv.data}")
            print(f"push: {len(bodies):,} bodies ...", flush=True)
            run_ingest(srv, sampler, bodies, res, push_timeout)
            print(f"  {res.lines_per_s:,.0f} lines/s in {res.push_seconds:.1f} s; flush ...", flush=True)
            run_flush(srv, sampler, res, args.query_timeout * 2)
            files = StoreFiles.open(srv.data / TENANT)
            data_facts(con, files, ds, res)
            if res.stored_rows != res.lines:
                res.notes.append(f"the chunk files hold {res.stored_rows:,} rows, {res.lines:,} were pushed")
            if legacy_bodies:
                print(f"push legacy set: {len(legacy_bodies):,} bodies; flush ...", flush=True)
                push_legacy(srv, legacy_bodies, res, push_timeout)
                files = StoreFiles.open(srv.data / TENANT)
                legacy_facts(con, files, lg, res)
            sampler.mark("query")
            noise = Noise(srv.pid)
            client = Http(srv.url, args.query_timeout)
            settle = Settle(srv.pid, args.settle_timeout)
            for q in queries:
                print(f"query {q.name}: {q.logql}", flush=True)
                sampler.mark(f"query {q.name}")
                res.queries.append(run_query(client, con, files, q, args.runs, args.warmup, settle))
                res.queries[-1].rss_peak = sampler.peaks.get(f"query {q.name}", 0)
            for m in metrics:
                print(f"query {m.name}: {m.logql} ({m.describe()})", flush=True)
                sampler.mark(f"query {m.name}")
                res.metrics.append(run_metric_query(client, con, files, m, args.runs, args.warmup, settle))
                res.metrics[-1].rss_peak = sampler.peaks.get(f"query {m.name}", 0)
            client.close()
            res.other_cpu_query = noise.cores()
            res.rss_peak_query = max((v for k, v in sampler.peaks.items() if k.startswith("query")), default=0)
            res.notes.append(f"peak server RSS while querying: {res.rss_peak_query / 1e6:,.0f} MB")
    finally:
        con.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    raw = OUT / f"results-{spec.key()}.json" if args.output == DEFAULT_OUTPUT else args.output.with_suffix(".json")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_bytes(orjson.dumps(res.to_dict(), option=orjson.OPT_INDENT_2))
    old = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(keep_sections(old, markdown(res)))
    print(summary(res))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
