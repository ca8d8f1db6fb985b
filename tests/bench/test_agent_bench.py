"""The agent benchmark end to end on a small set (real server, real agent subprocess): both
contenders deliver every line once, and its report replaces its own section of BENCHMARKS.md only."""

from __future__ import annotations

from pathlib import Path

from bench import agent
from bench.report import keep_sections, replace_section


def test_small_run_counts_every_line_back(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nthe serve figures\n")
    assert agent.main(["--lines", "3000", "--files", "3", "--workdir", str(tmp_path), "--output", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nthe serve figures\n")
    assert "| lines stored, counted back | 3,000 of 3,000 | 3,000 of 3,000 |" in text
    assert text.count("<!-- section agent -->") == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("lokiarrow-bench-agent-")]   # cleaned up


def test_pods_are_laid_out_as_the_kubelet_does(tmp_path: Path) -> None:
    paths, size = agent.write_pods(tmp_path, 10, 2, 1, 1_700_000_000_000_000_000)
    assert [p.relative_to(tmp_path).parts[0::2] for p in paths] == [("pods", "app"), ("pods", "app")]
    lines = paths[0].read_text().splitlines()
    assert len(lines) == 5 and size == sum(p.stat().st_size for p in paths)
    stamp, stream, flags, content = lines[1].split(" ", 3)
    assert (stamp, stream, flags) == ("2023-11-14T22:13:20.000002000Z", "stdout", "F")
    assert agent._rfc3339_ns(stamp) == 1_700_000_000_000_002_000 and '"n":2' in content


def test_sections_are_replaced_and_kept() -> None:
    first = replace_section("# B\n\nserve\n", "agent", "## Agent\n\nv1")
    assert first == "# B\n\nserve\n\n<!-- section agent -->\n## Agent\n\nv1\n<!-- /section agent -->\n"
    second = replace_section(first, "agent", "## Agent\n\nv2")
    assert second.count("## Agent") == 1 and "v2" in second and "v1" not in second
    rewritten = keep_sections(second, "# B\n\nnew serve figures\n")
    assert rewritten.startswith("# B\n\nnew serve figures\n") and rewritten.endswith("v2\n<!-- /section agent -->\n")
    assert keep_sections(second, second) == second
