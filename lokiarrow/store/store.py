"""All tenants' stores under one root, the background flusher and the compactor's timer.

Contract: `tenant(name)` creates a tenant's store on first use (loading its index and replaying
its WAL); `close()` flushes every head, so a clean shutdown leaves an empty WAL. `compact()` runs
the compactor (store/compactor.py) over every tenant, one run at a time; `start()` also runs it
every `compactor.compaction_interval` when that is not 0.

Roles (`-target`): `start(flush=, compact=, refresh_ns=)` runs the background work a process owns:
a writer flushes; the backend compacts; readers and the backend re-read the index files others
wrote every `refresh_ns` (`refresh()`: also tenants that appeared). A writer opened with
`load_index=False` keeps in memory only the streams it was sent.

`quarantine(tenant, chunk, reason)` takes an unreadable chunk file out of the tenant's queries
(store/quarantine.py); the process that compacts (the single binary, the backend) also moves it
and rewrites the index files naming it, between compaction runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from lokiarrow.config import Compactor, Ingester, Limits, Storage
from lokiarrow.store.compactor import Report, compact_tenant
from lokiarrow.store.fs import Root
from lokiarrow.store.head import Head
from lokiarrow.store.index import Index
from lokiarrow.store.quarantine import quarantine_chunk
from lokiarrow.store.retention import retention_of
from lokiarrow.store.tenant import Snapshot, TenantStore, wal_tenants

log = logging.getLogger(__name__)


class Store:
    def __init__(self, url: str, settings: Ingester, compactor: Compactor | None = None,
                 limits_of: Callable[[str], Limits] | None = None, storage: Storage | None = None,
                 load_index: bool = True) -> None:
        self.root = Root(url, storage)
        self.load_index = load_index
        self.refresh_ns = 0
        self._refresher: threading.Thread | None = None
        self.settings = settings
        self.compactor = compactor or Compactor()
        self.limits_of = limits_of or (lambda tenant: Limits())
        self._compacting = threading.Lock()
        self.owns_files = False     # compacts, so may rewrite index files: start(compact=True)
        self._compactor_thread: threading.Thread | None = None
        self._tenants: dict[str, TenantStore] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        for name in sorted(set(self.root.tenants()) | set(wal_tenants(self.root, settings))):
            self.tenant(name)

    def tenant(self, name: str) -> TenantStore:
        store = self._tenants.get(name)
        if store is None:
            with self._lock:
                store = self._tenants.get(name)
                if store is None:
                    store = self._tenants[name] = TenantStore(self.root, name, self.settings, self.load_index)
        return store

    def snapshot(self, name: str) -> Snapshot:
        """A tenant's data for a read: nothing (and nothing made, in memory or on disk) for a
        tenant this process does not know."""
        store = self._tenants.get(name)
        return store.snapshot() if store is not None else Snapshot((Head(),), Index(), self.root)

    def existing(self, name: str) -> TenantStore | None:
        """A tenant's store if this process has one (no store is created)."""
        return self._tenants.get(name)

    def refresh(self) -> None:
        """Read the index files other processes wrote since the last look, of every tenant, new
        tenants included (a tenant that fails is logged: it is tried again next time)."""
        for name in self.root.tenants():
            known = self._tenants.get(name)
            try:
                if known is None:
                    self.tenant(name)
                else:
                    known.refresh()
            except Exception:
                log.exception("cannot refresh the index of tenant %s", name)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_ns / 1e9):
            self.refresh()

    def tenants(self) -> list[TenantStore]:
        return list(self._tenants.values())

    def start(self, flush: bool = True, compact: bool = True, refresh_ns: int = 0) -> None:
        """Start the background threads: the flusher (it flushes heads that are big or old
        enough), the compactor's timer, the index refresher."""
        if flush:
            self._flusher = threading.Thread(target=self._flush_loop, name="flusher", daemon=True)
            self._flusher.start()
        self.refresh_ns = refresh_ns
        self.owns_files = compact
        if refresh_ns > 0:
            self._refresher = threading.Thread(target=self._refresh_loop, name="index-refresh", daemon=True)
            self._refresher.start()
        if compact and self.compactor.compaction_interval > 0:
            self._compactor_thread = threading.Thread(target=self._compact_loop, name="compactor", daemon=True)
            self._compactor_thread.start()

    def compact(self) -> dict[str, Report]:
        """One compaction run over every tenant (a tenant that fails is logged and skipped), with
        retention when `compactor.retention_enabled` (each tenant's limits: `limits_of`)."""
        reports = {}
        if self.refresh_ns:   # the backend: the files writers flushed since
            self.refresh()
        with self._compacting:
            for t in self.tenants():
                if self._stop.is_set():
                    break
                try:
                    enabled = self.compactor.retention_enabled
                    reports[t.tenant] = compact_tenant(
                        t, self.compactor.target_chunk_bytes, self.compactor.retention_delete_delay,
                        retention=retention_of(self.limits_of(t.tenant)) if enabled else None,
                        deletes_after_ns=self.compactor.delete_request_cancel_period if enabled else None)
                except Exception:  # the store stays correct (see the compactor): try again next time
                    log.exception("cannot compact tenant %s", t.tenant)
        return reports

    def quarantine(self, tenant: str, chunk: str, reason: str) -> None:
        store = self.tenant(tenant)
        if chunk not in store.index.chunk_files:   # taken out already (by another query)
            return
        if not self.owns_files:
            quarantine_chunk(store, chunk, reason, persist=False)
            return
        with self._compacting:
            if chunk in store.index.chunk_files:   # not already taken out by another query
                quarantine_chunk(store, chunk, reason)

    def _compact_loop(self) -> None:
        while not self._stop.wait(self.compactor.compaction_interval / 1e9):
            self.compact()

    def wake_flusher(self) -> None:
        self._wake.set()

    def _flush_loop(self) -> None:
        period = self.settings.flush_check_period / 1e9
        while not self._stop.is_set():
            self._wake.wait(period)
            self._wake.clear()
            for t in self.tenants():
                if t.needs_flush():
                    try:
                        t.flush()
                    except Exception:  # keep flushing other tenants; the head stays in memory and WAL
                        log.exception("cannot flush tenant %s", t.tenant)

    def flush_all(self) -> int:
        return sum(t.flush() for t in self.tenants())

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in (self._flusher, self._refresher):
            if thread is not None:
                thread.join()
        if self._compactor_thread is not None:
            self._compactor_thread.join()
        for t in self.tenants():
            t.close()
