"""One tenant's store: WAL, head, the heads being flushed, and the index, kept consistent.

Contract:
- `push(batch)` returns only once the kept entries are durable in the WAL (group commit) and
  visible to `snapshot()`. It waits while a flush is under way and the head is full again. When
  the WAL cannot be written (a full disk) it fails with LokiError (500); the entries may stay in
  the head (a retry of the same push is kept once).
- `snapshot()` gives a consistent view for a query: the heads in memory plus the index rows of
  every chunk written so far. An entry is in exactly one of them at any moment: a flushed head
  leaves memory in the same step its index rows arrive.
- `flush()` writes the head out and retires the WAL segments it covered. One flush at a time.
  The index rows of what it wrote stay in `recent()` for `chunk_retain_period`: readers of a
  scaled-out deployment ask a writer for them until their own view of the index has them.
- `refresh()` reads index files other processes wrote since (readers, the backend).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from lokiarrow.config import Ingester
from lokiarrow.errors import LokiError
from lokiarrow.store import names
from lokiarrow.store.chunks import WAL_COMMIT_KEY, write_chunks
from lokiarrow.store.failpoints import failpoint
from lokiarrow.store.fs import Root, readable
from lokiarrow.store.head import Head
from lokiarrow.store.index import Index
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
    return root.full(names.wal_dir(tenant)) if folder is None else os.path.join(folder, tenant)


def wal_tenants(root: Root, settings: Ingester) -> list[str]:
    """The tenants with a WAL folder apart from the store's files (their entries may be nowhere else)."""
    folder = _wal_folder(root, settings)
    if folder is None or not settings.wal_enabled or not os.path.isdir(folder):
        return []
    return [name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name))]


SETTLE_SLACK_NS = 10 * 60 * 10**9   # index files older than the oldest WAL segment by more are not looked at


class TenantStore:
    def __init__(self, root: Root, tenant: str, settings: Ingester, load_index: bool = True) -> None:
        self.root = root
        self.tenant = tenant
        self.settings = settings
        self.index = Index()
        self.wal = WAL(_wal_path(root, tenant, settings)) if settings.wal_enabled else None
        if self.wal is not None:
            self._settle_wal(self.wal)
        if load_index:
            self.index.load(root, tenant)
        self.head = Head()
        self.flushing: list[Head] = []
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._flush_lock = threading.Lock()
        self._recent: list[tuple[float, pa.Table]] = []   # (when flushed, its index rows)
        if self.wal is not None:
            for batch in self.wal.replay():
                self._add(batch)

    def _settle_wal(self, wal: WAL) -> None:
        """Before the replay: segments a flush committed (all its index files were written, each
        naming this WAL and the segments it covered) are retired, so their entries are not stored
        twice; the index files of a flush that died half-way are deleted (the replay writes their
        entries again; their chunk files are left to the compactor's collection)."""
        oldest = wal.oldest_segment_ns()
        if oldest is None:
            return
        flushes: dict[int, list[tuple[str, int]]] = {}
        for path in self.root.glob(f"{names.literal(self.tenant)}/index/day=*/*.parquet"):
            if names.created_ns(path) < oldest - SETTLE_SLACK_NS:
                continue
            found = (pq.read_schema(self.root.readable_path(path)).metadata or {}).get(WAL_COMMIT_KEY)
            commit = json.loads(found) if found else {}
            if commit.get("wal") == wal.id:
                flushes.setdefault(int(commit["upto"]), []).append((path, int(commit["files"])))
        committed = 0
        for upto, files in sorted(flushes.items()):
            if len(files) == files[0][1]:
                committed = max(committed, upto)
            else:
                for path, _ in files:
                    self.root.remove(path)
        wal.retire(committed)

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
            try:
                ticket = self.wal.write(kept) if self.wal is not None and kept.num_rows else None
            except OSError as exc:
                raise LokiError(f"cannot write the WAL: {exc}") from None
        if ticket is not None and self.wal is not None:
            try:
                self.wal.sync(ticket)
            except OSError as exc:
                raise LokiError(f"cannot write the WAL: {exc}") from None
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
                commit = {"wal": self.wal.id, "upto": upto} if self.wal is not None else None
                rows = write_chunks(self.root, self.tenant, frozen.table(), frozen.streams,
                                    self.settings.row_group_size, self.settings.field_columns,
                                    self.settings.rollup_words, commit=commit)
            except BaseException:
                # keep the entries: back into the head (their WAL segments are not retired)
                with self._lock:
                    self.flushing.remove(frozen)
                    for batch in frozen.batches:
                        self.head.add(batch)
                    self._flushed.notify_all()
                raise
            failpoint("flush:written")
            with self._lock:
                self.index.add_rows(rows)
                self.flushing.remove(frozen)
                self._flushed.notify_all()
                self._recent = [*self._recent_within(), (time.monotonic(), rows)]
            if self.wal is not None:
                self.wal.retire(upto)
            return frozen.rows

    def flushes_paused(self) -> threading.Lock:
        """Held: no flush runs (one under way is waited for)."""
        return self._flush_lock

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
        listed = self.root.glob(f"{names.literal(self.tenant)}/index/day=*/*.parquet")
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
