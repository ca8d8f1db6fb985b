"""`python -m bench.fuzz [--inputs N] [--target NAME] [--jobs J]`: hostile-input fuzzing, counted.

1. For each target of tests/fuzz/generators.py (or the one `--target` names), build N inputs from
   seeds 0..N-1 with the same generators the hypothesis tests use, run each through the target's
   check and count: inputs, crashes (an exception outside the target's contract; the first few
   are printed with their seed), hangs (an input over 1 s, run again and over 1 s of CPU time: the
   second run rules out a process that was only waiting for a core; hangs are printed with their
   seed), the slowest input and the throughput. `--jobs` splits every target's seeds over that many
   processes.
2. The adversarial cases (decompression bombs, backtracking and oversized regexes) run once each,
   in process: answer, time, and the memory the decoder allocated at its peak (tracemalloc).
3. The figures replace the `fuzz` section of RELIABILITY.md (created with a short intro when missing).
A crash makes the exit status 1.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cramjam
import pyarrow as pa

from bench.report import machine, write_section
from lokiarrow.errors import LokiError
from lokiarrow.exec.engine import RangeRequest
from lokiarrow.wire.push import MAX_DECOMPRESSED_BYTES, decode_push
from tests.fuzz.generators import T0, TARGETS, Crash, S, Target, _querier
from tests.store.helpers import entries

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "RELIABILITY.md"
HANG_SECONDS = 1.0
MIB = 1 << 20
INTRO = """# Reliability

What lokiarrow promises about hostile or broken input, each promise measured by code that could
fail: what was tried, how many times, and what held. Each section is written by the command it
names; the tests in `tests/fuzz/` run the same checks on fewer inputs in CI.
"""


@dataclass
class Tally:
    name: str
    inputs: int = 0
    crashes: int = 0
    hangs: int = 0
    slowest_s: float = 0.0
    slowest_seed: int = -1
    seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)


def fuzz(name: str, inputs: int, first_seed: int = 0) -> Tally:
    target = TARGETS[name]
    tally = Tally(name)
    started = time.perf_counter()
    for seed in range(first_seed, first_seed + inputs):
        item = target.make(random.Random(seed))
        t0 = time.perf_counter()
        try:
            target.check(item)
        except Crash as exc:
            tally.crashes += 1
            cause = exc.__cause__
            tally.kinds[type(cause).__name__ if cause else "Crash"] += 1
            if tally.crashes <= 3:
                print(f"  crash, seed {seed}: {str(exc)[:400]}", file=sys.stderr)
        took = time.perf_counter() - t0
        if took > HANG_SECONDS:
            took = _again(target, item)
            if took > HANG_SECONDS:
                print(f"  hang, seed {seed}: {took:.2f} s of CPU", file=sys.stderr, flush=True)
        tally.inputs += 1
        tally.hangs += took > HANG_SECONDS
        if took > tally.slowest_s:
            tally.slowest_s, tally.slowest_seed = took, seed
    tally.seconds = time.perf_counter() - started
    return tally


def _again(target: Target, item: object) -> float:
    """The CPU time (this process's threads) of a second run of a slow input: unlike the wall
    time, it does not grow while other processes hold the cores. Crashes were counted by the first."""
    t0 = time.process_time()
    try:
        target.check(item)
    except Crash:
        pass
    return time.process_time() - t0


def _fuzz_part(part: tuple[str, int, int]) -> Tally:
    name, first_seed, inputs = part
    return fuzz(name, inputs, first_seed)


def fuzz_parallel(name: str, inputs: int, jobs: int) -> Tally:
    """`fuzz` with the seeds split over `jobs` processes; seconds are the wall time of the whole."""
    if jobs <= 1:
        return fuzz(name, inputs)
    step = -(-inputs // jobs)
    parts = [(name, first, min(step, inputs - first)) for first in range(0, inputs, step)]
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        done = list(pool.map(_fuzz_part, parts))
    whole = Tally(name)
    for t in done:
        whole.inputs += t.inputs
        whole.crashes += t.crashes
        whole.hangs += t.hangs
        whole.kinds.update(t.kinds)
        if t.slowest_s > whole.slowest_s:
            whole.slowest_s, whole.slowest_seed = t.slowest_s, t.slowest_seed
    whole.seconds = time.perf_counter() - started
    return whole


@dataclass
class Case:
    what: str
    answer: str
    seconds: float
    peak_bytes: int


def _measure(what: str, run: Callable[[], object]) -> Case:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        run()
        answer = "accepted"
    except LokiError as exc:
        answer = f"{exc.status}: {exc.message[:110]}"
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return Case(what, answer, seconds, peak)


def adversarial() -> list[Case]:
    limit = MAX_DECOMPRESSED_BYTES
    members = gzip.compress(b"\0" * MIB, 9) * (4 * limit // MIB)
    deflater = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = b"".join(deflater.compress(b"\0" * 64 * MIB) for _ in range(16)) + deflater.flush()
    snappy = bytes(cramjam.snappy.compress_raw(b"\0" * (limit + MIB)))
    line = "a" * 100_000 + "b"
    querier = _querier()
    querier.store.tenant("t").push(_one_line(line))

    def query(q: str) -> Callable[[], object]:
        return lambda: querier.query_range("t", RangeRequest(q, T0 - 60 * S, T0 + 120 * S, limit=50))

    return [
        _measure(f"gzip bomb: {len(members) // MIB} MiB of members inflating to {4 * limit // MIB} MiB",
                 lambda: decode_push(members, "application/json", "gzip")),
        _measure(f"deflate bomb: one {len(stream) // MIB} MiB stream inflating to 1024 MiB",
                 lambda: decode_push(stream, "application/json", "deflate")),
        _measure(f"snappy bomb: {len(snappy) // MIB} MiB inflating to {(limit + MIB) // MIB} MiB",
                 lambda: decode_push(snappy, "application/x-protobuf", None)),
        _measure('`|~ "(a+)+$"` over a line of 100,000 `a`s and a `b`', query('{app="fuzz"} |~ "(a+)+$"')),
        _measure('`| v=~"(a*)*c"` and `{v=~"(a+)+"}` label matchers', query('{app="fuzz", v=~"(a+)+"} | v=~"(a*)*c"')),
        _measure("a 30,000-way alternation (over the 128 KiB query limit)",
                 query('{app="fuzz"} |~ "' + "|".join(f"w{i}" for i in range(30_000)) + '"')),
        _measure('`[\\p{L}\\p{N}]{1000}` (over RE2\'s program memory budget)', query('{app="fuzz"} |~ "[\\\\p{L}\\\\p{N}]{1000}"')),
    ]


def _one_line(line: str) -> pa.RecordBatch:
    return entries([({"app": "fuzz", "v": "a" * 2000 + "b"}, T0 + 7 * S, line)])


def render(tallies: list[Tally], cases: list[Case], inputs: int, jobs: int = 1) -> str:
    m = machine()
    command = f"python -m bench.fuzz --inputs {inputs}" + (f" --jobs {jobs}" if jobs > 1 else "")
    out = [f"## Fuzzing (`{command}`)", "",
           f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {m['cpu']}, Python {m['python']}. Each target took "
           f"inputs from seeds 0..{inputs - 1} of tests/fuzz/generators.py: near-valid inputs built from "
           "the grammar, then mutated. A crash is an exception outside the target's contract; a hang an input "
           f"over {HANG_SECONDS:g} s that, run again, takes over {HANG_SECONDS:g} s of CPU time (the second run rules "
           "out a process that was only waiting for a core)."
           + (f" Each target's seeds were split over {jobs} processes; inputs/s is per target, all of them together."
              if jobs > 1 else ""), "",
           "| target | contract | inputs | crashes | hangs > 1 s | slowest input | inputs/s |",
           "|---|---|---:|---:|---:|---:|---:|"]
    contracts = {
        "logql_parser": "`parse_expr` raises ParseError/BadRequest only",
        "logql_query": "parse, compile and run on a small store: LokiError only",
        "push_json": "`prepare_push` (v1 and legacy JSON, gzip/deflate): LokiError only",
        "push_protobuf": "`prepare_push` (snappy protobuf, gzip/deflate): LokiError only",
        "push_otlp": "`decode_otlp` (JSON/protobuf, gzip/zstd/lz4): LokiError only",
        "template": "compile + render, Loki and Promtail dialects: template errors only",
        "promtail_config": "agent config loader: ConfigError with a field path only",
        "pipeline_stages": "a valid pipeline never raises on any line",
    }
    for t in tallies:
        out.append(f"| {t.name} | {contracts[t.name]} | {t.inputs:,} | {t.crashes} | {t.hangs} | "
                   f"{t.slowest_s * 1000:.1f} ms (seed {t.slowest_seed}) | {t.inputs / t.seconds:,.0f} |")
    total = sum(t.inputs for t in tallies)
    crashes = sum(t.crashes for t in tallies)
    out += ["", f"{total:,} inputs in all, {crashes} crashes, {sum(t.hangs for t in tallies)} hangs."]
    if crashes:
        out.append("Crash kinds: " + ", ".join(f"{t.name} {dict(t.kinds)}" for t in tallies if t.kinds) + ".")
    out += ["", "Adversarial inputs, once each, in process (peak: memory the decoder allocated, tracemalloc):", "",
            "| input | answer | time | peak allocated |", "|---|---|---:|---:|"]
    for c in cases:
        what, answer = c.what.replace("|", "\\|"), c.answer.replace("|", "\\|")   # pipes split table cells
        out.append(f"| {what} | {answer} | {c.seconds * 1000:.0f} ms | {c.peak_bytes / MIB:.0f} MiB |")
    out += ["", f"The push body limit is {MAX_DECOMPRESSED_BYTES // MIB} MiB decompressed "
            "(`lokiarrow.wire.push.MAX_DECOMPRESSED_BYTES`): gzip and deflate inflate in 1 MiB steps and stop "
            "past it, so a bomb costs the limit at most; a snappy body whose header announces more is refused "
            "before it is inflated. Regexes run on RE2 (Python's `re2`, DuckDB's `regexp_*`): linear time, "
            "no backtracking. tests/fuzz/test_http.py checks the same over HTTP, with the server's RSS."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target (default 10^6)")
    ap.add_argument("--target", choices=sorted(TARGETS), help="one target only (default: all)")
    ap.add_argument("--jobs", type=int, default=1, help="processes per target (default 1)")
    ap.add_argument("--no-report", action="store_true", help="print only, leave RELIABILITY.md alone")
    args = ap.parse_args(argv)
    names = [args.target] if args.target else list(TARGETS)
    tallies = []
    for name in names:
        print(f"{name}: {args.inputs:,} inputs", file=sys.stderr, flush=True)
        tally = fuzz_parallel(name, args.inputs, args.jobs)
        print(f"  {tally.crashes} crashes, {tally.hangs} hangs, slowest {tally.slowest_s * 1000:.1f} ms, "
              f"{tally.seconds:.0f} s", file=sys.stderr, flush=True)
        tallies.append(tally)
    cases = adversarial()
    for c in cases:
        print(f"{c.what}: {c.answer} in {c.seconds * 1000:.0f} ms, peak {c.peak_bytes / MIB:.0f} MiB", file=sys.stderr)
    if not args.no_report:
        write_section(REPORT, "fuzz", render(tallies, cases, args.inputs, args.jobs), INTRO)
    return 1 if any(t.crashes for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
