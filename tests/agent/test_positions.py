"""Promtail's positions file: its exact format, atomic writes, reading back, cleanup."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from lokiarrow.agent.positions import (
    Positions,
    PositionsConfig,
    read_file,
    render,
    write_file,
)
from lokiarrow.agent.settings import ConfigError, Section


def test_config_defaults_and_fields() -> None:
    assert PositionsConfig.from_section(Section(None, "positions")) == PositionsConfig(
        "/var/log/positions.yaml", 10_000_000_000, False
    )
    config = PositionsConfig.from_section(
        Section(
            {"filename": "/run/p.yaml", "sync_period": "500ms", "ignore_invalid_yaml": True},
            "positions",
        )
    )
    assert config == PositionsConfig("/run/p.yaml", 500_000_000, True)
    with pytest.raises(ConfigError, match=r"^positions\.sync_perid: unknown field$"):
        PositionsConfig.from_section(Section({"sync_perid": "1s"}, "positions"))
    with pytest.raises(ConfigError, match=r"^positions\.sync_period: invalid duration"):
        PositionsConfig.from_section(Section({"sync_period": "soon"}, "positions"))


def test_render_is_promtails_yaml() -> None:
    # Go yaml.v3 marshalling of File{Positions: map[string]string}: sorted keys, 4-space indent,
    # offsets quoted because they are strings that look like numbers.
    text = render({"/var/log/b.log": "7", "/var/log/a.log": "12345"})
    assert text == 'positions:\n    /var/log/a.log: "12345"\n    /var/log/b.log: "7"\n'
    assert render({}) == "positions: {}\n"
    odd = {"/var/log/with space: x.log": "1", "cursor-abc": "s=1;i=2", "/tmp/ü.log": "3"}
    assert yaml.safe_load(render(odd)) == {"positions": odd}


def test_write_is_atomic_and_read_back(tmp_path: Path) -> None:
    target = tmp_path / "positions.yaml"
    write_file(str(target), {"/var/log/a.log": "10"})
    inode = target.stat().st_ino
    write_file(str(target), {"/var/log/a.log": "20"})
    assert target.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert not (tmp_path / "positions.yaml-new").exists()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    config = PositionsConfig(filename=str(target))
    assert read_file(config) == {"/var/log/a.log": "20"}


def test_reads_a_file_promtail_wrote(tmp_path: Path) -> None:
    target = tmp_path / "positions.yaml"
    target.write_text('positions:\n  /var/log/x.log: "42"\n  journal-cursor: "s=abc"\n')
    positions = Positions(PositionsConfig(filename=str(target)))
    assert positions.get("/var/log/x.log") == 42
    assert positions.get("/var/log/unknown.log") == 0
    assert positions.get_string("journal-cursor") == "s=abc"


@pytest.mark.parametrize("text", ["", "positions:\n"])
def test_empty_file_is_no_positions(tmp_path: Path, text: str) -> None:
    target = tmp_path / "positions.yaml"
    target.write_text(text)
    assert read_file(PositionsConfig(filename=str(target))) == {}


def test_missing_file_is_no_positions(tmp_path: Path) -> None:
    assert read_file(PositionsConfig(filename=str(tmp_path / "none.yaml"))) == {}


@pytest.mark.parametrize("text", ["positions: [1, 2\n", "positionz:\n  /a: '1'\n", "- 1\n"])
def test_invalid_yaml_fails_or_is_ignored(tmp_path: Path, text: str) -> None:
    target = tmp_path / "positions.yaml"
    target.write_text(text)
    with pytest.raises(ValueError, match=r"^invalid yaml positions file \[.*positions\.yaml\]: "):
        read_file(PositionsConfig(filename=str(target)))
    assert read_file(PositionsConfig(filename=str(target), ignore_invalid_yaml=True)) == {}


def test_sync_saves_and_cleans_up_gone_files(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_text("x\n")
    target = tmp_path / "positions.yaml"
    positions = Positions(PositionsConfig(filename=str(target), sync_period_ns=50_000_000))
    positions.put(str(log_file), 2)
    positions.put(str(tmp_path / "gone.log"), 9)
    positions.put_string("cursor-kafka", "17")
    positions.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if target.exists() and str(tmp_path / "gone.log") not in read_file(positions.config):
            break
        time.sleep(0.02)
    positions.stop()
    saved = read_file(positions.config)
    assert saved == {str(log_file): "2", "cursor-kafka": "17"}
    os.unlink(log_file)
    positions.cleanup()
    assert positions.snapshot() == {"cursor-kafka": "17"}
