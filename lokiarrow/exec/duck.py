"""DuckDB connections: one in-memory database, one cursor per thread.

DuckDB connections are not thread-safe; cursors of one database are. Queries run in the server's
thread pool, so each thread takes its own cursor. Threads are capped at the machine's cores.
"""

from __future__ import annotations

import os
import threading

import duckdb

_local = threading.local()
_db: duckdb.DuckDBPyConnection | None = None
_lock = threading.Lock()


def cursor() -> duckdb.DuckDBPyConnection:
    global _db
    cur = getattr(_local, "cursor", None)
    if cur is None:
        with _lock:
            if _db is None:
                # the object cache keeps Parquet footers between queries: chunk files never change
                _db = duckdb.connect(config={"threads": min(os.cpu_count() or 2, 4), "enable_object_cache": True})
            cur = _local.cursor = _db.cursor()
    return cur
