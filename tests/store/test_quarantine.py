"""Unreadable files are detected, quarantined and reported, and the rest of the store answers:
chunk files a query or a compaction cannot read, WAL segments a replay cannot read to their end."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from lokiarrow.config import Ingester
from lokiarrow.store.check import check_tenant
from lokiarrow.store.compactor import compact_tenant
from lokiarrow.store.fs import Root
from lokiarrow.store.quarantine import QUARANTINED, quarantine_path, unreadable
from lokiarrow.store.tenant import TenantStore
from lokiarrow.store.wal import WAL
from tests.conftest import ROOT, Server
from tests.server.pushing import BASE_NS, lines, push, query
from tests.store.helpers import entries

TENANT = "fake"   # the tenant without auth


def _flushed_files(server: Server) -> list[Path]:
    """Push three batches, each flushed to its own chunk file (oldest first)."""
    with server.client() as client:
        for n, app in enumerate(("a", "b", "a")):
            push(client, {"app": app}, [[BASE_NS + n * 10**9 + i, f"{app} {n} {i}"] for i in range(5)])
            assert client.post("/flush").status_code == 204
    return sorted((server.data_dir / TENANT / "chunks").glob("day=*/*.parquet"))


def _metric(client: httpx.Client, kind: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'lokiarrow_quarantined_files_total{{kind="{kind}"}}'):
            return float(line.split()[-1])
    return 0.0


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_page_bytes(path: Path) -> None:
    """Damage bytes inside the first row group's pages (not the footer), as a bad disk would."""
    data = bytearray(path.read_bytes())
    group = pq.read_metadata(path).row_group(0)
    start = min(group.column(i).data_page_offset for i in range(group.num_columns))
    rnd = random.Random(7)
    for pos in rnd.sample(range(start, start + group.total_byte_size // 2), 40):
        data[pos] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_page_bytes])
def test_a_damaged_chunk_file_is_quarantined_and_every_other_entry_still_answers(
        start_server: Callable[..., Server], damage: Callable[[Path], None]) -> None:
    server = start_server()
    first, second, third = _flushed_files(server)
    original = first.read_bytes()
    damage(first)
    with server.client() as client:
        assert _metric(client, "chunk") == 0
        answer = query(client, '{app=~"a|b"}')
        assert lines(answer) == [f"{app} {n} {i}" for n, app in ((2, "a"), (1, "b")) for i in range(4, -1, -1)]
        kept = server.data_dir / quarantine_path(str(first.relative_to(server.data_dir)))
        assert kept.read_bytes() != original and kept.stat().st_size > 0 and not first.exists()
        assert second.exists() and third.exists()
        assert _metric(client, "chunk") == 1
        # metric queries, label values and series read the rest too, and nothing is quarantined twice
        r = client.get("/loki/api/v1/query", params={"query": 'sum(count_over_time({app=~"a|b"}[1h]))',
                                                     "time": BASE_NS + 3600 * 10**9})
        assert r.status_code == 200 and r.json()["data"]["result"][0]["value"][1] == "10"
        assert client.get("/loki/api/v1/label/app/values", params={"start": BASE_NS - 10**12}).json()["data"] == ["a", "b"]
        assert _metric(client, "chunk") == 1
    server.stop()
    # the index no longer names it: the store is consistent, and the file is listed as quarantined
    done = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "check", f"-common.path-prefix={server.data_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "consistent" in done.stdout and "quarantined (unreadable" in done.stdout and first.name in done.stdout
    server.start()
    with server.client() as client:
        assert len(lines(query(client, '{app=~"a|b"}'))) == 10


def test_a_file_that_is_not_damaged_is_never_quarantined(start_server: Callable[..., Server]) -> None:
    server = start_server()
    first, _, _ = _flushed_files(server)
    first.unlink()        # gone (not unreadable): the query fails as it did, nothing is moved
    with server.client() as client:
        r = client.get("/loki/api/v1/query_range", params={"query": '{app=~"a|b"}', "start": BASE_NS - 10**12,
                                                           "end": BASE_NS + 10**14})
        assert r.status_code == 500
        assert _metric(client, "chunk") == 0
    assert not (server.data_dir / TENANT / "quarantine").exists()


def _tenant_with_files(tmp_path: Path, count: int) -> tuple[TenantStore, list[str]]:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester(wal_enabled=False))
    for n in range(count):
        store.push(entries([({"app": "a"}, BASE_NS + n * 10**9 + i, f"line {n} {i}") for i in range(3)]))
        store.flush()
    return store, sorted(store.index.chunk_files)


def test_the_compactor_quarantines_a_file_it_cannot_read_and_compacts_the_rest_next_time(tmp_path: Path) -> None:
    store, files = _tenant_with_files(tmp_path, 3)
    _truncate(tmp_path / files[1])
    before = QUARANTINED.labels("chunk")._value.get()
    report = compact_tenant(store, grace_ns=0)            # meets the file: quarantines it, leaves the day
    assert report.merged_files == 0 and unreadable(store, files[0]) is None
    assert (tmp_path / quarantine_path(files[1])).exists() and not (tmp_path / files[1]).exists()
    assert QUARANTINED.labels("chunk")._value.get() == before + 1
    report = compact_tenant(store, grace_ns=0)
    assert report.merged_files == 2 and report.written_files == 1
    result = check_tenant(store.root, "t")
    assert result.problems == [] and result.rows == 6
    assert result.quarantined == [quarantine_path(files[1])]


def _segments(folder: Path, batches_per_segment: list[int]) -> WAL:
    wal = WAL(str(folder))
    n = 0
    for count in batches_per_segment:
        for _ in range(count):
            wal.write(entries([({"app": "a"}, BASE_NS + n, f"line {n}")]))
            n += 1
        wal.rotate()
    return wal


def _replayed(folder: Path) -> list[str]:
    return [line for batch in WAL(str(folder)).replay() for line in batch.column("line").to_pylist()]


def test_a_corrupted_wal_segment_replays_what_it_can_and_a_copy_is_quarantined(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    wal = _segments(folder, [3, 3, 3])
    second = folder / "0000000002.arrow"
    data = bytearray(second.read_bytes())
    data[len(data) * 2 // 3] ^= 0xFF                      # inside its second or third batch
    second.write_bytes(bytes(data))
    before = QUARANTINED.labels("wal")._value.get()
    replayed = _replayed(folder)
    assert replayed[:4] == ["line 0", "line 1", "line 2", "line 3"] and replayed[-3:] == ["line 6", "line 7", "line 8"]
    assert len(replayed) < 9
    kept = folder / "quarantine" / f"{wal.id}-0000000002.arrow"
    assert kept.read_bytes() == bytes(data)
    assert second.exists()                                # left until a flush retires it: nothing replayed is lost
    assert QUARANTINED.labels("wal")._value.get() == before + 1
    _replayed(folder)                                     # a second replay copies it once only
    assert QUARANTINED.labels("wal")._value.get() == before + 1


def test_only_a_torn_tail_of_the_newest_segment_is_what_a_crash_leaves(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    _segments(folder, [2, 2])
    newest = folder / "0000000002.arrow"
    newest.write_bytes(newest.read_bytes()[:-10])         # the batch being written when the process died
    assert _replayed(folder) == ["line 0", "line 1", "line 2"]
    assert not (folder / "quarantine").exists()
    older = folder / "0000000001.arrow"
    older.write_bytes(older.read_bytes()[:-10])           # a torn end anywhere else was not a crash
    assert _replayed(folder) == ["line 0", "line 2"]
    assert [p.name.split("-")[-1] for p in (folder / "quarantine").iterdir()] == ["0000000001.arrow"]


def test_a_server_starts_over_a_damaged_wal_and_reports_it(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as client:
        for batch in range(5):                            # five batches in segment 1
            push(client, {"app": "w"}, [[BASE_NS + batch * 10 + i, f"first {batch * 10 + i}"] for i in range(10)])
    server.kill()
    server.start()                                        # replays segment 1; new pushes go to segment 2
    with server.client() as client:
        push(client, {"app": "w"}, [[BASE_NS + 100 + i, f"second {i}"] for i in range(5)])
    server.kill()
    wal = server.data_dir / TENANT / "wal"
    first = wal / "0000000001.arrow"
    first.write_bytes(first.read_bytes()[:-40])           # an older segment torn: a disk fault
    server.start()
    with server.client() as client:
        got = lines(query(client, '{app="w"}'))
        assert got[:5] == [f"second {i}" for i in range(4, -1, -1)]
        assert got[5:] == [f"first {i}" for i in range(39, -1, -1)]    # its last batch is lost
        assert _metric(client, "wal") == 1
    assert len(list((wal / "quarantine").glob("*-0000000001.arrow"))) == 1
    assert "cannot be read to its end" in server.log_path.read_text()
