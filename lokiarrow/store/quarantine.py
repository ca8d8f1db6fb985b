"""Files that cannot be read are taken out of the store's way, kept, counted and reported.

A chunk file that fails to read (truncated, a broken footer or page) would fail every query that
touches it, and every compaction of its day. Once `unreadable` confirms it (on object storage after
fetching it again: a damaged cached copy is only replaced) (every page read, page
checksums verified where the file has them), `quarantine_chunk`:
1. copies it to `<tenant>/quarantine/chunks/day=…/` for whoever investigates;
2. publishes an index file holding the rows of the live index files that named it, without its
   rows, superseding them (one atomic write, as the compactor publishes: store/index.py);
3. drops its rows from the tenant's index in memory (queries from now on do not read it);
4. deletes it (a crash before this leaves an orphan the compactor collects).
Its entries are lost; the rest of the store answers. Steps 2 and 4 change shared files, so only the
process that compacts the store (the single binary, the backend) may take them: others do step 3
alone (`persist=False`) and leave the file to the backend and `lokiarrow check`.

A WAL segment whose replay stops before its end is copied to `<wal folder>/quarantine/` (its
readable batches were replayed; the segment stays until a flush retires it, so nothing replayed
is lost to a crash in between). The torn tail of the newest segment (a batch being written when
the process died, never acknowledged) is what a crash leaves: it is not quarantined.
Every file quarantined is counted (`lokiarrow_quarantined_files_total{kind}`) and logged.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prometheus_client import Counter

from lokiarrow.store import names
from lokiarrow.store.chunks import write_index
from lokiarrow.store.index import SUPERSEDES_KEY, live_index_files
from lokiarrow.store.schema import INDEX

if TYPE_CHECKING:
    from lokiarrow.store.tenant import TenantStore

log = logging.getLogger(__name__)

QUARANTINED = Counter("lokiarrow_quarantined_files_total", "Files taken out of the store because they cannot be read",
                      ["kind"])
FOLDER = "quarantine"
BROKEN = (OSError, pa.ArrowException)


def unreadable(tenant: TenantStore, chunk: str) -> str | None:
    """Why a chunk file cannot be read, or None when every page of it reads (or it is missing: not
    a damaged file, and on object storage perhaps not yet listed). On object storage the object is
    fetched again first: a damaged copy in the disk cache is not a damaged file."""
    if tenant.root.cache is not None:
        tenant.root.cache.forget(chunk)
    try:
        parquet = pq.ParquetFile(tenant.root.readable_path(chunk), page_checksum_verification=True)
        for group in range(parquet.num_row_groups):
            parquet.read_row_group(group)
    except FileNotFoundError:
        return None
    except BROKEN as exc:
        return str(exc) or type(exc).__name__
    return None


def quarantine_path(chunk: str) -> str:
    """Where a tenant's chunk file goes: `<tenant>/quarantine/chunks/day=…/<name>`."""
    tenant, _, rest = chunk.partition("/")
    return f"{tenant}/{FOLDER}/{rest}"


def quarantine_chunk(tenant: TenantStore, chunk: str, reason: str, persist: bool = True) -> None:
    """Take an unreadable chunk file out of the store (the module's steps). With `persist`, the
    caller must keep compactions of the tenant away meanwhile."""
    if persist:
        root = tenant.root
        kept = quarantine_path(chunk)
        root.fs.makedirs(root.full(kept).rsplit("/", 1)[0], exist_ok=True)   # (nothing on object storage)
        root.fs.copy(root.full(chunk), root.full(kept))
        day = chunk.split("/")[2].removeprefix("day=")
        naming = {f: t for f, t in live_index_files(root, tenant.tenant, day).items()
                  if chunk in pc.unique(t.column("chunk")).to_pylist()}
        if naming:
            rows = pa.concat_tables([t.select(INDEX.names).cast(INDEX) for t in naming.values()])
            rows = rows.filter(pc.not_equal(rows.column("chunk"), chunk))
            path = names.index_path(tenant.tenant, day, f"{names.new_segment_name()}-quarantine")
            write_index(root, path, rows, {SUPERSEDES_KEY: json.dumps(sorted(naming)).encode()})
    tenant.replace_index_rows([chunk], INDEX.empty_table())
    if persist:
        tenant.root.remove(chunk)
    QUARANTINED.labels("chunk").inc()
    where = f"moved to {quarantine_path(chunk)}" if persist else "left for the compactor"
    log.warning("tenant %s: chunk file %s cannot be read (%s): its entries are no longer queried, the file %s",
                tenant.tenant, chunk, reason, where)


def quarantine_segment(path: str, name: str, reason: str) -> str:
    """Copy a WAL segment that cannot be read to its end into its folder's quarantine as `name`
    (segment numbers restart with a new WAL id: the name carries it); the copy's path."""
    folder = os.path.join(os.path.dirname(path), FOLDER)
    os.makedirs(folder, exist_ok=True)
    kept = os.path.join(folder, name)
    if not os.path.exists(kept):
        shutil.copyfile(path, kept)
        QUARANTINED.labels("wal").inc()
        log.warning("WAL segment %s cannot be read to its end (%s): its readable entries were replayed, "
                    "a copy is kept at %s", path, reason, kept)
    return kept
