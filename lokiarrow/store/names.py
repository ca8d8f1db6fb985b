"""Where each file of a tenant lives under the store root, and how new files are named.

Names are unique per writer without coordination: the creation time in ns, a per-process random
writer id and a sequence number, so several writers can share one object store.
"""

from __future__ import annotations

import glob
import itertools
import os
import time
from datetime import UTC, datetime

NS_PER_DAY = 86_400 * 10**9
_WRITER = os.urandom(4).hex()
_SEQ = itertools.count()


def day_of(ts_ns: int) -> str:
    """The UTC day (`YYYY-MM-DD`) a timestamp falls in: the partition it is stored under."""
    return datetime.fromtimestamp(ts_ns // 10**9, UTC).strftime("%Y-%m-%d")


def new_segment_name(now_ns: int | None = None) -> str:
    """A new file's name: its creation time (now, or the caller's clock), writer and sequence."""
    return f"{time.time_ns() if now_ns is None else now_ns:020d}-{_WRITER}-{next(_SEQ):06d}"


def chunk_path(tenant: str, day: str, segment: str) -> str:
    return f"{tenant}/chunks/day={day}/{segment}.parquet"


def index_path(tenant: str, day: str, segment: str) -> str:
    return f"{tenant}/index/day={day}/{segment}.parquet"


def rollup_path(tenant: str, day: str, segment: str) -> str:
    return f"{tenant}/rollups/day={day}/{segment}.parquet"


def rollup_of(chunk: str) -> str:
    """The rollup file beside a chunk file (full paths or URLs alike)."""
    head, _, tail = chunk.rpartition("/chunks/")
    return f"{head}/rollups/{tail}"


def chunk_of(rollup: str) -> str:
    """The chunk file a rollup file belongs to."""
    head, _, tail = rollup.rpartition("/rollups/")
    return f"{head}/chunks/{tail}"


def created_ns(path: str) -> int:
    """When a store file was created, from its name (new_segment_name); 0 if it does not say."""
    stem = path.rsplit("/", 1)[-1].split("-", 1)[0]
    return int(stem) if stem.isdigit() else 0


def literal(name: str) -> str:
    """A tenant id as a glob pattern matching only itself: Loki's tenant ids may hold `*`, and
    the tenant `*` must not read (or compact) every tenant's files."""
    return glob.escape(name)


def wal_dir(tenant: str) -> str:
    return f"{tenant}/wal"
