"""Entries stored twice (the same entry pushed again after its first copy was flushed, as a
client's retry can do): a metric query over them answers, and its pipeline keeps one of each, as
Loki's does."""

from __future__ import annotations

import json
from pathlib import Path

from lokiarrow.config import Ingester, Limits
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.store.store import Store
from tests.store.helpers import entries

S = 10**9
UNWRAP = 'quantile_over_time(0.5, {app="a"} | json | unwrap latency_ms | __error__="" [5m])'


def _answer(folder: Path, copies: int) -> list[object]:
    store = Store(str(folder), Ingester(wal_enabled=False))
    tenant = store.tenant("fake")
    rows = [({"app": "a"}, S * i, json.dumps({"latency_ms": i * i})) for i in range(1, 50)]
    for _ in range(copies):
        tenant.push(entries(rows))
        tenant.flush()
    result = Querier(store, Limits()).query_range("fake", RangeRequest(UNWRAP, 0, 60 * S, 100, True, 60 * S))
    return result["result"]


def test_an_unwrapped_query_over_entries_stored_twice(tmp_path: Path) -> None:
    once = _answer(tmp_path / "once", 1)
    twice = _answer(tmp_path / "twice", 2)
    assert once and twice == once     # was a 500: the values kept the repeated entries the pipeline dropped
