"""The scale-out benchmark end to end on a small set (real writers, readers and NGINX): both
ingest runs report a rate, every split answer equals the lone reader's, and the report is its
section."""

from __future__ import annotations

from pathlib import Path

from bench import scale


def test_small_run_answers_the_same_and_writes_its_section(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n")
    assert scale.main(["--lines", "20000", "--runs", "1", "--workdir", str(tmp_path), "--output", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmarks\n") and text.count("<!-- section scale -->") == 1
    assert "| two writers |" in text
    assert "**no**" not in text and text.count("| yes |") == 3   # three queries, every way the same answer
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("lokiarrow-bench-scale-")]
