from __future__ import annotations

from pathlib import Path

import pytest

from lokiarrow.config import Ingester
from lokiarrow.store import tenant as tenant_module
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.store.helpers import entries

A = {"app": "a"}


def test_a_failed_flush_keeps_every_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    store.push(entries([(A, i, f"l{i}") for i in range(10)]))

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(tenant_module, "write_chunks", broken)
    with pytest.raises(OSError):
        store.flush()
    assert store.head.rows == 10 and not store.flushing
    monkeypatch.undo()
    store.push(entries([(A, 99, "after")]))
    assert store.flush() == 11
    # nothing left in memory or the WAL, and a restart finds all of it in the index
    again = TenantStore(Root(str(tmp_path)), "t", Ingester())
    assert again.head.rows == 0
    assert int(again.index.rows.column("rows").to_numpy().sum()) == 11
