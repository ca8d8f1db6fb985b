"""Local copies of files read from object storage: a bounded disk cache, least recently used out.

Store files never change once written (every name is new), so a copy stays right until the file
is deleted, and the cache needs no invalidation. Every reader (DuckDB, Arrow, Polars) then reads
a local file: a repeated query downloads nothing. Copies appear whole (downloaded under a
temporary name, then renamed). The bound is kept by removing the least recently used copies, but
never one handed out in the last `grace_s` seconds (a query may be about to open it), so a single
query larger than the cache may exceed it for a while. A restart keeps the copies (their
modification times order them).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import Counter

DOWNLOADS = Counter("lokiarrow_object_cache_downloads_total", "Files copied from object storage to the local cache")
DOWNLOADED_BYTES = Counter("lokiarrow_object_cache_downloaded_bytes_total", "Bytes copied from object storage")
HITS = Counter("lokiarrow_object_cache_hits_total", "Files read from the local cache without a download")


class FileCache:
    def __init__(self, directory: str, max_bytes: int, grace_s: float = 60.0) -> None:
        self.directory = os.path.abspath(directory)
        self.max_bytes = max_bytes
        self.grace_s = grace_s
        self._lock = threading.Lock()
        self._files: OrderedDict[str, tuple[int, float]] = OrderedDict()   # relative -> (size, last use)
        self.bytes = 0
        self._load()

    def _load(self) -> None:
        found = []
        for folder, _, names in os.walk(self.directory):
            for name in names:
                path = os.path.join(folder, name)
                if name.endswith(".part"):
                    os.unlink(path)   # an interrupted download
                    continue
                st = os.stat(path)
                found.append((st.st_mtime, os.path.relpath(path, self.directory), st.st_size))
        for mtime, relative, size in sorted(found):
            self._files[relative] = (size, mtime - self.grace_s)
            self.bytes += size

    def local(self, relative: str, download: Callable[[str], None]) -> str:
        """The local path of the copy of `relative`; `download(target)` writes it when absent."""
        target = os.path.join(self.directory, relative)
        with self._lock:
            known = self._files.get(relative)
            if known is not None and os.path.exists(target):
                self._files[relative] = (known[0], time.monotonic())
                self._files.move_to_end(relative)
                os.utime(target)    # the order after a restart
                HITS.inc()
                return target
        os.makedirs(os.path.dirname(target), exist_ok=True)
        part = f"{target}.{uuid.uuid4().hex}.part"
        try:
            download(part)
            os.replace(part, target)
        finally:
            if os.path.exists(part):
                os.unlink(part)
        size = os.path.getsize(target)
        DOWNLOADS.inc()
        DOWNLOADED_BYTES.inc(size)
        with self._lock:
            old = self._files.pop(relative, None)
            self.bytes += size - (old[0] if old else 0)
            self._files[relative] = (size, time.monotonic())
            self._evict()
        return target

    def _evict(self) -> None:
        now = time.monotonic()
        for relative, (size, used) in list(self._files.items()):
            if self.bytes <= self.max_bytes:
                return
            if now - used < self.grace_s:
                continue
            del self._files[relative]
            self.bytes -= size
            try:
                os.unlink(os.path.join(self.directory, relative))
            except FileNotFoundError:
                pass

    def forget(self, relative: str) -> None:
        """Drop the copy of a file deleted from the store."""
        with self._lock:
            known = self._files.pop(relative, None)
            if known is not None:
                self.bytes -= known[0]
        try:
            os.unlink(os.path.join(self.directory, relative))
        except FileNotFoundError:
            pass
