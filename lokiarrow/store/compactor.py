"""Compaction: a day's many small chunk files (one per flush and hour) merged into few large ones,
the day's index files into one, expired streams (store/retention.py) and deleted lines
(store/deletes.py) left out, while queries and pushes go on.

Per tenant and day, in steps that each leave a correct store if the process dies after them:
1. Collect: files no live index file names (replaced by an earlier run, or left by one that died)
   are deleted once `grace` has passed since they were replaced (or created): a query that took
   its file list before the swap has had time to finish reading them.
2. Read the day's live index files; drop the rows of expired streams. Per UTC hour, the chunk
   files are taken in creation order and grouped up to `target_bytes` of lines; a group of two or
   more files, or one holding expired streams or deleted lines, is read and written again as one
   sorted file (with its rollup) without them, and without an index file.
3. Publish one index file holding every row of the day, the rewritten files' rows replaced by the
   new files' rows; its footer names the index files it supersedes (store/index.py), so the
   replacement is one atomic write. A run that dies before this leaves only unreferenced new
   chunk files, which step 1 removes later.
4. Swap the tenant's in-memory index (queries now read the new files), under the tenant's lock.
Other rows are kept as they are: a query answers the same before, during and after a run.
A chunk file that cannot be read is quarantined (store/quarantine.py) and its day left to the next run.

`LOKIARROW_FAILPOINT=compactor:<step>` (written, published, swapped, collecting) makes the process
exit at once at that step: the crash tests kill runs there.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lokiarrow.model import Labels
from lokiarrow.store import names
from lokiarrow.store.chunks import NS_PER_HOUR, write_chunks, write_index
from lokiarrow.store.deletes import DeleteRequests, Deletion
from lokiarrow.store.failpoints import failpoint
from lokiarrow.store.index import SUPERSEDES_KEY, live_index_files, superseded_by
from lokiarrow.store.quarantine import BROKEN, quarantine_chunk, unreadable
from lokiarrow.store.retention import KEEP_FOREVER, Retention
from lokiarrow.store.schema import CHUNK, INDEX
from lokiarrow.store.tenant import TenantStore

log = logging.getLogger(__name__)

DEFAULT_TARGET_BYTES = 256 << 20   # of lines per compacted file
DEFAULT_GRACE_NS = 10 * 60 * 10**9
ZSTD_LEVEL = 6   # files written once and read for days: ~6 % smaller than a flush's level 1, 1.6x the time


def _failpoint(step: str) -> None:
    failpoint(f"compactor:{step}")


@dataclass
class Report:
    """What one run did, for logs, metrics and tests."""

    days: int = 0
    merged_files: int = 0
    written_files: int = 0
    superseded_index_files: int = 0
    expired_rows: int = 0
    deletes_processed: int = 0
    deleted_files: list[str] = field(default_factory=list)


def compact_tenant(tenant: TenantStore, target_bytes: int = DEFAULT_TARGET_BYTES,
                   grace_ns: int = DEFAULT_GRACE_NS, now_ns: int | None = None,
                   retention: Retention | None = None, deletes_after_ns: int | None = None) -> Report:
    """One compaction run over a tenant (steps 1-4 for every day with index files). With
    `deletes_after_ns`, the delete requests received at least that long ago are applied too (their
    lines are left out where files are written again, with the head flushed first) and marked
    processed once every day is done."""
    report = Report()
    now = time.time_ns() if now_ns is None else now_ns
    # no flush of this process may be between its chunk files and its index file meanwhile: its
    # chunk files would look like a dead run's (other processes' flushes: the grace covers them)
    with tenant.flushes_paused():
        collect(tenant, grace_ns, now, report)
    requests = DeleteRequests(tenant.root, tenant.tenant)
    due = [] if deletes_after_ns is None else requests.due(now // 10**6, deletes_after_ns // 10**6)
    deletion = Deletion.of(due) if due else None
    if deletion is not None:
        tenant.flush()
    days = sorted({_day(path) for path in tenant.root.glob(f"{names.literal(tenant.tenant)}/index/day=*/*.parquet")})
    for day in days:
        compact_day(tenant, day, target_bytes, report, retention or KEEP_FOREVER, now, deletion)
    if due:
        requests.mark_processed({r.request_id for r in due})
        report.deletes_processed += len(due)
    return report


def compact_day(tenant: TenantStore, day: str, target_bytes: int, report: Report,
                retention: Retention = KEEP_FOREVER, now_ns: int = 0, deletion: Deletion | None = None) -> None:
    root, name = tenant.root, tenant.tenant
    live = live_index_files(root, name, day)
    if not live:
        return
    rows = pa.concat_tables([t.select(INDEX.names).cast(INDEX) for t in live.values()])
    streams = dict(zip(rows.column("stream_id").to_pylist(), rows.column("labels").to_pylist(), strict=True))
    expired = retention.expired(rows, tenant.index.streams.labels, now_ns)
    dropped = rows.filter(expired)
    rows = rows.filter(pc.invert(expired))
    labels_of = tenant.index.streams.labels
    # files that keep some rows but lose others (expired streams, deleted lines) are written again
    dirty = set(dropped.column("chunk").to_pylist()) & set(rows.column("chunk").to_pylist())
    if deletion is not None:
        dirty |= {chunk for chunk, sid, lo, hi in zip(*(rows.column(c).to_pylist() for c in
                                                       ("chunk", "stream_id", "min_ts", "max_ts")), strict=True)
                  if deletion.touches(labels_of[sid], lo, hi)}
    if len(live) < 2 and not dropped.num_rows and not dirty:
        return
    wanted = _streams_per_chunk(rows)
    merged: list[str] = []
    written: list[pa.Table] = []
    for group in _groups(rows, target_bytes):
        if len(group) < 2 and not dirty.intersection(group):
            continue
        s = tenant.settings
        try:
            # the group's entries go straight in: write_chunks holds the only reference, and drops
            # it once sorted, so the unsorted copy is not kept alive beside the sorted one
            written.append(write_chunks(root, name, pa.concat_tables(
                [_read_chunk(root.readable_path(path), wanted[path], deletion, labels_of) if path in dirty
                 else _read_chunk(root.readable_path(path)) for path in group]),
                streams, s.row_group_size, s.field_columns, s.rollup_words, index_files=False, level=ZSTD_LEVEL))
        except BROKEN:
            # an unreadable file leaves the store, and the day waits for the next run (this run's
            # `live` is stale now; its new files are unreferenced: collected later)
            if not _quarantine_unreadable(tenant, group):
                raise
            return
        merged += group
        report.merged_files += len(group)
        report.written_files += 1
        _failpoint("written")
    report.days += 1
    report.expired_rows += sum(dropped.column("rows").to_pylist())
    gone = pa.array(merged, pa.string())
    kept = rows.filter(pc.invert(pc.is_in(rows.column("chunk"), value_set=gone)))
    day_rows = pa.concat_tables([kept, *written]).sort_by([("chunk", "ascending"), ("stream_id", "ascending")])
    path = names.index_path(name, day, f"{names.new_segment_name(now_ns or None)}-day")
    write_index(root, path, day_rows, {SUPERSEDES_KEY: json.dumps(sorted(live)).encode()})
    report.superseded_index_files += len(live)
    _failpoint("published")
    tenant.replace_index_rows(merged + dropped.column("chunk").to_pylist(),
                              pa.concat_tables(written) if written else INDEX.empty_table())
    _failpoint("swapped")


def _quarantine_unreadable(tenant: TenantStore, group: list[str]) -> bool:
    """Quarantine the files of a group that cannot be read; whether there was one."""
    found = False
    for path in group:
        reason = unreadable(tenant, path)
        if reason is not None:
            quarantine_chunk(tenant, path, reason)
            found = True
    return found


def _streams_per_chunk(rows: pa.Table) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for chunk, sid in zip(rows.column("chunk").to_pylist(), rows.column("stream_id").to_pylist(), strict=True):
        out.setdefault(chunk, set()).add(sid)
    return out


def _read_chunk(path: str, streams: set[int] | None = None, deletion: Deletion | None = None,
                labels_of: dict[int, Labels] | None = None) -> pa.Table:
    """A chunk file's entries: only those of `streams` (when given), without the deleted ones."""
    table = pq.read_table(path, columns=CHUNK.names).cast(CHUNK)
    if streams is not None:
        table = table.filter(pc.is_in(table.column("stream_id"), value_set=pa.array(sorted(streams), pa.int64())))
    if deletion is not None and labels_of is not None and table.num_rows:
        table = table.filter(pc.invert(deletion.doomed(table, labels_of)))
    return table


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
    """Step 1: delete the files no live index file names, once `grace_ns` has passed since they
    were left: a superseded index file and the chunk files only it named, since the creation of
    the file that superseded it; any other unnamed chunk file (a dead run's) since its creation.
    Chunk and rollup files go before the index files that say when they were replaced."""
    root, name = tenant.root, names.literal(tenant.tenant)
    tables = {f: pq.read_table(root.readable_path(f), columns=["chunk"]) for f in root.glob(f"{name}/index/day=*/*.parquet")}
    replaced_at = {old: names.created_ns(path) for path, t in tables.items() for old in superseded_by(t)}
    live = {f: t for f, t in tables.items() if f not in replaced_at}
    referenced = {c for t in live.values() for c in pc.unique(t.column("chunk")).to_pylist()}
    chunk_left: dict[str, int] = {}
    for path, at in replaced_at.items():
        if path in tables:
            for chunk in pc.unique(tables[path].column("chunk")).to_pylist():
                chunk_left[chunk] = max(chunk_left.get(chunk, 0), at)
    unused = [(p, chunk_left.get(p, names.created_ns(p)))
              for p in root.glob(f"{name}/chunks/day=*/*.parquet") if p not in referenced]
    unused += [(p, chunk_left.get(names.chunk_of(p), names.created_ns(p)))
               for p in root.glob(f"{name}/rollups/day=*/*.parquet") if names.chunk_of(p) not in referenced]
    unused += [(p, replaced_at[p]) for p in tables if p in replaced_at]
    for path, left in unused:
        if now_ns - left >= grace_ns:
            root.remove(path)
            report.deleted_files.append(path)
            _failpoint("collecting")
    # an empty index file (a day retention emptied) goes once nothing it supersedes is left
    present = set(root.glob(f"{name}/index/day=*/*.parquet"))
    for path, table in live.items():
        if table.num_rows == 0 and not present.intersection(superseded_by(table)):
            root.remove(path)
            report.deleted_files.append(path)
    if root.local:
        for kind in ("chunks", "index", "rollups"):
            for folder in glob.glob(root.full(f"{name}/{kind}/day=*")):
                if not os.listdir(folder):
                    os.rmdir(folder)


def _day(path: str) -> str:
    return path.split("/")[2].removeprefix("day=")
