"""Nothing acknowledged is lost: SIGKILL after pushes, restart, every line is there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Server
from tests.server.pushing import BASE_NS, lines, push, query


def test_sigkill_after_acknowledged_pushes_loses_nothing(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as c:
        for batch in range(20):
            push(c, {"app": "wal", "batch": str(batch % 3)},
                 [[BASE_NS + batch * 1000 + i, f"b{batch} l{i}"] for i in range(50)])
    server.kill()  # no shutdown hook runs: only the WAL has the data
    assert list(server.data_dir.glob("fake/wal/*.arrow"))
    assert not list(server.data_dir.glob("fake/chunks/**/*.parquet"))
    server.start()
    with server.client() as c:
        got = lines(query(c, '{app="wal"}', limit=5000))
    assert len(got) == 1000
    assert set(got) == {f"b{b} l{i}" for b in range(20) for i in range(50)}


def test_sigkill_between_flushes_keeps_both_generations(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as c:
        push(c, {"app": "gen"}, [[BASE_NS + i, f"flushed {i}"] for i in range(10)])
        assert c.post("/flush").status_code == 204
        push(c, {"app": "gen"}, [[BASE_NS + 100 + i, f"in wal {i}"] for i in range(10)])
    server.kill()
    server.start()
    with server.client() as c:
        got = lines(query(c, '{app="gen"}', limit=100))
        assert len(got) == 20
        # a replayed WAL is not stored twice after the next flush
        assert c.post("/flush").status_code == 204
        assert len(lines(query(c, '{app="gen"}', limit=100))) == 20


def test_clean_shutdown_flushes_and_empties_the_wal(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as c:
        push(c, {"app": "bye"}, [[BASE_NS + i, f"l{i}"] for i in range(5)])
    server.stop()
    data: Path = server.data_dir
    assert not list(data.glob("fake/wal/*.arrow"))
    assert list(data.glob("fake/chunks/day=2026-01-19/*.parquet"))
    server.start()
    with server.client() as c:
        assert len(lines(query(c, '{app="bye"}'))) == 5
