"""The tailer on real files: growth, partial lines, rotation, truncation, deletion, new files,
restarts from positions and back-pressure."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lokiarrow.agent.positions import Positions, PositionsConfig, read_file
from lokiarrow.agent.tailer import Batch, Tailer, Target


@pytest.fixture
def positions(tmp_path: Path) -> Positions:
    return Positions(PositionsConfig(filename=str(tmp_path / "positions.yaml")))


def drain(tailer: Tailer, ack: bool = True) -> list[Batch]:
    out = []
    while True:
        try:
            batch = tailer.batches.get_nowait()
        except queue.Empty:
            return out
        if ack:
            batch.ack()
        out.append(batch)


def lines_of(batches: list[Batch]) -> list[str]:
    return [line for b in batches for line in b.lines]


def collect_until(tailer: Tailer, want: int, timeout: float = 20.0) -> list[str]:
    """Consume (and acknowledge) from a running tailer until `want` lines came."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        try:
            batch = tailer.batches.get(timeout=0.1)
        except queue.Empty:
            continue
        got.extend(batch.lines)
        batch.ack()
    return got


@pytest.fixture
def tailers() -> Iterator[list[Tailer]]:
    made: list[Tailer] = []
    yield made
    for t in made:
        t.stop()


def test_growth_and_partial_lines(tmp_path: Path, positions: Positions) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntwo\npar")
    tailer = Tailer(positions, [Target(str(log), {"job": "x"})])
    tailer.poll()
    batches = drain(tailer)
    assert lines_of(batches) == ["one", "two"]
    assert batches[0].labels == {"job": "x", "filename": str(log)}
    assert positions.get(str(log)) == 8  # the partial line is not shipped yet
    with log.open("ab") as f:
        f.write(b"tial \xc3\xa9\nthree\n")
    tailer.poll()
    assert lines_of(drain(tailer)) == ["partial é", "three"]
    assert positions.get(str(log)) == log.stat().st_size
    tailer.poll()
    assert drain(tailer) == []
    tailer.stop()


def test_position_only_after_acks_in_order(tmp_path: Path, positions: Positions) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a\n" * 10)
    tailer = Tailer(positions, [Target(str(log))], block_bytes=4)
    tailer.poll()
    batches = drain(tailer, ack=False)
    assert lines_of(batches) == ["a"] * 10
    assert positions.get(str(log)) == 0
    batches[1].ack()
    assert positions.get(str(log)) == 0  # the first batch is still unshipped
    batches[0].ack()
    assert positions.get(str(log)) == batches[1].end == 8
    for b in batches:
        b.ack()
    assert positions.get(str(log)) == 20
    [stats] = tailer.stats()
    assert (stats.path, stats.position, stats.read, stats.size, stats.lag) == (str(log), 20, 20, 20, 0)
    tailer.stop()


def test_starts_at_saved_position_or_zero(tmp_path: Path, positions: Positions) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"old\nnew\n")
    short = tmp_path / "short.log"
    short.write_bytes(b"s\n")
    positions.put(str(log), 4)
    positions.put(str(short), 100)  # past the end: the file was replaced while we were down
    tailer = Tailer(positions, [Target(str(log)), Target(str(short))])
    tailer.poll()
    assert sorted(lines_of(drain(tailer))) == ["new", "s"]
    tailer.stop()


def test_new_files_matching_glob(tmp_path: Path, positions: Positions) -> None:
    (tmp_path / "a.log").write_text("a1\n")
    tailer = Tailer(positions, [Target(str(tmp_path / "*.log"), {"job": "g"})])
    tailer.poll()
    assert lines_of(drain(tailer)) == ["a1"]
    (tmp_path / "b.log").write_text("b1\nb2\n")
    (tmp_path / "c.txt").write_text("ignored\n")
    tailer.poll()
    batches = drain(tailer)
    assert lines_of(batches) == ["b1", "b2"]
    assert batches[0].labels["filename"] == str(tmp_path / "b.log")
    tailer.stop()


def test_copytruncate(tmp_path: Path, positions: Positions) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"before {i}\n" for i in range(100)))
    tailer = Tailer(positions, [Target(str(log))])
    tailer.poll()
    assert len(lines_of(drain(tailer))) == 100
    shutil.copy(log, tmp_path / "app.log.1")
    with log.open("r+") as f:
        f.truncate(0)
    with log.open("a") as f:
        f.write("after 0\nafter 1\n")
    tailer.poll()
    assert lines_of(drain(tailer)) == ["after 0", "after 1"]
    assert positions.get(str(log)) == log.stat().st_size
    tailer.stop()


def test_deletion_reads_to_end_and_forgets(tmp_path: Path, positions: Positions) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\n")
    tailer = Tailer(positions, [Target(str(log))], rotation_grace=0.0)
    tailer.poll()
    assert lines_of(drain(tailer)) == ["one"]
    with log.open("a") as f:
        f.write("two\nlast without newline")
    os.unlink(log)
    tailer.poll()
    assert lines_of(drain(tailer)) == ["two", "last without newline"]
    assert positions.snapshot() == {}
    assert tailer.stats() == []
    log.write_text("reborn\n")  # a new file at the same path starts at 0
    tailer.poll()
    assert lines_of(drain(tailer)) == ["reborn"]
    tailer.stop()


def test_rename_and_create_rotation_while_writing(
    tmp_path: Path, positions: Positions, tailers: list[Tailer]
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    tailer = Tailer(positions, [Target(str(log))], poll_interval=0.02, rotation_grace=0.3)
    tailers.append(tailer)
    tailer.start()
    total = 20_000

    def write() -> None:
        f = log.open("a")
        for i in range(total):
            f.write(f"line {i:06d}\n")
            if i % 5000 == 4999:  # logrotate's `create`: rename, then reopen a new file
                f.flush()
                os.rename(log, tmp_path / f"app.log.{i}")
                f.write("straggler written to the old file after the rename\n")
                f.close()
                f = log.open("a")
            if i % 500 == 0:
                f.flush()
                time.sleep(0.005)
        f.close()

    writer = threading.Thread(target=write)
    writer.start()
    got = collect_until(tailer, total + 4)
    writer.join()
    numbered = [line for line in got if line.startswith("line ")]
    assert numbered == [f"line {i:06d}" for i in range(total)]
    assert got.count("straggler written to the old file after the rename") == 4


def test_restart_from_positions_loses_nothing(tmp_path: Path) -> None:
    config = PositionsConfig(filename=str(tmp_path / "positions.yaml"))
    log = tmp_path / "app.log"
    total = 50_000
    log.write_text("".join(f"{i}\n" for i in range(total)))

    first = Positions(config)
    tailer = Tailer(first, [Target(str(log))], block_bytes=4096, max_batches=8)
    tailer.poll()
    batches = drain(tailer, ack=False)
    shipped = lines_of(batches[:5])
    for b in batches[:5]:
        b.ack()
    first.save()  # a sync period passed
    for b in batches[5:7]:
        b.ack()  # shipped, but the crash comes before the next sync
    tailer.stop()  # the process dies: no final save of the positions
    assert read_file(config) == {str(log): str(batches[4].end)}

    second = Positions(config)
    again = Tailer(second, [Target(str(log))], block_bytes=1 << 20, max_batches=4)
    rest: list[str] = []
    for _ in range(10):
        again.poll()
        rest.extend(lines_of(drain(again)))
    again.stop()
    assert shipped + rest == [str(i) for i in range(total)]  # every line, none twice


def test_back_pressure_bounds_reading(tmp_path: Path, positions: Positions) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"row {i}\n" for i in range(100_000)))
    tailer = Tailer(positions, [Target(str(log))], block_bytes=8192, max_batches=3)
    tailer.poll()
    tailer.poll()
    assert tailer.batches.qsize() == 3
    [stats] = tailer.stats()
    assert stats.read <= 3 * 8192 and stats.lag == log.stat().st_size
    got: list[str] = []
    for _ in range(1000):
        got.extend(lines_of(drain(tailer)))
        if len(got) == 100_000:
            break
        tailer.poll()
    assert got == [f"row {i}" for i in range(100_000)]
    assert tailer.stats()[0].lag == 0
    tailer.stop()


def test_reading_goes_in_blocks(tmp_path: Path, positions: Positions) -> None:
    """One read per block of the file, not per line: 16 MB come in about size / block batches,
    each full of lines."""
    log = tmp_path / "fast.log"
    line = '2024-01-01T00:00:00.000000000Z stdout F {"level":"info","msg":"hello world"}\n'
    log.write_text(line * 200_000)
    tailer = Tailer(positions, [Target(str(log))], max_batches=1000)
    tailer.poll()
    batches = list(drain(tailer))
    tailer.stop()
    assert sum(len(b.lines) for b in batches) == 200_000
    size, block = log.stat().st_size, tailer.block_bytes
    assert len(batches) <= -(-size // block) + 1
    assert all(len(b.lines) >= block // len(line) - 1 for b in batches[:-1])


def test_dropped_target_keeps_its_position(tmp_path: Path, positions: Positions) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\n")
    tailer = Tailer(positions, [Target(str(log))], rotation_grace=0.0)
    tailer.poll()
    assert lines_of(drain(tailer)) == ["one"]
    tailer.set_targets([])
    tailer.poll()
    assert tailer.stats() == []
    assert positions.get(str(log)) == 4
    with log.open("a") as f:
        f.write("two\n")
    tailer.set_targets([Target(str(log))])
    tailer.poll()
    assert lines_of(drain(tailer)) == ["two"]
    tailer.stop()


SHIPPER = """
import os, sys
from lokiarrow.agent.positions import Positions, PositionsConfig
from lokiarrow.agent.tailer import Tailer, Target

positions = Positions(PositionsConfig(filename=sys.argv[1], sync_period_ns=20_000_000))
positions.start()
tailer = Tailer(positions, [Target(sys.argv[2])], poll_interval=0.01, block_bytes=4096)
tailer.start()
with open(sys.argv[3], "a") as out:
    while True:
        batch = tailer.batches.get()
        out.write("".join(line + "\\n" for line in batch.lines))
        out.flush()
        os.fsync(out.fileno())  # shipped: durable before it is acknowledged
        batch.ack()
"""


def test_sigkill_mid_stream_loses_nothing(tmp_path: Path) -> None:
    log, shipped, saved = tmp_path / "app.log", tmp_path / "shipped.txt", tmp_path / "pos.yaml"
    total = 200_000
    log.write_text("".join(f"line {i}\n" for i in range(total // 2)))
    argv = [sys.executable, "-c", SHIPPER, str(saved), str(log), str(shipped)]
    first = subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[2])
    try:
        with log.open("a") as f:
            for i in range(total // 2, total):
                f.write(f"line {i}\n")
                if i % 10_000 == 0:
                    f.flush()
                    time.sleep(0.01)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if shipped.exists() and shipped.stat().st_size > 200_000 and saved.exists():
                break
            time.sleep(0.01)
    finally:
        first.kill()  # SIGKILL: no final positions save, batches in flight lost
        first.wait()
    text = shipped.read_text()
    shipped.write_text(text[: text.rfind("\n") + 1])  # a write cut by the kill was never acked
    before = shipped.read_text().splitlines()
    assert 0 < len(before) < total  # killed mid-stream
    second = subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if f"line {total - 1}\n" in shipped.read_text()[-40:]:
                break
            time.sleep(0.05)
    finally:
        second.kill()
        second.wait()
    after = shipped.read_text().splitlines()
    expected = [f"line {i}" for i in range(total)]
    assert set(after) == set(expected)  # nothing lost
    resumed = after[len(before) :]
    assert resumed[-1] == expected[-1]
    start = expected.index(resumed[0])
    assert resumed == expected[start:]  # the restart re-reads only a tail, in order, once
    assert len(after) - total < total // 2  # re-read at most the unsynced tail
