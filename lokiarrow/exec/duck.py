"""DuckDB connections: one in-memory database, one cursor per thread; and query deadlines.

DuckDB connections are not thread-safe; cursors of one database are. Queries run in the server's
thread pool, so each thread takes its own cursor. Threads are capped at the machine's cores.

A `Deadline` bounds the work one request runs in a worker thread (`query_timeout`; None: no time
limit, the request's client may still go away). Once its time has passed, or once it is expired
from another thread (`expire`: the time is up, or the client disconnected):
  1. the worker's next `cursor()` or `check_deadline()` raises QueryTimeout, so
     Python work stops there (it is not interrupted in between: long loops should call
     `check_deadline()` now and then);
  2. `expire` interrupts the DuckDB query the worker is running, and keeps interrupting every
     INTERRUPT_EVERY_S until the worker leaves the deadline's work (an interrupt that lands
     between two queries is lost: DuckDB forgets it when the next one starts);
  3. never touches the cursor once the worker has left, so later requests on that thread are safe.
Work stopped so is counted by why (`lokiarrow_query_work_stopped_total{reason}`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import duckdb
from prometheus_client import Counter

from lokiarrow.errors import LokiError

_local = threading.local()
_db: duckdb.DuckDBPyConnection | None = None
_lock = threading.Lock()

T = TypeVar("T")
SESSION_SETTINGS: list[str] = []   # run on each new cursor (`lokiarrow query` turns the progress bar on)
INTERRUPT_EVERY_S = 0.05
STOPPED = Counter("lokiarrow_query_work_stopped_total", "Queries whose work was stopped before its end",
                  ["reason"])
DEADLINE_EXCEEDED = ("request timed out, decrease the duration of the request or add more label matchers "
                     "(prefer exact match over regex match) to reduce the amount of data processed")


class QueryTimeout(LokiError):
    """A query ran past its tenant's `query_timeout`: Loki answers 504 with these words."""

    status = 504

    def __init__(self) -> None:
        super().__init__(DEADLINE_EXCEEDED)


def cursor() -> duckdb.DuckDBPyConnection:
    """The calling thread's cursor; QueryTimeout when the thread's work is past its deadline."""
    global _db
    cur = getattr(_local, "cursor", None)
    if cur is None:
        with _lock:
            if _db is None:
                _db = duckdb.connect(config={"threads": min(os.cpu_count() or 2, 4)})
                # keep Parquet footers between queries (chunk files never change once written):
                # a query then prunes row groups without re-reading them, 3-4 x faster on small scans
                _db.execute("LOAD parquet")
                _db.execute("SET parquet_metadata_cache = true")
            cur = _local.cursor = _db.cursor()
            for statement in SESSION_SETTINGS:
                cur.execute(statement)
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.attach(cur)
    return cur


def note_reads(paths: Iterable[str]) -> None:
    """Record the store files the calling thread's request is about to read: if it fails, those
    are the files to suspect (exec/broken_files.py). A no-op outside `Deadline.run`."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.reads.update(paths)


def check_deadline() -> None:
    """Raise QueryTimeout when the calling thread's work is past its deadline; cheap, and a no-op
    outside `Deadline.run`."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None and deadline.expired:
        raise QueryTimeout()


class Deadline:
    """The time limit of one piece of work run by `run` in a worker thread; `expire` ends it.

    Thread-safe. The worker sees the time pass by itself (at `cursor()` and `check_deadline()`);
    stopping a DuckDB query under way needs `expire`, called by whoever waits for the work when its
    time is up (lokiarrow/server/routes_query.py `run_query`).
    """

    def __init__(self, timeout_ns: int | None) -> None:
        self.at_ns = None if timeout_ns is None else time.monotonic_ns() + timeout_ns
        self._lock = threading.Lock()
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._expired = False
        self.reason = "timeout"
        self.reads: set[str] = set()     # store files the work read (note_reads)
        self._done = threading.Event()

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in this thread under the deadline; QueryTimeout once it has expired."""
        _local.deadline = self
        try:
            if self.expired:
                raise QueryTimeout()
            return fn(*args)
        except QueryTimeout:
            STOPPED.labels(self.reason).inc()
            raise
        except duckdb.InterruptException:
            if self.expired:
                STOPPED.labels(self.reason).inc()
                raise QueryTimeout() from None
            raise
        finally:
            with self._lock:
                self._done.set()
                self._cursor = None
            _local.deadline = None

    @property
    def expired(self) -> bool:
        return self._expired or (self.at_ns is not None and time.monotonic_ns() >= self.at_ns)

    def attach(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Called by `cursor()` in the worker: the cursor to interrupt from now on."""
        with self._lock:
            if self.expired:
                raise QueryTimeout()
            self._cursor = cur

    def expire(self, reason: str = "timeout") -> None:
        """End the work (`reason`: why, for the count): see the module's steps. Returns at once."""
        with self._lock:
            if self._expired or self._done.is_set():
                self._expired = True
                return
            self._expired = True
            self.reason = reason
        threading.Thread(target=self._interrupt, name="query-deadline", daemon=True).start()

    def _interrupt(self) -> None:
        while True:
            with self._lock:
                if self._done.is_set():
                    return
                if self._cursor is not None:
                    self._cursor.interrupt()
            if self._done.wait(INTERRUPT_EVERY_S):
                return
