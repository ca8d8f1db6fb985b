"""Per-tenant limits from the runtime config file (`overrides`), re-read while the server runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lokiarrow.config import Limits, from_yaml
from lokiarrow.overrides import TenantLimits, read_overrides
from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS, push

PERIOD_S = 0.1


def _client(server: Server, tenant: str) -> httpx.Client:
    client = server.client()
    client.headers["X-Scope-OrgID"] = tenant
    return client


def _wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the runtime config was not applied in time"
        time.sleep(PERIOD_S)


@pytest.fixture
def overrides(tmp_path: Path) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text("overrides:\n  small:\n    max_entries_limit_per_query: 5\n    ingestion_rate_mb: 0.001\n"
                    "    ingestion_burst_size_mb: 0.001\n"
                    "  narrow:\n    per_stream_rate_limit: 1KB\n    per_stream_rate_limit_burst: 2KB\n"
                    "  hasty:\n    query_timeout: 1ns\n")
    return path


@pytest.fixture
def server(start_server: Callable[..., Server], overrides: Path) -> Server:
    config = PERMISSIVE + f"runtime_config:\n  file: {overrides}\n  period: {int(PERIOD_S * 1000)}ms\n"
    return start_server(config, args=["-auth.enabled=true"])


def _query(client: httpx.Client, limit: int) -> httpx.Response:
    return client.get("/loki/api/v1/query_range", params={"query": '{app="o"}', "limit": limit,
                                                         "start": BASE_NS - 10**9, "end": BASE_NS + 10**9})


def test_a_tenants_overrides_apply_to_it_alone_and_follow_the_file(server: Server, overrides: Path) -> None:
    with _client(server, "small") as small, _client(server, "big") as big:
        r = _query(small, 10)
        assert r.status_code == 400 and "max entries limit per query exceeded" in r.text and "(10 > 5)" in r.text
        assert _query(big, 10).status_code == 200  # limits_config's 100000 for everyone else
        # ingestion: 1 kB/s for `small` only
        line = "x" * 4000
        r = push(small, {"app": "o"}, [[BASE_NS, line]], expect=429)
        assert "ingestion rate limit" in r.text
        push(big, {"app": "o"}, [[BASE_NS, line]])
        # a bad edit is not applied: the last good overrides stay
        overrides.write_text("overrides: [not, a, mapping\n")
        time.sleep(3 * PERIOD_S)
        assert _query(small, 10).status_code == 400
        # raised in the file: applied without a restart
        overrides.write_text("overrides:\n  small:\n    max_entries_limit_per_query: 50\n")
        _wait_until(lambda: _query(small, 10).status_code == 200)
        push(small, {"app": "o"}, [[BASE_NS, line]])


def test_stream_rate_limits_and_query_timeouts_are_per_tenant(server: Server) -> None:
    with _client(server, "narrow") as narrow, _client(server, "big") as big, _client(server, "hasty") as hasty:
        line = "x" * 3000                        # over narrow's 2KB burst, far under the default 15MB
        r = push(narrow, {"app": "s"}, [[BASE_NS, line]], expect=429)
        assert "Per stream rate limit exceeded (limit: 1KB/sec)" in r.text and "totaling 3000B" in r.text
        assert "user 'narrow', total ignored: 1 out of 1" in r.text
        push(big, {"app": "s"}, [[BASE_NS, line]])
        push(hasty, {"app": "s"}, [[BASE_NS, line]])
        around = {"start": BASE_NS - 10**9, "end": BASE_NS + 10**9}
        r = hasty.get("/loki/api/v1/labels", params=around)
        assert r.status_code == 504 and r.text.startswith("request timed out")
        assert big.get("/loki/api/v1/labels", params=around).json()["data"] == ["app", "service_name"]


def test_the_runtime_config_section_is_read() -> None:
    cfg = from_yaml("runtime_config:\n  file: /etc/loki/overrides.yaml\n  period: 30s\n")
    assert (cfg.runtime_config_file, cfg.runtime_config_period) == ("/etc/loki/overrides.yaml", 30 * 10**9)


def test_overrides_are_checked(tmp_path: Path) -> None:
    base = Limits(max_query_series=7)
    tenants = read_overrides("overrides:\n  a:\n    max_line_size: 1KB\n    max_query_length: 1h\n"
                             "    per_stream_rate_limit: 512KB\n    query_timeout: 5m\n", base)
    assert tenants["a"].max_line_size == 1000 and tenants["a"].max_query_length == 3600 * 10**9
    assert tenants["a"].per_stream_rate_limit == 512 * 1024                # Loki's sizes are binary here
    assert tenants["a"].per_stream_rate_limit_burst == 15 << 20           # from limits_config
    assert tenants["a"].query_timeout == 300 * 10**9
    assert tenants["a"].max_query_series == 7  # the rest from limits_config
    with pytest.raises(ValueError, match=r"overrides\.a\.max_lines: unknown limit"):
        read_overrides("overrides:\n  a:\n    max_lines: 3\n", base)
    with pytest.raises(ValueError, match="invalid byte size"):
        read_overrides("overrides:\n  a:\n    per_stream_rate_limit: 1.5MB\n", base)
    with pytest.raises(ValueError, match="must be a mapping of limits"):
        read_overrides("overrides:\n  a: 3\n", base)
    # a file that is not there yet: the defaults, until it appears
    path = tmp_path / "later.yaml"
    limits = TenantLimits(base, str(path), period_ns=0)
    assert limits("a") is base
    path.write_text("overrides:\n  a:\n    max_query_series: 3\n")
    assert limits("a").max_query_series == 3 and limits("b") is base
