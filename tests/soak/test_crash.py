"""The crash soak (tests/soak/crash.py), short: seven kills, one at each failpoint and two at
random moments, while a client pushes; every acknowledged line is stored once, the store checks
consistent."""

from __future__ import annotations

from pathlib import Path

from tests.soak.crash import STEPS, run


def test_every_acknowledged_line_survives_the_kills_once(tmp_path: Path) -> None:
    result = run(len(STEPS), tmp_path)
    assert result.kills == len(STEPS) and result.acknowledged > 0
    assert (result.missing, result.duplicated) == (0, 0)
    assert result.consistent, result.check
