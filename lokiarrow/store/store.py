"""All tenants' stores under one root, and the background flusher.

Contract: `tenant(name)` creates a tenant's store on first use (loading its index and replaying
its WAL); `close()` flushes every head, so a clean shutdown leaves an empty WAL.
"""

from __future__ import annotations

import logging
import threading

from lokiarrow.config import Ingester
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore

log = logging.getLogger(__name__)


class Store:
    def __init__(self, url: str, settings: Ingester) -> None:
        self.root = Root(url)
        self.settings = settings
        self._tenants: dict[str, TenantStore] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        for name in self.root.tenants():
            self.tenant(name)

    def tenant(self, name: str) -> TenantStore:
        store = self._tenants.get(name)
        if store is None:
            with self._lock:
                store = self._tenants.get(name)
                if store is None:
                    store = self._tenants[name] = TenantStore(self.root, name, self.settings)
        return store

    def tenants(self) -> list[TenantStore]:
        return list(self._tenants.values())

    def start(self) -> None:
        """Start the flusher thread: it flushes heads that are big or old enough."""
        self._flusher = threading.Thread(target=self._flush_loop, name="flusher", daemon=True)
        self._flusher.start()

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
        if self._flusher is not None:
            self._flusher.join()
        for t in self.tenants():
            t.close()
