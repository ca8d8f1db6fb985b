"""One tenant's store: WAL, head, the heads being flushed, and the index, kept consistent.

Contract:
- `push(batch)` returns only once the kept entries are durable in the WAL (group commit) and
  visible to `snapshot()`. It waits while a flush is under way and the head is full again.
- `snapshot()` gives a consistent view for a query: the heads in memory plus the index rows of
  every chunk written so far. An entry is in exactly one of them at any moment: a flushed head
  leaves memory in the same step its index rows arrive.
- `flush()` writes the head out and retires the WAL segments it covered. One flush at a time.
  The index rows of what it wrote stay in `recent()` for `chunk_retain_period`: readers of a
  scaled-out deployment ask a writer for them until their own view of the index has them.
- `refresh()` reads index files other processes wrote since (readers, the backend).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import pyarrow as pa

from lokiarrow.config import Ingester
from lokiarrow.store.chunks import write_chunks
from lokiarrow.store.fs import Root, readable
from lokiarrow.store.head import Head
from lokiarrow.store.index import Index
from lokiarrow.store.names import wal_dir
from lokiarrow.store.schema import INDEX
from lokiarrow.store.wal import WAL


@dataclass(frozen=True)
class Snapshot:
    heads: tuple[Head, ...]
    index: Index
    root: Root


def _wal_folder(root: Root, settings: Ingester) -> str | None:
    """Where the WAL folders of tenants are when not beside their files: `ingester.wal.dir`, or
    ./wal (Loki's default) when the files are on object storage."""
    return settings.wal_dir or (None if root.local else "wal")


def _wal_path(root: Root, tenant: str, settings: Ingester) -> str:
    folder = _wal_folder(root, settings)
    return root.full(wal_dir(tenant)) if folder is None else os.path.join(folder, tenant)


def wal_tenants(root: Root, settings: Ingester) -> list[str]:
    """The tenants with a WAL folder apart from the store's files (their entries may be nowhere else)."""
    folder = _wal_folder(root, settings)
    if folder is None or not settings.wal_enabled or not os.path.isdir(folder):
        return []
    return [name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name))]


class TenantStore:
    def __init__(self, root: Root, tenant: str, settings: Ingester, load_index: bool = True) -> None:
        self.root = root
        self.tenant = tenant
        self.settings = settings
        self.index = Index()
        if load_index:
            self.index.load(root, tenant)
        self.head = Head()
        self.flushing: list[Head] = []
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._flush_lock = threading.Lock()
        self._recent: list[tuple[float, pa.Table]] = []   # (when flushed, its index rows)
        self.wal = WAL(_wal_path(root, tenant, settings)) if settings.wal_enabled else None
        if self.wal is not None:
            for batch in self.wal.replay():
                self._add(batch)

    def _add(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        kept, streams = self.head.add(batch)
        for sid, text in streams.items():
            self.index.streams.add(sid, text)
        return kept

    def push(self, batch: pa.RecordBatch) -> int:
        """Store a batch of ENTRIES; returns how many entries were new (not duplicates)."""
        with self._lock:
            # back-pressure: while a flush is under way, the new head may grow to one more flush's
            # worth, then pushes wait, so memory stays bounded when the disk is slower than clients
            while self.flushing and self.head.rows >= self.settings.flush_max_rows:
                self._flushed.wait(timeout=1.0)
            kept = self._add(batch)
            ticket = self.wal.write(kept) if self.wal is not None and kept.num_rows else None
        if ticket is not None and self.wal is not None:
            self.wal.sync(ticket)
        return kept.num_rows

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(tuple(self.flushing) + (self.head,), self.index, self.root)

    def needs_flush(self) -> bool:
        s = self.settings
        h = self.head
        return h.rows > 0 and (h.rows >= s.flush_max_rows or h.bytes >= s.flush_max_bytes
                               or h.age_seconds() * 1e9 >= s.max_chunk_age)

    def flush(self) -> int:
        """Write the head to chunk files; returns the number of entries written."""
        with self._flush_lock:
            with self._lock:
                if self.head.rows == 0:
                    return 0
                frozen = self.head
                self.head = Head()
                self.flushing.append(frozen)
                upto = self.wal.rotate() if self.wal is not None else 0
            try:
                rows = write_chunks(self.root, self.tenant, frozen.table(), frozen.streams,
                                    self.settings.row_group_size, self.settings.field_columns,
                                    self.settings.rollup_words)
            except BaseException:
                # keep the entries: back into the head (their WAL segments are not retired)
                with self._lock:
                    self.flushing.remove(frozen)
                    for batch in frozen.batches:
                        self.head.add(batch)
                    self._flushed.notify_all()
                raise
            with self._lock:
                self.index.add_rows(rows)
                self.flushing.remove(frozen)
                self._flushed.notify_all()
                self._recent = [*self._recent_within(), (time.monotonic(), rows)]
            if self.wal is not None:
                self.wal.retire(upto)
            return frozen.rows

    def _recent_within(self) -> list[tuple[float, pa.Table]]:
        oldest = time.monotonic() - self.settings.chunk_retain_period / 1e9
        return [(at, rows) for at, rows in self._recent if at >= oldest]

    def recent(self) -> pa.Table:
        """The index rows (INDEX schema) of the chunk files flushed within `chunk_retain_period`."""
        with self._lock:
            kept = self._recent_within()
        return pa.concat_tables([rows for _, rows in kept]) if kept else INDEX.empty_table()

    def refresh(self) -> None:
        """Read the index files written elsewhere since the last look (store/index.py `load`);
        new files are fetched before queries are held up by the swap."""
        listed = self.root.glob(f"{self.tenant}/index/day=*/*.parquet")
        readable(self.root.full(f) for f in listed if f not in self.index.files)
        with self._lock:
            self.index.load(self.root, self.tenant)

    def replace_index_rows(self, chunks: list[str], rows: pa.Table) -> None:
        """The compactor's swap: the rows of `chunks` out of the index, `rows` in."""
        with self._lock:
            self.index.replace(chunks, rows)

    def close(self) -> None:
        self.flush()
        if self.wal is not None:
            self.wal.close()
