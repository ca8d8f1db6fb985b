"""Compaction: a day's many small chunk files (one per flush and hour) merged into few large ones,
and the day's index files into one, while queries and pushes go on.

Per tenant and day, in steps that each leave a correct store if the process dies after them:
1. Collect: files no live index file names (left by a run that died, or replaced by the last run)
   are deleted once older than `grace` (their name starts with their creation time): a query
   that took its file list before the last swap has had time to finish reading them.
2. Read the day's live index files. Per UTC hour, the chunk files are taken in creation order
   and grouped up to `target_bytes` of lines; a group of two or more files is read and written
   again as one sorted file (with its rollup), without an index file.
3. Publish one index file holding every row of the day, the merged files' rows replaced by the
   new files' rows; its footer names the index files it supersedes (store/index.py), so the
   replacement is one atomic write. A run that dies before this leaves only unreferenced new
   chunk files, which step 1 removes later.
4. Swap the tenant's in-memory index (queries now read the new files), under the tenant's lock.
Rows are kept as they are: a query answers the same entries before, during and after a run.

`LOKIARROW_FAILPOINT=compactor:<step>` (written, published, swapped, collecting) makes the process
exit at once at that step: the crash tests kill runs there.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lokiarrow.store import names
from lokiarrow.store.chunks import NS_PER_HOUR, write_chunks, write_index
from lokiarrow.store.index import SUPERSEDES_KEY, live_index_files, superseded_by
from lokiarrow.store.schema import CHUNK, INDEX
from lokiarrow.store.tenant import TenantStore

log = logging.getLogger(__name__)

DEFAULT_TARGET_BYTES = 256 << 20   # of lines per compacted file
DEFAULT_GRACE_NS = 10 * 60 * 10**9
_FAILPOINT = os.environ.get("LOKIARROW_FAILPOINT", "")


def _failpoint(step: str) -> None:
    if _FAILPOINT == f"compactor:{step}":
        log.warning("failpoint %s: exiting", _FAILPOINT)
        os._exit(137)


@dataclass
class Report:
    """What one run did, for logs, metrics and tests."""

    days: int = 0
    merged_files: int = 0
    written_files: int = 0
    superseded_index_files: int = 0
    deleted_files: list[str] = field(default_factory=list)


def compact_tenant(tenant: TenantStore, target_bytes: int = DEFAULT_TARGET_BYTES,
                   grace_ns: int = DEFAULT_GRACE_NS, now_ns: int | None = None) -> Report:
    """One compaction run over a tenant (steps 1-4 for every day with index files)."""
    report = Report()
    now = time.time_ns() if now_ns is None else now_ns
    collect(tenant, grace_ns, now, report)
    days = sorted({_day(path) for path in tenant.root.glob(f"{tenant.tenant}/index/day=*/*.parquet")})
    for day in days:
        compact_day(tenant, day, target_bytes, report)
    return report


def compact_day(tenant: TenantStore, day: str, target_bytes: int, report: Report) -> None:
    root, name = tenant.root, tenant.tenant
    live = live_index_files(root, name, day)
    if len(live) < 2:
        return
    rows = pa.concat_tables([t.select(INDEX.names).cast(INDEX) for t in live.values()])
    streams = dict(zip(rows.column("stream_id").to_pylist(), rows.column("labels").to_pylist(), strict=True))
    merged: list[str] = []
    written: list[pa.Table] = []
    for group in _groups(rows, target_bytes):
        if len(group) < 2:
            continue
        entries = pa.concat_tables([pq.read_table(root.full(path), columns=CHUNK.names).cast(CHUNK) for path in group])
        s = tenant.settings
        written.append(write_chunks(root, name, entries, streams, s.row_group_size, s.field_columns,
                                    s.rollup_words, index_files=False))
        merged += group
        report.merged_files += len(group)
        report.written_files += 1
        _failpoint("written")
    report.days += 1
    gone = pa.array(merged, pa.string())
    kept = rows.filter(pc.invert(pc.is_in(rows.column("chunk"), value_set=gone)))
    day_rows = pa.concat_tables([kept, *written]).sort_by([("chunk", "ascending"), ("stream_id", "ascending")])
    path = names.index_path(name, day, f"{names.new_segment_name()}-day")
    write_index(root, path, day_rows, {SUPERSEDES_KEY: json.dumps(sorted(live)).encode()})
    report.superseded_index_files += len(live)
    _failpoint("published")
    tenant.replace_index_rows(merged, pa.concat_tables(written) if written else INDEX.empty_table())
    _failpoint("swapped")


def _groups(rows: pa.Table, target_bytes: int) -> list[list[str]]:
    """Per UTC hour, the chunk files in creation order (their names sort so), grouped up to
    `target_bytes` of lines."""
    per_file = rows.group_by("chunk", use_threads=False).aggregate([("min_ts", "min"), ("bytes", "sum")])
    files = sorted(zip(per_file.column("chunk").to_pylist(), per_file.column("min_ts_min").to_pylist(),
                       per_file.column("bytes_sum").to_pylist(), strict=True),
                   key=lambda f: (f[1] // NS_PER_HOUR, f[0]))
    groups: list[list[str]] = []
    hour, size = None, 0
    for path, min_ts, nbytes in files:
        if min_ts // NS_PER_HOUR != hour or size + nbytes > target_bytes:
            groups.append([])
            hour, size = min_ts // NS_PER_HOUR, 0
        groups[-1].append(path)
        size += nbytes
    return groups


def collect(tenant: TenantStore, grace_ns: int, now_ns: int, report: Report) -> None:
    """Step 1: delete superseded index files, and chunk and rollup files no live index row
    names, once `grace_ns` has passed since they were left: since their day's last replacement
    (the newest live index file that supersedes others), or since their creation if later."""
    root, name = tenant.root, tenant.tenant
    all_index = root.glob(f"{name}/index/day=*/*.parquet")
    live = live_index_files(root, name)
    referenced = {c for t in live.values() for c in pc.unique(t.column("chunk")).to_pylist()}
    replaced_at: dict[str, int] = {}
    for path, table in live.items():
        if superseded_by(table):
            day = _day(path)
            replaced_at[day] = max(replaced_at.get(day, 0), names.created_ns(path))
    unused = [p for p in all_index if p not in live]
    unused += [p for p in root.glob(f"{name}/chunks/day=*/*.parquet") if p not in referenced]
    unused += [p for p in root.glob(f"{name}/rollups/day=*/*.parquet") if names.chunk_of(p) not in referenced]
    for path in unused:
        left = max(names.created_ns(path), replaced_at.get(_day(path), 0))
        if now_ns - left >= grace_ns:
            root.fs.rm(root.full(path))
            report.deleted_files.append(path)
            _failpoint("collecting")


def _day(path: str) -> str:
    return path.split("/")[2].removeprefix("day=")
