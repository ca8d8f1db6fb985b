"""sql/views.sql: the SQL console's views read a real store, whatever field columns its files have."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

from lokiarrow.api import views
from lokiarrow.config import Ingester
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.store.helpers import entries


def test_views_over_files_with_different_field_columns(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    store.push(entries([({"app": "json"}, i, f'{{"level":"info","n":{i + 1}}}') for i in range(50)]))
    store.flush()
    store.push(entries([({"app": "logfmt"}, 100 + i, f"status={200 + i % 2} msg=ok") for i in range(50)]))
    store.flush()
    store.push(entries([({"app": "plain"}, 200 + i, f"plain line {i}") for i in range(50)]))
    store.flush()
    con = views(str(tmp_path), "t")
    assert con.sql("SELECT count(*) FROM logs").fetchall() == [(150,)]
    per_app = con.sql("SELECT labels, count(*) FROM logs GROUP BY labels ORDER BY labels").fetchall()
    assert per_app == [('{app="json"}', 50), ('{app="logfmt"}', 50), ('{app="plain"}', 50)]
    # the field columns of one file are null in the others
    assert con.sql("SELECT count(f_level), count(f_status) FROM chunks").fetchall() == [(50, 50)]


def test_the_streams_view_reads_index_files_with_and_without_metadata_sets(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    store.push(entries([({"app": "a"}, i, f"line {i}") for i in range(10)],
                       [{"trace": "x"} if i % 2 else None for i in range(10)]))
    store.flush()
    [index] = list((tmp_path / "t" / "index").rglob("*.parquet"))
    older = pq.read_table(index).drop_columns(["metadata"])  # as written before metadata sets
    pq.write_table(older, index.with_name("older.parquet"))
    con = views(str(tmp_path), "t")
    rows = con.sql("SELECT metadata, rows FROM streams ORDER BY metadata NULLS LAST").fetchall()
    assert rows == [('{"trace":"x"}', 5), ("{}", 5), (None, 5), (None, 5)]
    assert con.sql("SELECT count(*) FROM logs").fetchall() == [(10,)]


def test_the_views_read_live_files_only_while_replaced_ones_wait_for_deletion(tmp_path: Path) -> None:
    """After a compaction run, and before the next one deletes the files it replaced, every entry
    is read once."""
    from lokiarrow.store.compactor import compact_tenant

    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    for part in range(4):
        store.push(entries([({"app": "a"}, part * 100 + i, f"line {part} {i}") for i in range(25)]))
        store.flush()
    compact_tenant(store, grace_ns=3600 * 10**9)
    assert len(list((tmp_path / "t" / "chunks").rglob("*.parquet"))) == 5   # 4 replaced + 1 new
    con = views(str(tmp_path), "t")
    assert con.sql("SELECT count(*), count(DISTINCT line) FROM logs").fetchall() == [(100, 100)]
    assert con.sql("SELECT sum(rows) FROM streams").fetchall() == [(100,)]


def test_logs_columns_macros_and_day_pruning(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    day = 86_400 * 10**9
    store.push(entries([({"app": "web", "env": "prod"}, i * day + 5, line) for i, line in enumerate(
        ['{"level":"ERROR","req":{"id":"r1"}}', "level=warn msg=slow", "plain text"])]))
    store.flush()
    other = TenantStore(Root(str(tmp_path)), "u", Ingester())
    other.push(entries([({"app": "web"}, 5, "other tenant")]))
    other.flush()
    con = views(str(tmp_path), "t")
    rows = con.sql("SELECT tenant, day, timestamp, label(labels, 'env'), level(line), json_field(line, 'req.id') "
                   "FROM logs ORDER BY ts").fetchall()
    assert [(r[0], str(r[1]), r[2].isoformat(), r[3], r[4], r[5]) for r in rows] == [
        ("t", "1970-01-01", "1970-01-01T00:00:00", "prod", "error", "r1"),
        ("t", "1970-01-02", "1970-01-02T00:00:00", "prod", "warn", None),
        ("t", "1970-01-03", "1970-01-03T00:00:00", "prod", "unknown", None)]
    [sid] = con.sql("SELECT DISTINCT stream_id FROM logs").fetchall()[0]
    assert con.sql("SELECT logql_labels(?)", params=[sid]).fetchall() == [('{app="web", env="prod"}',)]
    assert con.sql("SELECT label('{app=\"x\", xapp=\"y\"}', 'app')").fetchall() == [("x",)]
    everyone = views(str(tmp_path), "*")
    assert everyone.sql("SELECT tenant, count(*) FROM logs GROUP BY ALL ORDER BY 1").fetchall() == [("t", 3), ("u", 1)]
    # a day filter reads that day's folder only: a broken file elsewhere is never opened
    [broken] = (tmp_path / "t" / "chunks" / "day=1970-01-03").glob("*.parquet")
    broken.write_bytes(b"not parquet")
    assert con.sql("SELECT line FROM logs WHERE day = '1970-01-02'").fetchall() == [("level=warn msg=slow",)]


def test_a_ts_filter_reads_only_the_row_groups_of_its_span(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    day = 86_400 * 10**9
    for d in range(3):
        store.push(entries([({"app": "a"}, d * day + i * 10**9, f"day {d} {i}") for i in range(100)]))
        store.flush()
    con = views(str(tmp_path), "t")
    q = "SELECT count(*) FROM logs WHERE ts >= epoch_ns(TIMESTAMP '1970-01-03')"
    assert con.sql(q).fetchall() == [(100,)]
    plan = con.sql("EXPLAIN ANALYZE " + q).fetchall()[0][1]
    chunk_scan = plan[plan.index("ts >= 172800000000000"):]
    assert "Row Groups Scanned: 1 / 3" in chunk_scan   # the other two days' data is never read


def test_logs_between_reads_only_the_days_and_row_groups_of_its_span(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    day = 86_400 * 10**9
    for d in range(4):
        store.push(entries([({"app": "a"}, d * day + i * 10**9, f"day {d} {i}") for i in range(100)]))
        store.flush()
    con = views(str(tmp_path), "t")
    span = "TIMESTAMP '1970-01-02 00:00:30', TIMESTAMP '1970-01-03 00:00:10'"
    q = f"SELECT count(*), min(line), max(timestamp) FROM logs_between({span})"
    assert con.sql(q).fetchall() == [(80, "day 1 30", datetime(1970, 1, 3, 0, 0, 9))]
    plan = con.sql("EXPLAIN ANALYZE " + q).fetchall()[0][1]
    assert "Row Groups Scanned: 2 / 2" in plan       # of the two days' files only, of four
    # a day outside the span is never opened
    [broken] = (tmp_path / "t" / "chunks" / "day=1970-01-04").glob("*.parquet")
    broken.write_bytes(b"not parquet")
    bound = con.sql("SELECT count(*) FROM logs_between(?, ?)", params=["1970-01-02 00:00:30", "1970-01-03 00:00:10"])
    assert bound.fetchall() == [(80,)]
