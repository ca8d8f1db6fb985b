"""The store root: any fsspec URL (a local folder by default), with atomic writes.

Contract: `write_atomic` makes a file appear whole or not at all. On a local disk it writes a
temporary name, fsyncs and renames; on object stores a single put is already atomic. `lock()`
keeps a second process (a server, `lokiarrow compact`) off a local store while one uses it.

Reading: `full(relative)` names a file (a path, or a URL such as `s3://bucket/prefix/…` for object
storage); `readable(names)` turns such names into local paths every reader can open: the same
paths for a local root, copies in the root's disk cache (store/cache.py) for object storage, fetched
in parallel. Only immutable files (chunks, rollups, index files) may go through the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from lokiarrow.config import Storage
from lokiarrow.errors import LokiError
from lokiarrow.store.cache import FileCache
from lokiarrow.store.objects import filesystem

LOCK_FILE = ".lokiarrow.lock"
_REMOTE: dict[str, Root] = {}      # the URL prefix of each object storage root opened: whose cache reads it
_DOWNLOADS = ThreadPoolExecutor(8, thread_name_prefix="download")   # object storage answers in parallel


class StoreInUse(RuntimeError):
    pass


class Root:
    def __init__(self, url: str, storage: Storage | None = None) -> None:
        storage = storage or Storage()
        self.fs, path = filesystem(url, storage)
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.local = protocol in ("file", "local")
        self.path = os.path.abspath(path) if self.local else path.rstrip("/")
        self.url = self.path if self.local else f"{protocol}://{self.path.lstrip('/')}"
        self.cache: FileCache | None = None
        if not self.local:
            key = hashlib.sha1(self.url.encode()).hexdigest()[:12]
            self.cache = FileCache(os.path.join(storage.cache_location, key), storage.cache_size)
            _REMOTE[self.url] = self

    def check(self) -> None:
        """LokiError unless the root can be listed (a start fails with a message, not later)."""
        try:
            if not self.local and not self.fs.exists(self.path.split("/")[0]):
                raise LokiError(f"cannot open the store at {self.url}: the bucket does not exist")
            self.tenants()
        except OSError as exc:
            raise LokiError(f"cannot open the store at {self.url}: {exc}") from None

    def full(self, relative: str) -> str:
        """The name of a store file: its path on a local disk, its URL on object storage."""
        return f"{self.url}/{relative}"

    def _copy(self, relative: str) -> str:
        assert self.cache is not None
        return self.cache.local(relative, lambda target: self.fs.get_file(self.full(relative), target))

    def readable_path(self, relative: str) -> str:
        """A local path to read an immutable store file at (a cached copy for object storage)."""
        return self._copy(relative) if self.cache is not None else self.full(relative)

    def remove(self, relative: str) -> None:
        """Delete a store file (and its cached copy)."""
        self.fs.rm(self.full(relative))
        if self.cache is not None:
            self.cache.forget(relative)

    def write_atomic(self, relative: str, data: bytes | memoryview | Any) -> None:
        """Write `data` (anything with the buffer protocol) so the file appears whole."""
        target = self.full(relative)
        if not self.local:
            self.fs.pipe_file(target, bytes(data))
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def lock(self) -> IO[str] | None:
        """Hold the store's lock until the returned file is closed (None: an object store, which
        has no lock); StoreInUse when another process holds it."""
        if not self.local:
            return None
        os.makedirs(self.path, exist_ok=True)
        handle = open(os.path.join(self.path, LOCK_FILE), "a+")  # noqa: SIM115 (held by the caller)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreInUse(f"the store at {self.path} is in use by {holder}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"lokiarrow process {os.getpid()}")
        handle.flush()
        return handle

    def glob(self, pattern: str) -> list[str]:
        """Store-relative paths matching a pattern, sorted; temporary files excluded."""
        found = self.fs.glob(self.full(pattern))
        prefix = self.path.strip("/") + "/"
        out = []
        for p in found:
            p = p.lstrip("/")
            if p.endswith(".tmp"):
                continue
            out.append(p[len(prefix):] if p.startswith(prefix) else p)
        return sorted(out)

    def tenants(self) -> list[str]:
        if not self.fs.exists(self.path):
            return []
        return sorted(os.path.basename(p.rstrip("/")) for p in self.fs.ls(self.path, detail=False)
                      if self.fs.isdir(p))


def readable(names: Iterable[str]) -> list[str]:
    """Local paths for store file names (`Root.full`): unchanged for local roots; object storage
    files copied into their root's cache first (missing ones downloaded in parallel)."""
    names = list(names)
    remote = [n for n in names if "://" in n]
    if not remote:
        return names
    local = dict(zip(remote, _DOWNLOADS.map(_copy_of, remote), strict=True))
    return [local.get(n, n) for n in names]


def _copy_of(name: str) -> str:
    for prefix, root in _REMOTE.items():
        if name.startswith(prefix + "/"):
            return root._copy(name[len(prefix) + 1:])
    raise FileNotFoundError(f"no open store holds {name}")
