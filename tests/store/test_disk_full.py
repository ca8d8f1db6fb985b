"""A real full disk (a small tmpfs mounted for the test): pushes the WAL cannot take and flushes
that cannot write answer 500 naming the cause, never 204; what was acknowledged stays queryable;
once the disk has room again (the tmpfs grown in place) pushes and flushes succeed without a
restart, and after a crash every acknowledged line is there exactly once, in a consistent store.
(A refused push's entries may be kept too, at most once: a client's retry of it is deduplicated.)"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import PERMISSIVE, ROOT, Server
from tests.server.pushing import BASE_NS

CONFIG = PERMISSIVE + """  per_stream_rate_limit: 1GB
  per_stream_rate_limit_burst: 1GB
ingester:
  flush_max_rows: 10000000
  flush_max_bytes: 1GB
  max_chunk_age: 10h
"""

def _line(n: int, i: int) -> str:
    """2 KB that lz4 cannot shrink much: the WAL holds about what was pushed."""
    return f"{n} {i} " + random.Random(n * 50 + i).randbytes(1000).hex()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:   # a machine that does not let the tests mount: tests/store/test_wal_faults.py still runs
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _push(client: httpx.Client, n: int) -> httpx.Response:
    body = {"streams": [{"stream": {"app": "full"}, "values": [[str(BASE_NS + n * 100 + i), _line(n, i)]
                                                               for i in range(50)]}]}
    return client.post("/loki/api/v1/push", content=orjson.dumps(body), headers={"Content-Type": "application/json"})


def _stored(client: httpx.Client) -> Counter[str]:
    r = client.get("/loki/api/v1/query_range", params={"query": '{app="full"}', "limit": 100000,
                                                       "start": BASE_NS - 10**9, "end": BASE_NS + 10**12})
    assert r.status_code == 200, r.text
    return Counter(line.rsplit(" ", 1)[0] for s in r.json()["data"]["result"] for _, line in s["values"])


def _assert_kept(stored: Counter[str], acknowledged: list[int], refused: set[str]) -> None:
    assert set(stored.values()) == {1}                                   # nothing twice
    kept = {f"{n} {i}" for n in acknowledged for i in range(50)}
    assert kept <= stored.keys() <= kept | refused


def test_a_full_disk_refuses_pushes_keeps_what_was_acknowledged_and_recovers(
        small_disk: Path, start_server: Callable[..., Server]) -> None:
    data = small_disk / "data"
    server = start_server(CONFIG, data_dir=data)
    acknowledged: list[int] = []
    with server.client() as client:
        refused: list[httpx.Response] = []
        for n in range(200):                       # 100 KB a push: the 3 MiB disk fills
            r = _push(client, n)
            if r.status_code == 204:
                acknowledged.append(n)
            else:
                refused.append(r)
                if len(refused) == 3:
                    break
        unacknowledged = {f"{m} {i}" for m in range(n + 1) if m not in acknowledged for i in range(50)}
        assert acknowledged and len(refused) == 3
        for r in refused:
            assert r.status_code == 500
            assert r.text.startswith("cannot write the WAL: ") and "No space left on device" in r.text
        flush = client.post("/flush")              # a flush cannot write its chunk files either
        assert flush.status_code == 500 and "No space left on device" in flush.text
        _assert_kept(_stored(client), acknowledged, unacknowledged)    # everything acknowledged answers, from memory

        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)   # room again
        for n in range(1000, 1005):
            assert _push(client, n).status_code == 204
            acknowledged.append(n)
        assert client.post("/flush").status_code == 204
        for n in range(2000, 2003):                 # in the WAL only, at the crash
            assert _push(client, n).status_code == 204
            acknowledged.append(n)
    server.kill()
    server.start()
    with server.client() as client:
        _assert_kept(_stored(client), acknowledged, unacknowledged)
    server.stop()
    done = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "check", f"-common.path-prefix={data}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "consistent" in done.stdout, done.stdout + done.stderr
