"""The compactor on a real store: many small flushes merged per hour, the day's index in one
file, every query answering the same before, after, and after a restart; the files it replaced
removed only once the grace has passed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from lokiarrow.config import Ingester, Limits
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.store.compactor import compact_tenant
from lokiarrow.store.index import live_index_files
from lokiarrow.store.store import Store
from tests.store.helpers import entries

HOUR = 3600 * 10**9
T0 = 1_768_780_800 * 10**9   # 2026-01-19T00:00:00Z
LIMITS = Limits(reject_old_samples=False, max_query_length=0, max_entries_limit_per_query=100_000)
QUERIES = [
    '{app=~".+"}', '{app="web"} |= "error"', '{app="db"} | json | level="warn"',
    'sum by (app) (count_over_time({app=~".+"}[10m]))', 'sum(rate({app="web"} |= "error" [5m]))',
    'sum by (level) (count_over_time({app=~".+"} | json [1h]))',
    'max_over_time({app="db"} | json | unwrap n [30m]) by (app)',
]


def _fill(store: Store, flushes: int = 24) -> int:
    """Three streams over two hours, one flush per batch (as a slow trickle leaves them)."""
    tenant = store.tenant("t")
    total = 0
    for f in range(flushes):
        rows = []
        for i in range(50):
            ts = T0 + (f * 50 + i) * (2 * HOUR // (flushes * 50))
            app = ("web", "db", "cache")[i % 3]
            level = ("info", "warn", "error")[(i // 3) % 3]
            rows.append(({"app": app}, ts, json.dumps({"level": level, "n": i, "msg": f"{level} in {app}"})))
        meta = [{"trace_id": f"t{i}"} if i % 7 == 0 else None for i in range(50)]
        tenant.push(entries(rows, meta))
        tenant.flush()
        total += len(rows)
    return total


def _answers(store: Store) -> list[Any]:
    querier = Querier(store, LIMITS)
    out: list[Any] = []
    for q in QUERIES:
        for backward in (True, False):
            answer = querier.query_range("t", RangeRequest(q, T0, T0 + 3 * HOUR, 5000, backward, 60 * 10**9))
            out.append(answer["result"])
    out.append(querier.query_instant("t", 'sum by (app) (count_over_time({app=~".+"}[3h]))', T0 + 3 * HOUR)["result"])
    out.append(querier.labels("t", T0, T0 + 3 * HOUR))
    out.append(querier.series("t", ['{app=~".+"}'], T0, T0 + 3 * HOUR))
    return [_plain(a) for a in out]


def _plain(value: Any) -> Any:
    """Answers as plain lists (a streams answer is a list subclass), streams in a stable order."""
    if isinstance(value, list):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if items and isinstance(items[0], dict) else items
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _files(root: Path, kind: str) -> list[Path]:
    return sorted((root / "t" / kind).glob("day=*/*.parquet"))


def test_compaction_merges_per_hour_and_answers_the_same(tmp_path: Path) -> None:
    store = Store(str(tmp_path), Ingester())
    total = _fill(store)
    before = _answers(store)
    chunks_before = _files(tmp_path, "chunks")
    assert len(chunks_before) >= 24 and len(_files(tmp_path, "index")) == len(chunks_before)

    report = compact_tenant(store.tenant("t"), grace_ns=0)
    assert report.merged_files == len(chunks_before) and report.written_files == 2   # one file per hour
    assert _answers(store) == before                                                # in memory, at once
    live = live_index_files(store.root, "t")
    assert len(live) == 1                                                           # the day's index in one file
    [rows] = live.values()
    assert sorted(set(rows.column("chunk").to_pylist())) == sorted(
        str(p.relative_to(tmp_path)) for p in _files(tmp_path, "chunks") if p not in chunks_before)
    assert sum(rows.column("rows").to_pylist()) == total

    # the replaced files stay until the next run (a query may still read them); a restart in
    # between reads only the new index file (the old ones are superseded)
    assert all(p.exists() for p in chunks_before)
    store.close()
    restarted = Store(str(tmp_path), Ingester())
    assert _answers(restarted) == before
    again = compact_tenant(restarted.tenant("t"), grace_ns=0)
    assert again.merged_files == 0 and not any(p.exists() for p in chunks_before)
    assert len(_files(tmp_path, "chunks")) == 2 and len(_files(tmp_path, "index")) == 1
    assert len(_files(tmp_path, "rollups")) <= 2
    assert _answers(restarted) == before
    restarted.close()


def test_nothing_is_collected_before_the_grace(tmp_path: Path) -> None:
    store = Store(str(tmp_path), Ingester())
    _fill(store, flushes=4)
    before = _files(tmp_path, "chunks")
    compact_tenant(store.tenant("t"), grace_ns=0)
    report = compact_tenant(store.tenant("t"), grace_ns=3600 * 10**9)
    assert report.deleted_files == [] and all(p.exists() for p in before)
    store.close()


def test_unreferenced_leftovers_of_a_dead_run_are_collected(tmp_path: Path) -> None:
    """A run that died after writing its chunk file but before its index: the orphan goes, the
    store answers as before."""
    store = Store(str(tmp_path), Ingester())
    _fill(store, flushes=4)
    before = _answers(store)
    tenant = store.tenant("t")
    [first, *_] = _files(tmp_path, "chunks")
    orphan = first.with_name("00000000000000000001-dead-000000-h00.parquet")
    pq.write_table(pq.read_table(first), orphan)
    report = compact_tenant(tenant, grace_ns=0)
    assert str(orphan.relative_to(tmp_path)) in report.deleted_files and not orphan.exists()
    assert _answers(store) == before
    store.close()
