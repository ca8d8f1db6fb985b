"""The disk cache of object storage files: one download per file, a size bound kept by least
recent use, copies that survive a restart, and nothing half-written left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lokiarrow.store.cache import FileCache


class Origin:
    """Stands in for the bucket: counts what is fetched from it."""

    def __init__(self, size: int = 100) -> None:
        self.size = size
        self.fetched: list[str] = []

    def download(self, name: str):  # type: ignore[no-untyped-def]
        def write(target: str) -> None:
            self.fetched.append(name)
            Path(target).write_bytes(name.encode().ljust(self.size, b"."))
        return write


def test_a_file_is_downloaded_once_then_read_locally(tmp_path: Path) -> None:
    cache, origin = FileCache(str(tmp_path), 10_000), Origin()
    first = cache.local("t/chunks/day=2026-01-01/a.parquet", origin.download("a"))
    again = cache.local("t/chunks/day=2026-01-01/a.parquet", origin.download("a"))
    assert first == again == str(tmp_path / "t/chunks/day=2026-01-01/a.parquet")
    assert Path(first).read_bytes().startswith(b"a.")
    assert origin.fetched == ["a"]
    assert cache.bytes == 100


def test_the_least_recently_used_copies_leave_first(tmp_path: Path) -> None:
    cache, origin = FileCache(str(tmp_path), 300, grace_s=0), Origin()
    for name in "abc":
        cache.local(name, origin.download(name))
    cache.local("a", origin.download("a"))           # a is now the most recent
    cache.local("d", origin.download("d"))           # over the bound: b goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c", "d"]
    assert cache.bytes == 300
    cache.local("b", origin.download("b"))           # fetched again: c goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "d"]
    assert origin.fetched == ["a", "b", "c", "d", "b"]


def test_copies_handed_out_recently_stay_even_over_the_bound(tmp_path: Path) -> None:
    cache, origin = FileCache(str(tmp_path), 150, grace_s=3600), Origin()
    for name in "abc":
        cache.local(name, origin.download(name))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]   # a query may be about to open them
    assert cache.bytes == 300


def test_a_restart_keeps_the_copies_and_drops_half_downloads(tmp_path: Path) -> None:
    cache, origin = FileCache(str(tmp_path), 10_000), Origin()
    cache.local("x/one", origin.download("one"))
    (tmp_path / "x" / "two.0123.part").write_bytes(b"interrupted")
    again = FileCache(str(tmp_path), 10_000)
    assert again.bytes == 100
    assert not (tmp_path / "x" / "two.0123.part").exists()
    again.local("x/one", origin.download("one"))
    assert origin.fetched == ["one"]


def test_a_failed_download_leaves_nothing(tmp_path: Path) -> None:
    cache = FileCache(str(tmp_path), 10_000)

    def broken(target: str) -> None:
        Path(target).write_bytes(b"partial")
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        cache.local("t/a", broken)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert cache.bytes == 0


def test_forget_removes_a_deleted_files_copy(tmp_path: Path) -> None:
    cache, origin = FileCache(str(tmp_path), 10_000), Origin()
    path = cache.local("t/a", origin.download("a"))
    cache.forget("t/a")
    assert not Path(path).exists() and cache.bytes == 0
