"""A crash between a flush's files and the retirement of its WAL segments: the restart must not
store the entries twice (the flush committed: its segments are retired, not replayed), and a flush
that died half-way must not leave half its index behind (its entries come back from the WAL once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lokiarrow.config import Ingester
from lokiarrow.store import chunks
from lokiarrow.store.check import check_store
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from lokiarrow.store.wal import WAL
from tests.store.helpers import entries

HOUR = 3600 * 10**9


def _rows(folder: Path) -> int:
    [report] = check_store(Root(str(folder)))
    assert report.problems == []
    return report.rows


def _restarted(folder: Path) -> int:
    """A new process on the folder: it replays what it must, flushes, and counts the stored rows."""
    again = TenantStore(Root(str(folder)), "t", Ingester())
    again.flush()
    return _rows(folder)


def test_a_committed_flush_is_not_replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    store.push(entries([({"app": "a"}, i, f"line {i}") for i in range(100)]))
    monkeypatch.setattr(WAL, "retire", lambda self, upto: None)     # the process dies before retiring
    store.flush()
    monkeypatch.undo()
    assert len(list((tmp_path / "t" / "wal").glob("*.arrow"))) == 1
    assert _restarted(tmp_path) == 100                               # not 200
    assert not list((tmp_path / "t" / "wal").glob("*.arrow"))


def test_a_flush_that_died_half_way_leaves_no_index_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    store.push(entries([({"app": "a"}, h * HOUR + i, f"line {h} {i}") for h in range(3) for i in range(10)]))
    written = []
    real = chunks.write_index

    def dies_after_the_first(*args: object, **kwargs: object) -> None:
        if written:
            raise OSError("the process died")
        written.append(args[1])
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(chunks, "write_index", dies_after_the_first)
    with pytest.raises(OSError):
        store.flush()
    monkeypatch.undo()
    assert len(written) == 1 and (tmp_path / written[0]).exists()    # one hour's index of three
    assert _restarted(tmp_path) == 30                                # each entry once
    assert not (tmp_path / written[0]).exists()


def test_a_new_wal_does_not_take_an_old_flush_for_its_own(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    store.push(entries([({"app": "a"}, i, f"first {i}") for i in range(10)]))
    store.close()                                     # flushed, every segment retired: numbering restarts
    again = TenantStore(Root(str(tmp_path)), "t", Ingester())
    again.push(entries([({"app": "a"}, 100 + i, f"second {i}") for i in range(10)]))   # segment 1 again
    assert _restarted(tmp_path) == 20                 # the old flush's "upto 1" did not retire it
