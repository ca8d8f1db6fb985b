"""The store root: any fsspec URL (a local folder by default), with atomic writes.

Contract: `write_atomic` makes a file appear whole or not at all. On a local disk it writes a
temporary name, fsyncs and renames; on object stores a single put is already atomic. `lock()`
keeps a second process (a server, `lokiarrow compact`) off a local store while one uses it.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from typing import IO, Any

import fsspec

LOCK_FILE = ".lokiarrow.lock"


class StoreInUse(RuntimeError):
    pass


class Root:
    def __init__(self, url: str) -> None:
        self.fs, path = fsspec.core.url_to_fs(url)
        self.local = self.fs.protocol in ("file", ("file", "local")) or "file" in self.fs.protocol
        self.path = os.path.abspath(path) if self.local else path.rstrip("/")

    def full(self, relative: str) -> str:
        """The path of a store file as the filesystem (and DuckDB, for local roots) names it."""
        return f"{self.path}/{relative}"

    def local_path(self, relative: str) -> str:
        if not self.local:
            raise ValueError("cannot keep a WAL on object storage: the WAL needs a local disk")
        return self.full(relative)

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
        prefix = self.path.rstrip("/") + "/"
        out = []
        for p in found:
            p = p if p.startswith("/") or not self.local else "/" + p
            if p.endswith(".tmp"):
                continue
            out.append(p[len(prefix):] if p.startswith(prefix) else p)
        return sorted(out)

    def tenants(self) -> list[str]:
        if not self.fs.exists(self.path):
            return []
        return sorted(os.path.basename(p.rstrip("/")) for p in self.fs.ls(self.path, detail=False)
                      if self.fs.isdir(p))
