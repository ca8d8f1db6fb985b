"""`python -m bench.fuzz_atheris [--runs N] [--target NAME] [--jobs J] [--no-report]`: coverage-guided fuzzing.

1. Each target of `FEEDS` runs libFuzzer (atheris) in a child process of its own, since libFuzzer owns
   its process and ends it with exit(). The child imports lokiarrow under `atheris.instrument_imports()`
   (this module imports none of it at its top for that reason), seeds a fresh corpus with inputs of the
   generator target it feeds (tests/fuzz/generators.py, seeds 0..SEEDS-1, turned into bytes), so coverage
   starts deep, and fuzzes for N inputs.
2. Each input is turned into the generator target's input shape and judged by the same contract check.
   A contract break (`Crash`) is caught in the child: counted, its input saved under
   bench/out/atheris/<target>/ and printed, and fuzzing goes on. An input slower than 1 s is timed a
   second time; a hang is an input slow both times (the second run rules out a child that was only
   waiting for a core).
3. The parent reads what the child left: libFuzzer's status lines (inputs run, edges `cov` and features
   `ft` after the seed corpus and at the end) and the child's findings file. A child that dies anyway
   (libFuzzer's own 30 s timeout, its memory limit) is counted as a hang or crash and restarted on the
   same corpus for the inputs left, three times at most.
4. The figures replace the `atheris` section of RELIABILITY.md. A crash or hang makes the exit status 1.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import cramjam

from bench.report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "RELIABILITY.md"
OUT = ROOT / "bench" / "out" / "atheris"
HANG_SECONDS = 1.0
SEEDS = 200                  # generator inputs in each seed corpus
LIBFUZZER_TIMEOUT_S = 30     # libFuzzer kills a child stuck this long on one input
RSS_LIMIT_MB = 3072
RESTARTS = 3
MAX_SECONDS = 420            # default time cap per target: 10 targets, 2 at a time, stay under 40 min
SAVED_PER_TARGET = 30        # inputs saved per target: the first of each kind of failure
INTRO = """# Reliability

What lokiarrow promises about hostile or broken input, each promise measured by code that could
fail: what was tried, how many times, and what held. Each section is written by the command it
names; the tests in `tests/fuzz/` run the same checks on fewer inputs in CI.
"""
# contract breaks earlier runs found, fixed since (their inputs are in tests/fuzz/atheris_regressions.py)
FIXED = ["a time zone name that is a folder of the zone database or too long for a file name raised OSError "
         "from zoneinfo (`toDateInZone` in templates, `location` of the agent's timestamp stage)",
         "unknown keys of an agent config that YAML reads as null or numbers were sorted with strings (TypeError)",
         "`eq`/`ne` of nil (a missing label, Promtail dialect) and a map compared them with `<` (TypeError)"]
# what each kind of target runs: the lokiarrow modules its child instruments (and imports up front, since
# some are imported lazily, inside functions); instrumenting less starts a child sooner
LOGQL = ("lokiarrow.logql", "lokiarrow.units")
QUERY = (*LOGQL, "lokiarrow.compile", "lokiarrow.exec", "lokiarrow.store", "lokiarrow.model")
PUSH = ("lokiarrow.wire", "lokiarrow.ingest", "lokiarrow.logql.promlabels", "lokiarrow.config", "lokiarrow.model",
        "lokiarrow.store.schema")
TEMPLATE = ("lokiarrow.logql.template", "lokiarrow.logql.template_fmt", "lokiarrow.logql.template_funcs",
            "lokiarrow.logql.template_time", "lokiarrow.logql.quoting", "lokiarrow.units")
AGENT = ("lokiarrow.agent", *LOGQL, "lokiarrow.exec.parsers", "lokiarrow.model")


# ---- what each target feeds ---------------------------------------------------------------------------
def _text(data: bytes) -> str:
    """Bytes as the HTTP layer hands text on: UTF-8, with U+FFFD for what is not."""
    return data.decode("utf-8", "replace")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _plain_body(item: tuple[bytes, str, str | None]) -> bytes | None:
    """A generated push body without its Content-Encoding (None: the generator broke the encoding)."""
    body, _, encoding = item
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body, -zlib.MAX_WBITS)
        if encoding == "zstd":
            return bytes(cramjam.zstd.decompress(body))
        if encoding == "lz4":
            return bytes(cramjam.lz4.decompress(body))
    except (OSError, EOFError, zlib.error, cramjam.DecompressionError):
        return None
    return body


def _raw_protobuf(item: tuple[bytes, str, str | None]) -> bytes | None:
    body = _plain_body(item)
    try:
        return None if body is None else bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError:
        return None


def _template_bytes(item: tuple[str, dict[str, str]]) -> bytes:
    text, data = item
    return _utf8(text) + b"\x1e" + _utf8(data.get("app", "")) + b"\x1f" + _utf8(data.get("level", ""))


def _template_input(data: bytes) -> tuple[str, dict[str, str]]:
    """`template \\x1e app \\x1f level`: the template and the two labels it renders with."""
    text, _, values = data.partition(b"\x1e")
    app, _, level = values.partition(b"\x1f")
    return _text(text), {"app": _text(app), "level": _text(level)}


def _pipeline_bytes(item: tuple[list[dict[str, Any]], list[str]]) -> bytes:
    config, lines = item
    return _utf8(json.dumps(config)) + b"\n" + _utf8("\n".join(lines))


def _pipeline_input(data: bytes) -> tuple[list[Any], list[str]] | None:
    """The first line a JSON list of stages, the other lines log lines (None: no list of stages)."""
    head, _, rest = data.partition(b"\n")
    try:
        config = json.loads(head)
    except (ValueError, RecursionError):
        return None
    try:
        if not isinstance(config, list) or not config or _throttles(config):
            return None
    except RecursionError:
        return None
    return config, _text(rest).split("\n")


def _throttles(value: Any) -> bool:
    """Whether the stages hold a `limit` without `drop: true`: it waits for tokens by design
    (Promtail's backpressure), so the time an input takes is the rate's, not work."""
    if isinstance(value, list):
        return any(_throttles(v) for v in value)
    if isinstance(value, dict):
        limit = value.get("limit")
        return (isinstance(limit, dict) and limit.get("drop") is not True) or any(_throttles(v) for v in value.values())
    return False


def check_valid_pipeline(item: tuple[list[Any], list[str]]) -> None:
    """generators.check_stages for the pipelines the loader accepts; the others must be refused with a
    ConfigError (the loader's contract)."""
    from lokiarrow.agent import stages
    from lokiarrow.agent.settings import ConfigError, Section
    from tests.fuzz.generators import Crash, check_stages

    config, _ = item
    try:
        stages.build(Section({"pipeline_stages": config}, "").sections("pipeline_stages"))
    except ConfigError:
        return
    except Exception as exc:
        raise Crash(f"pipeline {config!r} raised {type(exc).__name__} while built: {exc}") from exc
    check_stages(item)


@dataclass(frozen=True)
class Feed:
    """One atheris target: how fuzzed bytes become an input of the generator target `target`."""
    name: str
    target: str                                   # generator target: seeds and, by default, the check
    what: str                                     # what the bytes become, for the report
    runs: int                                     # default inputs
    decode: Callable[[bytes], Any]                # bytes -> the target's input (None: skipped)
    seed: Callable[[Any], bytes | None]           # a generated input -> bytes (None: not representable)
    reach: tuple[str, ...]                        # the lokiarrow modules it runs (and their submodules)
    check: Callable[[Any], None] | None = None    # default: TARGETS[target].check


FEEDS = {f.name: f for f in [
    Feed("logql_parser", "logql_parser", "bytes as UTF-8 query text to `parse_expr`", 300_000,
         _text, _utf8, LOGQL),
    Feed("logql_query", "logql_query", "bytes as query text: parse, compile, run on a 20-line store", 200_000,
         _text, _utf8, QUERY),
    Feed("push_json", "push_json", "bytes as a JSON push body (v1 and legacy)", 2_000_000,
         lambda d: (d, "application/json", None), _plain_body, PUSH),
    Feed("push_json_gzip", "push_json", "bytes gzipped, as a JSON push body with `Content-Encoding: gzip`", 1_500_000,
         lambda d: (gzip.compress(d, 1), "application/json", "gzip"), _plain_body, PUSH),
    Feed("push_protobuf", "push_protobuf", "bytes snappy-compressed, as a protobuf push body", 1_500_000,
         lambda d: (bytes(cramjam.snappy.compress_raw(d)), "application/x-protobuf", None), _raw_protobuf, PUSH),
    Feed("push_protobuf_raw", "push_protobuf", "bytes as the snappy body itself (snappy framing fuzzed)", 1_500_000,
         lambda d: (d, "application/x-protobuf", None), _plain_body, PUSH),
    Feed("push_otlp", "push_otlp", "bytes as an OTLP/HTTP JSON logs body", 3_000_000,
         lambda d: (d, "application/json", None), _plain_body, PUSH),
    Feed("template", "template", "`template \\x1e app \\x1f level`: compile and render, Loki and Promtail", 400_000,
         _template_input, _template_bytes, TEMPLATE),
    Feed("promtail_config", "promtail_config", "bytes as Promtail YAML to the agent config loader", 250_000,
         _text, _utf8, AGENT),
    Feed("pipeline_stages", "pipeline_stages", "a JSON list of stages, then log lines: pipelines the loader "
         "accepts never raise (a `limit` without `drop: true` left out: it waits by design)", 1_000_000, _pipeline_input, _pipeline_bytes, AGENT, check_valid_pipeline),
]}


# ---- the child: one libFuzzer run ---------------------------------------------------------------------
def child(name: str, runs: int, corpus: Path, out: Path, seeds: int, max_seconds: int) -> None:
    """Fuzz `name` in this process for `runs` inputs; never returns (libFuzzer exits)."""
    import importlib

    import atheris

    feed = FEEDS[name]
    modules = _modules()
    inside = [m for m in modules if any(m == r or m.startswith(r + ".") for r in feed.reach)]
    outside = [m for m in modules if m not in inside and m != "lokiarrow"]
    with atheris.instrument_imports(include=["lokiarrow"], exclude=outside):
        from tests.fuzz import generators
        for module in inside:
            importlib.import_module(module)
    target = generators.TARGETS[feed.target]
    check = feed.check or target.check
    if not any(corpus.iterdir()):
        for i in range(seeds):
            data = feed.seed(target.make(random.Random(i)))
            if data is not None:
                (corpus / f"seed-{i:05d}").write_bytes(data)
    findings = Findings(out)

    def one(data: bytes) -> None:
        item = feed.decode(data)
        if item is None:
            return
        took = _timed(check, item, lambda exc: findings.add("crash", data, item, exc))
        if took > HANG_SECONDS:
            again = _timed(check, item, lambda exc: None)
            if again > HANG_SECONDS:
                findings.add("hang", data, item, None, (took, again))

    argv = [sys.argv[0], f"-runs={runs}", f"-timeout={LIBFUZZER_TIMEOUT_S}", f"-rss_limit_mb={RSS_LIMIT_MB}",
            "-print_final_stats=1", "-seed=1", f"-artifact_prefix={out}/", str(corpus)]
    if max_seconds:
        argv.insert(2, f"-max_total_time={max_seconds}")
    atheris.Setup(argv, one)
    print(f"fuzz_atheris: started at {time.time()}", file=sys.stderr, flush=True)
    atheris.Fuzz()


def _modules() -> list[str]:
    """Every module of lokiarrow by its dotted name, found without importing any."""
    names = (".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "lokiarrow").rglob("*.py"))
    return sorted(n.removesuffix(".__init__") for n in names)


def _timed(check: Callable[[Any], None], item: Any, broke: Callable[[Exception], None]) -> float:
    t0 = time.perf_counter()
    try:
        check(item)
    except Exception as exc:   # a Crash, or a fault of this harness: kept alike
        broke(exc)
    return time.perf_counter() - t0


class Findings:
    """The child's crashes and hangs: one JSON line each in findings.jsonl; the input of the first of
    each kind saved beside it and printed."""

    def __init__(self, out: Path) -> None:
        self.path = out / "findings.jsonl"
        self.kinds: set[str] = set()

    def add(self, kind: str, data: bytes, item: Any, exc: Exception | None,
            seconds: tuple[float, float] | None = None) -> None:
        signature = _signature(kind, exc.__cause__ or exc if exc else None)
        record: dict[str, Any] = {"kind": kind, "signature": signature, "seconds": seconds,
                                  "message": str(exc)[:500] if exc else ""}
        if signature not in self.kinds and len(self.kinds) < SAVED_PER_TARGET:
            self.kinds.add(signature)
            path = self.path.parent / f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
            path.write_bytes(data)
            record |= {"file": str(path), "input": repr(item)}
            print(f"fuzz_atheris: {kind} ({signature}): {record['message'][:300]}\n  input: {repr(item)[:1000]}",
                  file=sys.stderr, flush=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def _signature(kind: str, cause: BaseException | None) -> str:
    """A failure's kind: its exception and the innermost line of lokiarrow it went through."""
    if cause is None:
        return kind
    frames = traceback.extract_tb(cause.__traceback__)
    ours = [f for f in frames if "/lokiarrow/" in f.filename] or frames
    if not ours:
        return type(cause).__name__
    path = Path(ours[-1].filename)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return f"{type(cause).__name__} at {where}:{ours[-1].lineno}"


# ---- the parent: run the children, count, report --------------------------------------------------------
@dataclass
class Tally:
    name: str
    inputs: int = 0
    crashes: int = 0
    hangs: int = 0
    seed_cov: int = 0          # libFuzzer's edges and features once the seed corpus ran
    seed_ft: int = 0
    cov: int = 0               # ... and at the end
    ft: int = 0
    seconds: float = 0.0       # fuzzing time, child start-up left out
    deaths: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    saved: list[dict[str, Any]] = field(default_factory=list)


_STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+)")
_UNITS = re.compile(r"^stat::number_of_executed_units: (\d+)")
_STARTED = re.compile(r"^fuzz_atheris: started at ([\d.]+)")
_PRINTING = threading.Lock()   # the children's parents print from threads of their own


def _say(text: str) -> None:
    with _PRINTING:
        print(text, file=sys.stderr, flush=True)


def run_target(name: str, runs: int, *, seeds: int = SEEDS, max_seconds: int = 0, out: Path = OUT,
               quiet: bool = False) -> Tally:
    """Fuzz `name` for `runs` inputs in child processes; the tally of what they did and found."""
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tally = Tally(name)
    with tempfile.TemporaryDirectory(prefix=f"atheris-{name}-") as corpus:
        for attempt in range(RESTARTS + 1):
            left = runs - tally.inputs
            if left <= 0:
                break
            log = folder / f"libfuzzer-{attempt}.log"
            command = [sys.executable, "-m", "bench.fuzz_atheris", "--child", name, "--runs", str(left),
                       "--corpus", corpus, "--out", str(folder), "--seeds", str(seeds),
                       "--max-seconds", str(max(1, int(max_seconds - tally.seconds)) if max_seconds else 0)]
            with log.open("w") as f:
                code = subprocess.run(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                      env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode
            ended = time.time()
            done = _read_log(log, tally, first=attempt == 0, ended=ended)
            if code == 0:
                break
            death = _death(log)
            tally.deaths.append(f"{death} (log {log.relative_to(ROOT) if log.is_relative_to(ROOT) else log})")
            tally.hangs += death.startswith("timeout")
            tally.crashes += not death.startswith("timeout")
            if not quiet:
                _say(f"  {name}: the child died after {done:,} inputs: {death}")
            if max_seconds and tally.seconds >= max_seconds:
                break
    _read_findings(folder / "findings.jsonl", tally)
    return tally


def _read_log(log: Path, tally: Tally, first: bool, ended: float) -> int:
    """Add what one child's libFuzzer log says to `tally`; the inputs that child ran."""
    inputs = units = 0
    started = None
    for line in log.read_text(errors="replace").splitlines():
        if m := _STATUS.match(line):
            inputs = int(m[1])
            tally.cov, tally.ft = int(m[3]), int(m[4])
            if m[2] == "INITED" and first:
                tally.seed_cov, tally.seed_ft = tally.cov, tally.ft
        elif m := _UNITS.match(line):
            units = int(m[1])
        elif m := _STARTED.match(line):
            started = float(m[1])
    done = max(inputs, units)
    tally.inputs += done
    if started:
        tally.seconds += ended - started
    return done


def _death(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    error = next((ln for ln in lines if "ERROR: libFuzzer" in ln or "Uncaught Python exception" in ln),
                 lines[-1] if lines else "no output")
    unit = next((ln for ln in lines if "Test unit written to" in ln), "")
    kind = "timeout" if "timeout" in error else "out of memory" if "out-of-memory" in error else "crash"
    return f"{kind}: {error.strip()[:200]} {unit.strip()}".strip()


def _read_findings(path: Path, tally: Tally) -> None:
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        record = json.loads(line)
        tally.crashes += record["kind"] == "crash"
        tally.hangs += record["kind"] == "hang"
        tally.kinds[f"{record['kind']}: {record['signature']}"] += 1
        if "input" in record:
            tally.saved.append(record)


def run_all(names: list[str], runs: int | None, jobs: int, seeds: int = SEEDS, max_seconds: int = 0,
            out: Path = OUT, quiet: bool = False) -> list[Tally]:
    """`run_target` for each name (its default runs unless `runs`), `jobs` children at a time."""
    def one(name: str) -> Tally:
        n = runs or FEEDS[name].runs
        if not quiet:
            _say(f"{name}: {n:,} inputs")
        t = run_target(name, n, seeds=seeds, max_seconds=max_seconds, out=out, quiet=quiet)
        if not quiet:
            _say(f"  {name}: {t.inputs:,} inputs, {t.crashes} crashes, {t.hangs} hangs, cov {t.seed_cov} -> {t.cov}, "
                 f"ft {t.seed_ft} -> {t.ft}, {t.inputs / max(t.seconds, 1e-9):,.0f}/s in {t.seconds:.0f} s"
                 + "".join(f"\n    {r['kind']} ({r['signature']}): {r['message'][:300]}\n      input: {r['input'][:600]}"
                           f"\n      saved: {r['file']}" for r in t.saved))
        return t

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, names))


def render(tallies: list[Tally], command: str, seeds: int, wall_s: float) -> str:
    m = machine()
    out = [f"## Coverage-guided fuzzing with atheris (`{command}`)", "",
           f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {m['cpu']}, Python {m['python']}, atheris "
           f"{metadata.version('atheris')} (libFuzzer), {wall_s / 60:.0f} min in all. Each target ran libFuzzer in a "
           "process of its own over lokiarrow imported under `atheris.instrument_imports()`, its corpus seeded with "
           f"{seeds} inputs of the generator target it feeds (tests/fuzz/generators.py, seeds 0..{seeds - 1}). Every "
           "fuzzed input goes through that target's contract check, as in the `fuzz` section: a crash is an exception "
           f"outside the contract, a hang an input over {HANG_SECONDS:g} s twice. Coverage is libFuzzer's count of "
           "edges (`cov`) and features (`ft`) of the instrumented code (the lokiarrow modules the target runs), after the "
           "seed corpus → at the end.", "",
           "| target | what is fed | inputs | crashes | hangs > 1 s | coverage: edges, features | inputs/s |",
           "|---|---|---:|---:|---:|---|---:|"]
    for t in tallies:
        what = FEEDS[t.name].what.replace("|", "\\|")
        out.append(f"| {t.name} | {what} | {t.inputs:,} | {t.crashes} | {t.hangs} | "
                   f"cov {t.seed_cov:,} → {t.cov:,}, ft {t.seed_ft:,} → {t.ft:,} | "
                   f"{t.inputs / max(t.seconds, 1e-9):,.0f} |")
    crashes, hangs = sum(t.crashes for t in tallies), sum(t.hangs for t in tallies)
    out += ["", f"{sum(t.inputs for t in tallies):,} inputs in all, {crashes} crashes, {hangs} hangs."]
    kinds = [f"{t.name}: " + ", ".join(f"{k} ×{n}" for k, n in t.kinds.items()) for t in tallies if t.kinds]
    deaths = [f"{t.name}: " + "; ".join(t.deaths) for t in tallies if t.deaths]
    if kinds:
        out.append("Failures by kind: " + " / ".join(kinds) + ".")
    if deaths:
        out.append("Children that died: " + " / ".join(deaths) + ".")
    out += ["", "Found by the runs that built this harness, and fixed: " + "; ".join(FIXED) + ". Their inputs are "
            "kept in tests/fuzz/atheris_regressions.py; tests/fuzz/test_atheris.py replays them through the same "
            "checks and runs a short atheris run of every target (0 crashes, coverage past the seed corpus)."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz_atheris", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, help="inputs per target (default: each target's own, ~25 min in all)")
    ap.add_argument("--target", choices=sorted(FEEDS), help="one target only (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="targets fuzzed at once (default 2)")
    ap.add_argument("--seeds", type=int, default=SEEDS, help=f"generator inputs per seed corpus (default {SEEDS})")
    ap.add_argument("--max-seconds", type=int, default=MAX_SECONDS,
                    help=f"stop a target after this long (default {MAX_SECONDS}; 0: never)")
    ap.add_argument("--no-report", action="store_true", help="print only, leave RELIABILITY.md alone")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.runs, Path(args.corpus), Path(args.out), args.seeds, args.max_seconds)
        return 0
    names = [args.target] if args.target else list(FEEDS)
    started = time.perf_counter()
    tallies = run_all(names, args.runs, args.jobs, args.seeds, args.max_seconds)
    wall = time.perf_counter() - started
    command = "python -m bench.fuzz_atheris" + "".join(
        f" {flag} {value}" for flag, value in [("--runs", args.runs), ("--target", args.target),
                                                ("--seeds", None if args.seeds == SEEDS else args.seeds),
                                                ("--max-seconds", None if args.max_seconds == MAX_SECONDS else args.max_seconds)] if value)
    print(f"{sum(t.inputs for t in tallies):,} inputs, {sum(t.crashes for t in tallies)} crashes, "
          f"{sum(t.hangs for t in tallies)} hangs in {wall / 60:.1f} min", file=sys.stderr)
    if not args.no_report:
        write_section(REPORT, "atheris", render(tallies, command, args.seeds, wall), INTRO)
    return 1 if any(t.crashes or t.hangs for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
