"""sql/views.sql: the SQL console's views read a real store, whatever field columns its files have."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from lokiarrow.config import Ingester
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.store.helpers import entries

VIEWS = Path(__file__).resolve().parents[2] / "sql" / "views.sql"


def test_views_over_files_with_different_field_columns(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    store.push(entries([({"app": "json"}, i, f'{{"level":"info","n":{i + 1}}}') for i in range(50)]))
    store.flush()
    store.push(entries([({"app": "logfmt"}, 100 + i, f"status={200 + i % 2} msg=ok") for i in range(50)]))
    store.flush()
    store.push(entries([({"app": "plain"}, 200 + i, f"plain line {i}") for i in range(50)]))
    store.flush()
    con = duckdb.connect()
    con.execute("SET VARIABLE root = ?", [str(tmp_path / "t")])
    con.execute(VIEWS.read_text())
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
    con = duckdb.connect()
    con.execute("SET VARIABLE root = ?", [str(tmp_path / "t")])
    con.execute(VIEWS.read_text())
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
    con = duckdb.connect()
    con.execute("SET VARIABLE root = ?", [str(tmp_path / "t")])
    con.execute(VIEWS.read_text())
    assert con.sql("SELECT count(*), count(DISTINCT line) FROM logs").fetchall() == [(100, 100)]
    assert con.sql("SELECT sum(rows) FROM streams").fetchall() == [(100,)]
