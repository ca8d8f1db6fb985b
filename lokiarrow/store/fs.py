"""The store root: any fsspec URL (a local folder by default), with atomic writes.

Contract: `write_atomic` makes a file appear whole or not at all. On a local disk it writes a
temporary name, fsyncs and renames; on object stores a single put is already atomic.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import fsspec


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
