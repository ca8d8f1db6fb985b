from __future__ import annotations

import os
from pathlib import Path

from lokiarrow.store.wal import WAL
from tests.store.helpers import entries

A = {"app": "a"}


def test_replay_returns_every_written_batch_in_order(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    for i in range(3):
        wal.sync(wal.write(entries([(A, i, f"line {i}")])))
    wal.rotate()
    wal.sync(wal.write(entries([(A, 9, "after rotate")])))
    # a new WAL object over the same folder sees what a restarted process would
    lines = [b.column("line").to_pylist() for b in WAL(str(tmp_path)).replay()]
    assert lines == [["line 0"], ["line 1"], ["line 2"], ["after rotate"]]


def test_retire_removes_only_covered_segments(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    wal.sync(wal.write(entries([(A, 1, "old")])))
    upto = wal.rotate()
    wal.sync(wal.write(entries([(A, 2, "new")])))
    wal.retire(upto)
    assert [b.column("line").to_pylist() for b in WAL(str(tmp_path)).replay()] == [["new"]]


def test_torn_tail_keeps_whole_batches(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    wal.sync(wal.write(entries([(A, 1, "kept")])))
    wal.sync(wal.write(entries([(A, 2, "torn " * 100)])))
    segment = tmp_path / sorted(os.listdir(tmp_path))[0]
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 200])  # the process died mid-write of the second batch
    assert [b.column("line").to_pylist() for b in WAL(str(tmp_path)).replay()] == [["kept"]]


def test_unsynced_segment_of_other_number_is_a_noop(tmp_path: Path) -> None:
    wal = WAL(str(tmp_path))
    ticket = wal.write(entries([(A, 1, "x")]))
    wal.rotate()
    wal.sync(ticket)  # rotation already made it durable; must not touch a closed file
    assert [b.num_rows for b in WAL(str(tmp_path)).replay()] == [1]
