"""bench/fuzz.py's counting: seeds split over processes are the same inputs as one process's, and
the report says how the run was made."""

from __future__ import annotations

from bench.fuzz import fuzz, fuzz_parallel, render


def test_seeds_split_over_processes_count_as_one_run() -> None:
    one = fuzz("template", 60)
    split = fuzz_parallel("template", 60, 2)
    assert (split.inputs, split.crashes, split.hangs) == (one.inputs, one.crashes, one.hangs) == (60, 0, 0)
    assert split.slowest_seed in range(60)
    text = render([split], [], 60, 2)
    assert "`python -m bench.fuzz --inputs 60 --jobs 2`" in text and "split over 2 processes" in text
    assert "| template | " in text and "| 60 | 0 | 0 |" in text
