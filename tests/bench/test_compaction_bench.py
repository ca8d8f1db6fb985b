"""The compaction benchmark end to end on a small set (real server, real `lokiarrow compact`): the
index ends in one file a day, every query answers the same after, and the report is its section."""

from __future__ import annotations

from pathlib import Path

from bench import compaction


def test_small_run_answers_the_same_and_writes_its_section(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n")
    assert compaction.main(["--lines", "20000", "--runs", "1", "--workdir", str(tmp_path), "--output", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmarks\n") and text.count("<!-- section compaction -->") == 1
    after = next(line for line in text.splitlines() if line.startswith("| after |"))
    assert after.split("|")[3].strip() == "1"                     # one index file for the day
    assert "**no**" not in text and text.count("| yes |") == 9   # nine queries, each the same after
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("lokiarrow-bench-compact-")]
