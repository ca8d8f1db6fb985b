"""Small builders for store tests."""

from __future__ import annotations

import pyarrow as pa

from lokiarrow.model import labels_string, stream_id
from lokiarrow.store.schema import ENTRIES


def entries(rows: list[tuple[dict[str, str], int, str]], metadata: list[dict[str, str] | None] | None = None
            ) -> pa.RecordBatch:
    """An ENTRIES batch from (labels, ts, line) rows."""
    texts = [labels_string(labels) for labels, _, _ in rows]
    meta = metadata or [None] * len(rows)
    return pa.RecordBatch.from_pydict({
        "labels": texts,
        "stream_id": [stream_id(t) for t in texts],
        "ts": [ts for _, ts, _ in rows],
        "line": [line for _, _, line in rows],
        "metadata": [list(m.items()) if m else None for m in meta],
    }, schema=ENTRIES)
