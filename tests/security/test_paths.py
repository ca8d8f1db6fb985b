"""Tenant ids that look like paths or patterns through the Python API and the SQL console: each
reads its own folder under the root or is refused, never another tenant's files or a folder
outside the root (`lokiarrow.open(path, tenant=...)`, `views(root, tenant)`, `lokiarrow sql --tenant`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import lokiarrow
from lokiarrow.api import views
from lokiarrow.config import Ingester
from lokiarrow.errors import BadRequest
from lokiarrow.store.store import Store
from tests.store.helpers import entries

T0 = 1_768_860_000 * 10**9
SPAN = {"start": T0 - 10**9, "end": T0 + 10**12}
# (tenant, why it is refused)
REFUSED = [
    ("../x", "tenant ID '../x' contains unsupported character '/'"),
    ("..", "tenant ID is '.' or '..'"),
    (".", "tenant ID is '.' or '..'"),
    ("team-a/../../x", "tenant ID 'team-a/../../x' contains unsupported character '/'"),
    ("..\\x", "tenant ID '..\\x' contains unsupported character '\\'"),
    ("team-?", "tenant ID 'team-?' contains unsupported character '?'"),
    ("team-[ab]", "tenant ID 'team-[ab]' contains unsupported character '['"),
    ("team-{a,b}", "tenant ID 'team-{a,b}' contains unsupported character '{'"),
    ("team-a\x00", "tenant ID 'team-a\x00' contains unsupported character '\x00'"),
    ("x" * 151, "tenant ID is too long: max 150 characters"),
    ("", "no org id"),
]
OWN = ["team-*", "*", "'", "it's", "(x)", "..."]   # valid ids that look like patterns or quotes


def _fill(root: Path, tenants: list[str]) -> None:
    store = Store(str(root), Ingester(wal_enabled=False))
    for name in tenants:
        tenant = store.tenant(name)
        tenant.push(entries([({"app": "a"}, T0, f"line of {name}")]))
        tenant.flush()
    store.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("paths")
    _fill(base, ["x"])                        # a store beside the root: `<root>/../x` is a tenant's folder
    _fill(base / "root", ["team-a", "team-b", *OWN])
    return base / "root"


def _lines(store: lokiarrow.api.LocalStore, query: str = '{app="a"}') -> list[str]:
    return sorted(store.query(query, **SPAN)["line"].to_list())


@pytest.mark.parametrize(("tenant", "message"), REFUSED, ids=[f"refused{i}" for i in range(len(REFUSED))])
def test_open_and_views_refuse_ids_loki_refuses(root: Path, tenant: str, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        lokiarrow.open(root, tenant=tenant)
    assert refused.value.message == f"cannot open tenant {tenant!r}: {message}"
    with pytest.raises(BadRequest) as refused:
        views(str(root), tenant)
    assert refused.value.message == f"cannot open tenant {tenant!r}: {message}"


@pytest.mark.parametrize("tenant", OWN)
def test_odd_ids_read_their_own_folder_only(root: Path, tenant: str) -> None:
    store = lokiarrow.open(root, tenant=tenant)
    assert _lines(store) == [f"line of {tenant}"]
    assert store.sql("SELECT tenant, line FROM logs").rows() == [(tenant, f"line of {tenant}")]
    con = views(str(root), tenant, every=tenant != "*")   # views(root, "*"): every tenant's
    assert con.sql("SELECT DISTINCT tenant FROM streams").fetchall() == [(tenant,)]


def test_every_tenant_only_with_star(root: Path) -> None:
    everyone = {"team-a", "team-b", *OWN}   # not `x`, outside the root
    assert {t for (t,) in views(str(root)).sql("SELECT DISTINCT tenant FROM logs").fetchall()} == everyone


def test_multi_tenant_opens_check_each_id(root: Path) -> None:
    assert _lines(lokiarrow.open(root, tenant="team-a|team-b")) == ["line of team-a", "line of team-b"]
    assert _lines(lokiarrow.open(root, tenant="team-b|*")) == ["line of *", "line of team-b"]
    with pytest.raises(BadRequest, match="contains unsupported character '/'"):
        lokiarrow.open(root, tenant="team-a|../x")


def _sql(root: Path, tenant: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lokiarrow.cli", "sql", str(root), "--tenant", tenant, "-c",
                           "SELECT DISTINCT tenant FROM logs ORDER BY 1", "--format", "csv"],
                          capture_output=True, text=True, timeout=120, check=False)


def test_sql_console_tenant(root: Path) -> None:
    refused = _sql(root, "../x")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: cannot open tenant '../x': tenant ID '../x' contains unsupported character '/'"
    for tenant in ("team-*", "'"):
        done = _sql(root, tenant)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["tenant", tenant]
