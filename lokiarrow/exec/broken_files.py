"""A query that failed while reading: was it an unreadable chunk file? Then take the file out of
the store's way (store/quarantine.py) and let the caller run the query again.

Suspects: the chunk files the error names (DuckDB and Arrow often name the file); when it names
none but reads as a failed read (Polars and some DuckDB errors do not say which file), the chunk
files the query was reading (exec/duck.py `note_reads`). A suspect is quarantined only once it is
confirmed unreadable (every page read, checksums verified), so a failure of another kind is left
to fail as it did.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from lokiarrow.store.quarantine import unreadable
from lokiarrow.store.store import Store

# words of DuckDB's, Arrow's and Polars' errors about a file that does not read as it should
_READ_ERROR = re.compile(r"parquet|corrupt|magic|decompress|checksum|payload|zstd|snappy|lz4|end of (stream|file)"
                         r"|out of (range|bounds)|out of specification|invalid utf-?8", re.IGNORECASE)


def quarantine_broken(store: Store, tenant: str, error: BaseException, reads: Collection[str]) -> bool:
    """After `error` ended a query of `tenant` (`a|b`: each) that read the store files `reads`:
    True when the query may succeed if run again (a suspect was quarantined, or fetched again from
    object storage)."""
    text = str(error)
    found = False
    for one in tenant.split("|"):
        tenant_store = store.existing(one)
        if tenant_store is None:
            continue
        chunks = tenant_store.index.chunk_files
        suspects = [c for c in sorted(chunks) if c.rsplit("/", 1)[-1] in text]
        if not suspects and _READ_ERROR.search(text):
            suspects = sorted(chunks.intersection(reads))
        for chunk in suspects:
            reason = unreadable(tenant_store, chunk)
            if reason is not None:
                store.quarantine(one, chunk, reason)
            # quarantined, or on object storage fetched again (its cached copy may have been the damage)
            found = found or reason is not None or tenant_store.root.cache is not None
    return found
