"""Retention in the compactor, with a clock the test moves: nothing younger than its retention is
touched; expired files leave the index at once and the disk after the delay; `retention_stream`
rules by priority (of equal priority, the shorter period) as Loki picks them; a file holding
streams with different retentions is written again without the expired one."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from lokiarrow.config import Ingester, Limits
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.logql.parser import parse_matchers
from lokiarrow.store.compactor import compact_tenant
from lokiarrow.store.retention import Retention, RetentionRule
from lokiarrow.store.store import Store
from tests.store.helpers import entries

HOUR = 3600 * 10**9
DAY = 24 * HOUR
T0 = 1_768_780_800 * 10**9   # 2026-01-19T00:00:00Z
LIMITS = Limits(reject_old_samples=False, max_query_length=0, max_entries_limit_per_query=100_000)


def _rule(selector: str, days: float, priority: int) -> RetentionRule:
    return RetentionRule(parse_matchers(selector), int(days * DAY), priority)


def _store(tmp_path: Path) -> Store:
    """Three days of two streams (dev and prod), one flush per day."""
    store = Store(str(tmp_path), Ingester())
    tenant = store.tenant("t")
    for day in range(3):
        tenant.push(entries([({"env": env, "app": "x"}, T0 + day * DAY + h * HOUR, f"{env} d{day} h{h}")
                             for env in ("dev", "prod") for h in range(0, 24, 6)]))
        tenant.flush()
    return store


def _lines(store: Store) -> list[str]:
    answer = Querier(store, LIMITS).query_range("t", RangeRequest('{app="x"}', T0 - DAY, T0 + 10 * DAY, 1000))
    return sorted(line for s in answer["result"] for _, line in s["values"])


def _young(retention: Retention, now: int) -> list[str]:
    """The lines retention keeps at `now`: each sits alone in its stream's hour file, so a line
    goes exactly when it is older than its stream's period."""
    out = []
    for env in ("dev", "prod"):
        period = retention.period_for({"env": env, "app": "x"})
        out += [f"{env} d{d} h{h}" for d in range(3) for h in range(0, 24, 6)
                if not period or T0 + d * DAY + h * HOUR >= now - period]
    return sorted(out)


def _days_on_disk(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "t" / "chunks").glob("day=*") if any(p.iterdir()))


def test_nothing_younger_than_the_retention_is_touched(tmp_path: Path) -> None:
    store = _store(tmp_path)
    week = Retention(7 * DAY)
    for now in (T0 + 3 * DAY, T0 + 7 * DAY, T0 + 7 * DAY + 7 * HOUR, T0 + 8 * DAY + 13 * HOUR):
        compact_tenant(store.tenant("t"), grace_ns=0, now_ns=now, retention=week)
        assert _lines(store) == _young(week, now)
    assert _lines(store) == ["dev d1 h18", "dev d2 h0", "dev d2 h12", "dev d2 h18", "dev d2 h6",
                             "prod d1 h18", "prod d2 h0", "prod d2 h12", "prod d2 h18", "prod d2 h6"]
    store.close()


def test_expired_days_leave_the_index_then_the_disk(tmp_path: Path) -> None:
    store = _store(tmp_path)
    day = Retention(DAY)
    now = T0 + 2 * DAY + HOUR      # day 0 past one day, and day 1's first hour
    report = compact_tenant(store.tenant("t"), grace_ns=HOUR, now_ns=now, retention=day)
    assert report.expired_rows == 10 and _lines(store) == _young(day, now)          # gone from queries at once
    assert _days_on_disk(tmp_path) == ["day=2026-01-19", "day=2026-01-20", "day=2026-01-21"]
    later = compact_tenant(store.tenant("t"), grace_ns=HOUR, now_ns=now + HOUR, retention=day)
    assert later.deleted_files and _days_on_disk(tmp_path) == ["day=2026-01-20", "day=2026-01-21"]
    assert not (tmp_path / "t" / "index" / "day=2026-01-19").exists()
    store.close()
    restarted = Store(str(tmp_path), Ingester())
    assert _lines(restarted) == _young(day, now)
    restarted.close()


def test_stream_rules_by_priority_then_shortest(tmp_path: Path) -> None:
    store = _store(tmp_path)
    rules = Retention(30 * DAY, (_rule('{env="dev"}', 1, 1), _rule('{app="x"}', 2, 0),
                                 _rule('{env="prod"}', 1.5, 5), _rule('{env="prod"}', 1.25, 5)))
    assert rules.period_for({"env": "dev", "app": "x"}) == DAY
    assert rules.period_for({"env": "prod", "app": "x"}) == int(1.25 * DAY)
    assert rules.period_for({"env": "qa"}) == 30 * DAY
    now = T0 + 2 * DAY + 7 * HOUR
    compact_tenant(store.tenant("t"), grace_ns=0, now_ns=now, retention=rules)
    assert _lines(store) == _young(rules, now) and len(_young(rules, now)) == 13
    store.close()


def test_a_file_losing_one_stream_is_written_again(tmp_path: Path) -> None:
    store = _store(tmp_path)
    dev_only = Retention(0, (_rule('{env="dev"}', 1, 1),))       # prod is kept forever
    compact_tenant(store.tenant("t"), grace_ns=0, now_ns=T0 + 3 * DAY, retention=dev_only)
    compact_tenant(store.tenant("t"), grace_ns=0, now_ns=T0 + 3 * DAY, retention=dev_only)   # collects
    lines = _lines(store)
    assert [line for line in lines if line.startswith("dev")] == [f"dev d2 h{h}" for h in (0, 12, 18, 6)]
    assert len([line for line in lines if line.startswith("prod")]) == 12
    # the rewritten files on disk hold no dev line of day 0 or 1
    on_disk = [line for p in (tmp_path / "t" / "chunks").glob("day=*/*.parquet")
               for line in pq.read_table(p, columns=["line"]).column("line").to_pylist()]
    assert sorted(on_disk) == lines
    store.close()
