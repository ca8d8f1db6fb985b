"""Crash safety under a steady push. The long run: `.venv/bin/python -m tests.soak.crash --kills 30`
(it writes the `crash` section of RELIABILITY.md); tests/soak/test_crash.py runs a short one.

A real server with quick flushes and compactions takes pushes of unique lines from a client at a
steady rate while it is killed: with SIGKILL at random moments, and at chosen steps through
failpoints (store/failpoints.py: a flush whose files are written and WAL not yet retired; a
compaction after writing, publishing, swapping, and while collecting), then started again. The
client retries each push until it is acknowledged, as Promtail does. At the end every acknowledged
line must be stored exactly once, and `lokiarrow check` must find the store consistent.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from bench.report import write_section
from tests.conftest import PERMISSIVE, ROOT, Server

BASE_NS = 1_768_860_000_000_000_000
STEPS = (None, "flush:written", "compactor:written", None, "compactor:published", "compactor:swapped",
         "compactor:collecting")
CONFIG = PERMISSIVE + """ingester:
  flush_max_rows: 300
  max_chunk_age: 1s
  flush_check_period: 200ms
compactor:
  compaction_interval: 1s
  retention_delete_delay: 5s
"""


@dataclass
class SoakResult:
    kills: int = 0
    by_step: Counter[str] = field(default_factory=Counter)
    acknowledged: int = 0
    retried_pushes: int = 0
    missing: int = 0
    duplicated: int = 0
    check: str = ""
    consistent: bool = False
    seconds: float = 0.0


class Pusher(threading.Thread):
    """Pushes batches of unique lines, each retried until the server acknowledges it."""

    def __init__(self, url: str, batch: int = 20, pause_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.url, self.batch, self.pause_s = url, batch, pause_s
        self.acked: list[str] = []
        self.retries = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        k = 0
        with httpx.Client(timeout=5) as http:
            while not self.stopping.is_set():
                lines = [f"b{k}-{j}" for j in range(self.batch)]
                body = orjson.dumps({"streams": [{"stream": {"app": "soak", "part": str(k % 3)}, "values": [
                    [str(BASE_NS + k * 1000 + j), line] for j, line in enumerate(lines)]}]})
                while True:   # until acknowledged: a retry after a crash may find it stored already
                    try:
                        answer = http.post(f"{self.url}/loki/api/v1/push", content=body,
                                           headers={"Content-Type": "application/json"})
                        if answer.status_code == 204:
                            break
                    except httpx.HTTPError:
                        pass
                    self.retries += 1
                    time.sleep(0.05)
                self.acked += lines
                k += 1
                time.sleep(self.pause_s)


def run(kills: int, folder: Path, seed: int = 1) -> SoakResult:
    rng = random.Random(seed)
    res = SoakResult()
    began = time.monotonic()
    data = folder / "data"
    data.mkdir(parents=True)
    server = Server(data, CONFIG, []).start()
    pusher = Pusher(server.url)
    pusher.start()
    try:
        for i in range(kills):
            step = STEPS[i % len(STEPS)]
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            if step is not None:   # a process that dies at that step
                os.environ["LOKIARROW_FAILPOINT"] = step
                try:
                    server.start()
                    assert server.proc is not None
                    server.proc.wait(30)     # it reaches the step and exits
                except (RuntimeError, subprocess.TimeoutExpired):
                    server.kill()            # died while starting, or did not reach it: killed here
                finally:
                    del os.environ["LOKIARROW_FAILPOINT"]
            res.by_step[step or "SIGKILL"] += 1
            res.kills += 1
            server.start()
        time.sleep(1.0)
        pusher.stopping.set()
        pusher.join(60)
        with httpx.Client(base_url=server.url, timeout=120) as http:
            answer = http.get("/loki/api/v1/query_range", params={
                "query": '{app="soak"}', "start": BASE_NS - 10**9, "end": BASE_NS + 10**13, "limit": 100000})
            answer.raise_for_status()
            stored = Counter(v[1] for s in answer.json()["data"]["result"] for v in s["values"])
        server.stop()
    finally:
        pusher.stopping.set()
        server.kill()
    res.acknowledged = len(pusher.acked)
    res.retried_pushes = pusher.retries
    res.missing = sum(1 for line in pusher.acked if stored[line] == 0)
    res.duplicated = sum(1 for n in stored.values() if n > 1)
    done = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "check", f"-common.path-prefix={data}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    res.check, res.consistent = done.stdout.strip(), done.returncode == 0
    res.seconds = time.monotonic() - began
    return res


def markdown(r: SoakResult, when: str) -> str:
    steps = ", ".join(f"{step} {n}" for step, n in sorted(r.by_step.items()))
    return "\n".join([
        "## Crash safety",
        "",
        f"`python -m tests.soak.crash --kills {r.kills}` ({when}, {r.seconds:.0f} s): a server flushing every 300 "
        "lines and compacting every second (replaced files deleted after 5 s), killed while one client pushed unique lines and retried each "
        "push until acknowledged.",
        "",
        "| tried | held |",
        "|---|---|",
        f"| {r.kills} kills ({steps}) | restarted each time |",
        f"| {r.acknowledged:,} lines acknowledged ({r.retried_pushes:,} pushes retried) | "
        f"{r.missing} missing, {r.duplicated} stored twice |",
        f"| `lokiarrow check` at the end | {'consistent' if r.consistent else '**not consistent**'} |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests.soak.crash", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "RELIABILITY.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lokiarrow-soak-") as folder:
        result = run(args.kills, Path(folder), args.seed)
    text = markdown(result, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(text)
    print(result.check)
    write_section(args.output, "crash", text, "# Reliability\n")
    return 0 if result.consistent and not result.missing and not result.duplicated else 1


if __name__ == "__main__":
    raise SystemExit(main())
