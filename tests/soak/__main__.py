"""`python -m tests.soak [--quick]`: every long reliability run, one after another, each writing its
section of RELIABILITY.md: crash kills (tests/soak/crash.py), overload (tests/soak/overload.py),
generator fuzzing at 10^6 inputs per target (bench/fuzz.py) and coverage-guided fuzzing
(bench/fuzz_atheris.py). `--quick` runs each at the size CI's tests use, to check the runs work.
Exit status 1 when any run fails; each run's own output says what held.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

SCRATCH = os.path.join(tempfile.gettempdir(), "lokiarrow-soak-quick.md")   # where quick runs report
RUNS = {   # name: (full run, quick run)
    "crash": (["tests.soak.crash", "--kills", "30"], ["tests.soak.crash", "--kills", "3", "--output", SCRATCH]),
    "overload": (["tests.soak.overload", "--minutes", "6"], ["tests.soak.overload", "--minutes", "0.5", "--output", SCRATCH]),
    "fuzz": (["bench.fuzz", "--inputs", "1000000", "--jobs", str(min(os.cpu_count() or 1, 4))],
             ["bench.fuzz", "--inputs", "200", "--no-report"]),
    "atheris": (["bench.fuzz_atheris"], ["bench.fuzz_atheris", "--runs", "200", "--no-report"]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small runs that leave RELIABILITY.md alone")
    ap.add_argument("--only", choices=sorted(RUNS), action="append", help="this run only (repeatable)")
    args = ap.parse_args(argv)
    failed = []
    for name in args.only or list(RUNS):
        command = [sys.executable, "-m", *RUNS[name][1 if args.quick else 0]]
        print(f"== {name}: {' '.join(command[2:])}", flush=True)
        began = time.monotonic()
        code = subprocess.call(command)
        print(f"== {name}: exit {code} after {time.monotonic() - began:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    print("all runs held" if not failed else f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
