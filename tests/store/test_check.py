"""`lokiarrow check`: a store written by flushes and a compaction is consistent; each kind of damage
(a missing, a broken or a rewritten chunk file, an index that miscounts) is reported by name, and
files no index names are listed as orphans."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lokiarrow.config import Ingester
from lokiarrow.store.check import check_store, summary
from lokiarrow.store.compactor import compact_tenant
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.conftest import ROOT
from tests.store.helpers import entries

S = 10**9


def _store(folder: Path) -> list[Path]:
    store = TenantStore(Root(str(folder)), "t", Ingester(wal_enabled=False))
    for part in range(3):
        store.push(entries([({"app": f"a{i % 2}"}, (part * 100 + i) * S, f"line {part} {i}") for i in range(100)]))
        store.flush()
    return sorted((folder / "t" / "chunks").rglob("*.parquet"))


def _problems(folder: Path) -> list[str]:
    [report] = check_store(Root(str(folder)))
    return report.problems


def test_flushed_and_compacted_stores_are_consistent(tmp_path: Path) -> None:
    files = _store(tmp_path)
    [report] = check_store(Root(str(tmp_path)))
    assert report.problems == [] and report.orphans == [] and report.rows == 300 and report.chunk_files == len(files)
    compact_tenant(TenantStore(Root(str(tmp_path)), "t", Ingester(wal_enabled=False)), grace_ns=3600 * S)
    [report] = check_store(Root(str(tmp_path)))
    assert report.problems == [] and report.rows == 300
    assert sorted(report.orphans) == sorted(str(f.relative_to(tmp_path)) for f in files)   # replaced, not yet deleted
    text, ok = summary([report])
    assert ok and text.endswith("consistent") and "orphan" in text


def test_a_missing_chunk_file_is_reported(tmp_path: Path) -> None:
    first = _store(tmp_path)[0]
    first.unlink()
    assert _problems(tmp_path) == [f"{first.relative_to(tmp_path)}: named by the index, missing"]


def test_a_broken_chunk_file_is_reported(tmp_path: Path) -> None:
    first = _store(tmp_path)[0]
    first.write_bytes(first.read_bytes()[:100])
    [problem] = _problems(tmp_path)
    assert problem.startswith(f"{first.relative_to(tmp_path)}: cannot be read")


def test_rows_the_index_does_not_count_are_reported(tmp_path: Path) -> None:
    first = _store(tmp_path)[0]
    table = pq.read_table(first)
    pq.write_table(table.slice(0, table.num_rows - 1), first)      # one row fewer than the index says
    [problem] = _problems(tmp_path)
    assert "rows, the index says" in problem
    stray = table.slice(0, 1).set_column(0, table.schema.field("stream_id"), pa.array([7], pa.int64()))
    pq.write_table(pa.concat_tables([table, stray]), first)
    assert _problems(tmp_path) == [f"{first.relative_to(tmp_path)}: stream 7 (1 rows) is in the file, not in the index"]


def test_the_command_exits_1_on_an_inconsistent_store(tmp_path: Path) -> None:
    _store(tmp_path)[0].unlink()
    done = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "check", f"-common.path-prefix={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "named by the index, missing" in done.stdout and "NOT consistent" in done.stdout
