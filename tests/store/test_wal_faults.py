"""The WAL when the disk fails (full): a push whose batch is not on disk fails (never acknowledged),
the segment that failed is left for a new one, and a restart replays every acknowledged batch,
whatever the failed write left behind (a torn batch ends only its segment)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lokiarrow.config import Ingester
from lokiarrow.errors import LokiError
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from lokiarrow.store.wal import WAL
from tests.store.helpers import entries


def _push(store: TenantStore, n: int) -> None:
    store.push(entries([({"app": "a"}, n, f"line {n}")]))


def _replayed(folder: Path) -> list[str]:
    wal = WAL(str(folder / "t" / "wal"))
    return sorted(line for batch in wal.replay() for line in batch.column("line").to_pylist())


class TornWriter:
    """A stream writer on a full disk: half a batch reaches the file, then ENOSPC."""

    def __init__(self, file: object) -> None:
        self.file = file

    def write_batch(self, batch: object) -> None:
        self.file.write(b"\xff\xff\xff\xff\x10\x00")   # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_is_not_acknowledged_and_later_pushes_survive(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    _push(store, 1)
    assert store.wal is not None
    healthy = store.wal._writer
    store.wal._writer = TornWriter(store.wal._file)  # type: ignore[assignment]
    with pytest.raises(LokiError, match="cannot write the WAL: .*No space left on device"):
        _push(store, 2)
    del healthy
    _push(store, 3)                               # space again: a new segment
    _push(store, 4)
    assert len(list((tmp_path / "t" / "wal").glob("*.arrow"))) == 2
    assert _replayed(tmp_path) == ["line 1", "line 3", "line 4"]     # the torn batch ends its segment only


def test_a_failed_fsync_fails_every_push_it_covered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    _push(store, 1)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(LokiError, match="cannot write the WAL"):
        _push(store, 2)
    monkeypatch.undo()
    _push(store, 3)
    assert "line 1" in _replayed(tmp_path) and "line 3" in _replayed(tmp_path)
    assert len(list((tmp_path / "t" / "wal").glob("*.arrow"))) == 2   # the failed segment was left
