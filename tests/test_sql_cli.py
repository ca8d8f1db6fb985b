"""`lokiarrow sql` on a store's files: scripts with `-c` in each format, and the console fed on
stdin (multi-line statements, dot commands, errors that do not end it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lokiarrow.config import Ingester
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.conftest import ROOT
from tests.store.helpers import entries


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sqlcli")
    store = TenantStore(Root(str(root)), "fake", Ingester())
    store.push(entries([({"app": "web"}, i, f'{{"level":"{("info", "error")[i % 2]}"}}') for i in range(6)]))
    store.flush()
    return root


def _sql(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lokiarrow.cli", "sql", *args], cwd=ROOT, capture_output=True,
                          text=True, input=stdin, timeout=120)


def test_scripts_in_every_format(data: Path, tmp_path: Path) -> None:
    q = "SELECT level(line) AS level, count(*) AS n FROM logs GROUP BY ALL ORDER BY level"
    csv = _sql(str(data), "-c", q, "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines() == ["level,n", "error,3", "info,3"]
    lines = [json.loads(line) for line in _sql(str(data), "-c", q, "--format", "json").stdout.splitlines()]
    assert lines == [{"level": "error", "n": 3}, {"level": "info", "n": 3}]
    table = _sql(str(data), "-c", q).stdout
    assert "│ error" in table and "│ info" in table
    out = tmp_path / "rows.parquet"
    assert _sql(str(data), "-c", q, "--format", "parquet", "--output", str(out)).returncode == 0
    assert pq.read_table(out).to_pylist() == lines
    assert "needs --output" in _sql(str(data), "-c", q, "--format", "parquet").stderr
    bad = _sql(str(data), "-c", "SELECT nope FROM logs")
    assert bad.returncode == 1 and "nope" in bad.stderr
    assert _sql(str(data / "missing"), "-c", "SELECT 1").returncode == 1


def test_the_console_on_stdin(data: Path) -> None:
    session = _sql(str(data), stdin="SELECT count(*) AS n\n  FROM logs;\n.tables\n.schema logs\n.bogus\n"
                                     "SELECT nope;\nSELECT label(labels, 'app') AS app FROM logs LIMIT 1;\n.quit\n")
    assert session.returncode == 0, session.stderr
    out = session.stdout
    assert "│     6 │" in out                          # the two-line statement's count
    assert "chunks  logs  streams  superseded" in out
    assert "timestamp TIMESTAMP_NS" in out and "labels VARCHAR" in out
    assert "unknown command .bogus" in out and "Error:" in out
    assert "web" in out.rsplit("Error:", 1)[1]        # the console went on after the error
