"""`lokiarrow check`: is a store consistent? Every live index row must point at a chunk file that
exists, opens, and holds exactly the rows the index says, per stream, within its time span; files
no live index names are orphans (a run that died before publishing, or files a compaction
replaced): they are reported, and the compactor deletes them after `compactor.retention_delete_delay`.
Files quarantined as unreadable (store/quarantine.py) are listed too: they are out of the store.

It reads every chunk file's stream and time columns (not its lines), so it costs a scan of two
integer columns of the whole store. It never writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from lokiarrow.store import names
from lokiarrow.store.fs import Root
from lokiarrow.store.index import live_index_files
from lokiarrow.store.quarantine import FOLDER
from lokiarrow.store.schema import INDEX


@dataclass
class TenantReport:
    tenant: str
    index_files: int = 0
    chunk_files: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


def check_store(root: Root) -> list[TenantReport]:
    return [check_tenant(root, tenant) for tenant in root.tenants()]


def check_tenant(root: Root, tenant: str) -> TenantReport:
    report = TenantReport(tenant)
    try:
        live = live_index_files(root, tenant)
    except (OSError, pa.ArrowException) as exc:
        report.problems.append(f"an index file cannot be read: {exc}")
        return report
    report.index_files = len(live)
    rows = pa.concat_tables([t.select(INDEX.names).cast(INDEX) for t in live.values()]) if live else INDEX.empty_table()
    expected = rows.group_by(["chunk", "stream_id"], use_threads=False).aggregate(
        [("rows", "sum"), ("min_ts", "min"), ("max_ts", "max")])
    by_chunk: dict[str, dict[int, tuple[int, int, int]]] = {}
    for chunk, sid, n, lo, hi in zip(*(expected.column(c).to_pylist() for c in
                                       ("chunk", "stream_id", "rows_sum", "min_ts_min", "max_ts_max")), strict=True):
        by_chunk.setdefault(chunk, {})[sid] = (n, lo, hi)
    present = set(root.glob(f"{names.literal(tenant)}/chunks/day=*/*.parquet"))
    for chunk in sorted(by_chunk):
        report.chunk_files += 1
        if chunk not in present:
            report.problems.append(f"{chunk}: named by the index, missing")
            continue
        try:
            found = _streams_in(root.readable_path(chunk))
        except (OSError, pa.ArrowException) as exc:
            report.problems.append(f"{chunk}: cannot be read: {exc}")
            continue
        report.rows += sum(n for n, _, _ in found.values())
        for sid, (n, lo, hi) in sorted(by_chunk[chunk].items()):
            got = found.pop(sid, None)
            if got is None:
                report.problems.append(f"{chunk}: stream {sid} is in the index ({n} rows), not in the file")
            elif got[0] != n:
                report.problems.append(f"{chunk}: stream {sid} has {got[0]} rows, the index says {n}")
            elif got[1] < lo or got[2] > hi:
                report.problems.append(f"{chunk}: stream {sid} spans [{got[1]}, {got[2]}], the index says [{lo}, {hi}]")
        for sid, (n, _, _) in sorted(found.items()):
            report.problems.append(f"{chunk}: stream {sid} ({n} rows) is in the file, not in the index")
    report.orphans = sorted(present - by_chunk.keys())
    report.quarantined = root.glob(f"{names.literal(tenant)}/{FOLDER}/chunks/day=*/*.parquet") + \
        root.glob(f"{names.literal(tenant)}/wal/{FOLDER}/*.arrow")
    return report


def _streams_in(path: str) -> dict[int, tuple[int, int, int]]:
    """Per stream of a chunk file: rows, first and last timestamp."""
    table = pq.read_table(path, columns=["stream_id", "ts"])
    grouped = table.group_by("stream_id", use_threads=False).aggregate([("ts", "count"), ("ts", "min"), ("ts", "max")])
    return {sid: (n, lo, hi) for sid, n, lo, hi in zip(
        *(grouped.column(c).to_pylist() for c in ("stream_id", "ts_count", "ts_min", "ts_max")), strict=True)}


def summary(reports: list[TenantReport]) -> tuple[str, bool]:
    """What the command prints, and whether the store is consistent."""
    lines = []
    for r in reports:
        lines.append(f"{r.tenant}: {r.index_files} index files, {r.chunk_files} chunk files, {r.rows} rows; "
                     f"{len(r.problems)} problems, {len(r.orphans)} orphan files")
        lines += [f"  problem: {p}" for p in r.problems]
        lines += [f"  orphan (the compactor deletes it after compactor.retention_delete_delay): {o}" for o in r.orphans]
        lines += [f"  quarantined (unreadable, out of the store; the server's log says why): {q}" for q in r.quarantined]
    ok = not any(r.problems for r in reports)
    lines.append("consistent" if ok else "NOT consistent")
    return "\n".join(lines), ok

