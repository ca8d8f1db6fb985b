"""The head is flushed by size and by age, not only on request."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS, lines, push, query


def _wait_for_chunks(data: Path, seconds: float = 15) -> list[Path]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = list(data.glob("fake/chunks/day=*/*.parquet"))
        if found:
            return found
        time.sleep(0.1)
    return []


def test_a_full_head_is_flushed(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE + "ingester:\n  flush_max_rows: 10\n  flush_check_period: 100ms\n")
    with server.client() as c:
        push(c, {"app": "size"}, [[BASE_NS + i, f"l{i}"] for i in range(5)])
        time.sleep(0.5)
        assert not list(server.data_dir.glob("fake/chunks/day=*/*.parquet"))  # not full yet
        push(c, {"app": "size"}, [[BASE_NS + 10 + i, f"m{i}"] for i in range(10)])
        assert _wait_for_chunks(server.data_dir)
        assert len(lines(query(c, '{app="size"}'))) == 15


def test_an_old_head_is_flushed(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE + "ingester:\n  max_chunk_age: 1s\n  flush_check_period: 100ms\n")
    with server.client() as c:
        push(c, {"app": "age"}, [[BASE_NS, "one line"]])
        assert _wait_for_chunks(server.data_dir)
        assert lines(query(c, '{app="age"}')) == ["one line"]
