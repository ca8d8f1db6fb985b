"""The benchmark's results as plain data, rendered to BENCHMARKS.md and a console summary."""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

MB = 1e6

# Targets and peer figures from /work/shared/ANCHORS.md (5 M lines, this machine class).
INGEST_LINES_PER_S = 165_000
INGEST_RSS_BYTES = 400 * MB
LOKI = {"lines/s": "150,600", "MB/s": "44", "rss": "1.12 GB", "cpu": "1.77", "disk": "354.5 MB", "ratio": "4.12"}
VICTORIA = {"lines/s": "163,500", "MB/s": "", "rss": "398 MB", "cpu": "", "disk": "352 MB", "ratio": "4.15"}


def machine() -> dict[str, str]:
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    osname = platform.platform()
    try:
        with open("/etc/os-release") as f:
            osname = next((ln.split("=", 1)[1].strip().strip('"') for ln in f if ln.startswith("PRETTY_NAME")), osname)
    except OSError:
        pass
    versions = {name: _version(name) for name in ("lokiarrow", "duckdb", "polars", "pyarrow", "fastapi", "uvicorn")}
    return {"cpu": f"{model}, {os.cpu_count()} cores", "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
            "os": osname, "python": platform.python_version(),
            **versions}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        module = sys.modules.get(name) or __import__(name)
        return str(getattr(module, "__version__", "?"))


class VersusFloor:
    """Our time beside the faster of the two floors (both results, log and metric, have these)."""

    ours_ms: float | None
    duckdb_ms: float | None
    polars_ms: float | None

    @property
    def floor_ms(self) -> float | None:
        times = [t for t in (self.duckdb_ms, self.polars_ms) if t is not None]
        return min(times) if times else None

    @property
    def ratio(self) -> float | None:
        floor = self.floor_ms
        return self.ours_ms / floor if self.ours_ms is not None and floor else None


@dataclass
class QueryResult(VersusFloor):
    name: str
    title: str
    logql: str
    target: str
    peers: str
    ours_ms: float | None = None
    duckdb_ms: float | None = None
    polars_ms: float | None = None
    lines: int = 0
    floor_lines: int = 0
    same_as_floor: bool | None = None
    met: bool | None = None
    error: str = ""
    timed_out: float | None = None                         # the timeout (s) our call ran into
    rss_peak: int = 0                                      # the server's peak RSS while it ran


@dataclass
class MetricResult(VersusFloor):
    name: str
    title: str
    logql: str
    asked: str                                             # range and step, or the instant's time
    target: str
    peers: str
    ours_ms: float | None = None
    duckdb_ms: float | None = None
    polars_ms: float | None = None
    series: int = 0
    points: int = 0
    floor_series: int = 0
    floor_points: int = 0
    same_as_floor: bool | None = None
    difference: str = ""                                   # how our answer differs from the floor's
    met: bool | None = None
    error: str = ""
    timed_out: float | None = None                         # the timeout (s) our call ran into
    rss_peak: int = 0                                      # the server's peak RSS while it ran


@dataclass
class Results:
    command: str
    lines: int
    seed: int
    clients: int
    batch: int
    runs: int = 7
    warmup: int = 1
    data: list[str] = field(default_factory=list)          # lines of prose about the data
    machine: dict[str, str] = field(default_factory=machine)
    when: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    raw_bytes: int = 0
    wire_bytes: int = 0
    push_seconds: float = 0.0
    push_requests: int = 0
    push_retries: int = 0
    push_failures: list[str] = field(default_factory=list)
    push_p50_ms: float = 0.0
    push_p99_ms: float = 0.0
    server_cpu_cores: float = 0.0
    client_cpu_cores: float = 0.0
    rss_idle: int = 0
    rss_peak_push: int = 0
    rss_peak_flush: int = 0
    rss_peak_query: int = 0
    flush_seconds: float = 0.0
    stored_rows: int = 0
    chunk_files: int = 0
    chunk_bytes: int = 0
    index_bytes: int = 0
    wal_bytes: int = 0
    queries: list[QueryResult] = field(default_factory=list)
    metrics: list[MetricResult] = field(default_factory=list)
    query_timeout: float = 0.0
    load_before: float = 0.0                                 # 1-min load average at the start
    other_cpu_push: float = 0.0                              # cores other processes used meanwhile
    other_cpu_query: float = 0.0
    rss_after_flush: int = 0
    legacy_data: list[str] = field(default_factory=list)   # lines of prose about the plain-text set
    legacy_lines: int = 0
    legacy_raw_bytes: int = 0
    legacy_stored_rows: int = 0
    legacy_push_seconds: float = 0.0
    legacy_flush_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.push_seconds if self.push_seconds else 0.0

    @property
    def disk_bytes(self) -> int:
        return self.chunk_bytes + self.index_bytes

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["lines_per_s"] = self.lines_per_s
        d["queries"] = [{**asdict(q), "floor_ms": q.floor_ms, "ratio": q.ratio} for q in self.queries]
        d["metrics"] = [{**asdict(q), "floor_ms": q.floor_ms, "ratio": q.ratio} for q in self.metrics]
        return d


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _mb(value: float) -> str:
    return f"{value / MB:,.1f} MB"


def _ours(q: QueryResult | MetricResult) -> str:
    if q.ours_ms is not None:
        return f"**{_ms(q.ours_ms)}**"
    if q.timed_out is not None:
        return f"timed out (> {q.timed_out:g} s)"
    return f"failed: {q.error}"


def _yes(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def _code_in_table(text: str) -> str:
    """`text` as inline code in a table cell: pipes escaped, a longer fence when it holds a backtick."""
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def markdown(r: Results) -> str:
    m = r.machine
    ingest_ok = r.lines_per_s >= INGEST_LINES_PER_S and r.rss_peak_push <= INGEST_RSS_BYTES
    ratio = r.raw_bytes / r.disk_bytes if r.disk_bytes else 0.0
    out = [
        "# Benchmarks",
        "",
        f"Written by `{r.command}` on {r.when}; every run overwrites this file "
        f"(raw figures: `bench/out/results-*.json`). Targets and peer figures come from "
        f"`ANCHORS.md` (Loki 3.x and VictoriaLogs 1.26 on the same kind of machine, **at 5 M lines**); "
        f"the floors are measured in this run, on this data.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']} |",
        f"| RAM | {m['ram']} |",
        f"| OS | {m['os']} |",
        f"| Python | {m['python']} |",
        f"| lokiarrow / DuckDB / Polars / PyArrow | {m['lokiarrow']} / {m['duckdb']} / {m['polars']} / {m['pyarrow']} |",
        f"| FastAPI / uvicorn | {m['fastapi']} / {m['uvicorn']} |",
        f"| other processes' CPU (noise) | {r.other_cpu_push:.2f} cores during push, {r.other_cpu_query:.2f} during "
        f"queries; load average {r.load_before:.2f} at the start |",
        "",
        "## Data",
        "",
        *[f"- {line}" for line in r.data],
        "",
        *(["A second, smaller set of plain-text lines for the pipeline queries e and g:", "",
           *[f"- {line}" for line in r.legacy_data], ""] if r.legacy_data else []),
        "## Ingest",
        "",
        f"`lokiarrow serve` as a subprocess (WAL on, permissive limits); {r.clients} client threads, each with "
        f"one keep-alive connection, push pre-encoded protobuf + snappy bodies of {r.batch:,} lines "
        f"({r.push_requests:,} requests, {_mb(r.wire_bytes)} on the wire); the clients share the 2 cores with "
        f"the server. Peak RSS is the server process's, sampled every 20 ms.",
        "",
        "| measure | lokiarrow | target | Loki (5 M) | VictoriaLogs (5 M) |",
        "|---|---|---|---|---|",
        f"| lines/s | **{r.lines_per_s:,.0f}** | ≥ {INGEST_LINES_PER_S:,} | {LOKI['lines/s']} | {VICTORIA['lines/s']} |",
        f"| MB/s raw | {r.raw_bytes / MB / r.push_seconds if r.push_seconds else 0:,.1f} | | {LOKI['MB/s']} | |",
        f"| peak RSS during push | **{_mb(r.rss_peak_push)}** | ≤ {INGEST_RSS_BYTES / MB:.0f} MB | {LOKI['rss']} | {VICTORIA['rss']} |",
        f"| server CPU during push | {r.server_cpu_cores:.2f} of {os.cpu_count()} cores | | {LOKI['cpu']} | |",
        f"| client CPU during push | {r.client_cpu_cores:.2f} cores | | | |",
        f"| push latency p50 / p99 | {r.push_p50_ms:.1f} / {r.push_p99_ms:.1f} ms | | | |",
        f"| retries / failed clients | {r.push_retries} / {len(r.push_failures)} | 0 / 0 | | |",
        f"| target met (rate and RSS) | {_yes(ingest_ok)} | | | |",
        f"| idle RSS before push | {_mb(r.rss_idle)} | | | |",
        f"| `POST /flush` after push | {r.flush_seconds:.2f} s (peak RSS {_mb(r.rss_peak_flush)}, "
        f"{_mb(r.rss_after_flush)} after) | | | |",
        f"| rows in chunk files | {r.stored_rows:,} of {r.lines:,} | all | | |",
        f"| bytes on disk (chunks + index) | {_mb(r.disk_bytes)} ({r.chunk_files} chunk files, index "
        f"{_mb(r.index_bytes)}, WAL left {_mb(r.wal_bytes)}) | | {LOKI['disk']} | {VICTORIA['disk']} |",
        f"| raw / disk | **{ratio:.2f}** | | {LOKI['ratio']} | {VICTORIA['ratio']} |",
        "",
        "## Log queries",
        "",
        f"`/loki/api/v1/query_range`, limit 1000, backward, timed at the client over a keep-alive connection. "
        f"Floor: the same question written by hand as one DuckDB query and as one Polars lazy scan over the "
        f"same Parquet chunk files (2 threads each, stream ids resolved from the index files beforehand), "
        f"returning the same newest 1000 lines (for `line_format`, formatted as it formats them); the faster one is the floor. Each figure is the median of "
        f"{r.runs} runs after {r.warmup} warm-up, the three contenders' runs interleaved so that noise from "
        f"other processes hits them alike. \"same lines\" compares our answer with the floor's, entry by entry.",
        "",
        "| | query | lokiarrow | DuckDB | Polars | floor | ours / floor | target | met | peers (5 M) | lines | same lines |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for q in r.queries:
        ratio_text = f"{q.ratio:.2f} ×" if q.ratio is not None else "–"
        out.append(f"| {q.name} | {q.title}: {_code_in_table(q.logql)} | {_ours(q)} | {_ms(q.duckdb_ms)} | "
                   f"{_ms(q.polars_ms)} | {_ms(q.floor_ms)} | {ratio_text} | {q.target} | {_yes(q.met)} | "
                   f"{q.peers or '–'} | {q.lines:,} | {_yes(q.same_as_floor)} |")
    if r.metrics:
        out += _metric_table(r)
    if r.notes or r.push_failures:
        out += ["", "## Notes", "", *[f"- {n}" for n in r.notes], *[f"- push failure: {f}" for f in r.push_failures]]
    return "\n".join(out) + "\n"


def _metric_table(r: Results) -> list[str]:
    out = [
        "",
        "## Metric queries",
        "",
        "`/loki/api/v1/query_range` over the JSON set's 24 h (steps from 00:00 to 24:00 inclusive), or "
        "`/loki/api/v1/query` at its end (instant), timed at the client as above; a call that takes longer "
        f"than the query timeout ({r.query_timeout:g} s) is reported as timed out and not run again. Windows "
        "are Loki's: the point at step t covers lines with t − range < ts ≤ t; here range = step, so each "
        "line counts in exactly one window. Floor: the same series written by hand as one DuckDB query and as "
        "one Polars lazy scan over the chunk files (2 threads each, stream ids resolved from the index files "
        "beforehand): me counts lines per (JSON `level`, window) with `json_extract_string` / "
        "`str.json_path_match`; mf counts lines containing `error` per (stream, window), sums them per pod, "
        "divides by 300 s and keeps the 5 largest pods per step; mg takes `quantile_cont(latency_ms, 0.99)` "
        "(Prometheus' quantile: linear between ranks) per (namespace, window); mh counts lines per (stream, "
        "`detected_level` metadata) in the last hour. \"same answer\": the same series (label sets) with the "
        "same points, values within 1e-9 relative; for topk, the same values at each step (ties may pick "
        "different series). Server peak RSS: the server process's while that query's calls ran (and while it "
        "finished a timed-out one).",
        "",
        "| | query | lokiarrow | DuckDB | Polars | floor | ours / floor | target | met | peers (5 M) | series "
        "(points) | same answer | server peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for q in r.metrics:
        ratio_text = f"{q.ratio:.2f} ×" if q.ratio is not None else "–"
        series = f"{q.series:,} ({q.points:,})" if q.ours_ms is not None else f"floor: {q.floor_series:,} ({q.floor_points:,})"
        out.append(f"| {q.name} | {q.title}: {_code_in_table(q.logql)} | {_ours(q)} | {_ms(q.duckdb_ms)} | "
                   f"{_ms(q.polars_ms)} | {_ms(q.floor_ms)} | {ratio_text} | {q.target} | {_yes(q.met)} | "
                   f"{q.peers or '–'} | {series} | {_yes(q.same_as_floor)} | {_mb(q.rss_peak)} |")
    out += ["", "Asked as:", "", *[f"- {q.name}: {q.asked}" for q in r.metrics]]
    problems = [q for q in r.metrics if q.difference or (q.error and (q.ours_ms is not None or q.timed_out))]
    if problems:
        out += ["", "Differences and errors:", "",
                *[f"- {q.name}: {'; '.join(x for x in (q.difference, q.error) if x)}" for q in problems]]
    return out


def summary(r: Results) -> str:
    ratio = r.raw_bytes / r.disk_bytes if r.disk_bytes else 0.0
    lines = [
        f"ingest  {r.lines_per_s:,.0f} lines/s ({r.raw_bytes / MB / max(r.push_seconds, 1e-9):,.1f} MB/s raw), "
        f"peak RSS {_mb(r.rss_peak_push)}, server CPU {r.server_cpu_cores:.2f} cores "
        f"[target ≥ {INGEST_LINES_PER_S:,} lines/s, ≤ {INGEST_RSS_BYTES / MB:.0f} MB]",
        f"disk    {_mb(r.disk_bytes)}, raw/disk {ratio:.2f}, rows stored {r.stored_rows:,}/{r.lines:,}, "
        f"flush {r.flush_seconds:.2f} s",
    ]
    if max(r.other_cpu_push, r.other_cpu_query) > 0.2:
        lines.append(f"warning: other processes used {r.other_cpu_push:.2f} cores during push and "
                     f"{r.other_cpu_query:.2f} during queries: the figures are noisy")
    every: list[QueryResult | MetricResult] = [*r.queries, *r.metrics]
    for q in every:
        ratio_text = f"{q.ratio:.2f}x floor" if q.ratio is not None else "no ratio"
        ours = _ms(q.ours_ms) if q.timed_out is None else "timed out"
        lines.append(f"query {q.name:<2} {ours:>9}  duckdb {_ms(q.duckdb_ms):>9}  polars {_ms(q.polars_ms):>9}  "
                     f"{ratio_text:>14}  target {q.target}: {'met' if q.met else 'NOT met'}"
                     f"{'  (answer differs from floor!)' if q.same_as_floor is False else ''}"
                     f"{'  ' + q.error if q.error else ''}")
    return "\n".join(lines)


# BENCHMARKS.md holds one section per benchmark command; a run rewrites its own and keeps the others.
_SECTION = re.compile(r"<!-- section (\S+) -->\n.*?<!-- /section \1 -->\n?", re.S)


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with the section `name` holding `body` (appended when it has none yet)."""
    block = f"<!-- section {name} -->\n{body.rstrip()}\n<!-- /section {name} -->\n"
    for found in _SECTION.finditer(text):
        if found.group(1) == name:
            return text[:found.start()] + block + text[found.end():]
    return f"{text.rstrip()}\n\n{block}" if text.strip() else block


def write_section(path: Path, name: str, body: str, intro: str = "") -> None:
    """Rewrite the section `name` of the report at `path` (created from `intro` when absent)."""
    old = path.read_text() if path.exists() else intro
    path.write_text(replace_section(old, name, body))


def keep_sections(old: str, new: str) -> str:
    """`new` followed by the sections of `old` that `new` does not have."""
    for found in _SECTION.finditer(old):
        if f"<!-- section {found.group(1)} -->" not in new:
            new = f"{new.rstrip()}\n\n{found.group()}"
    return new
