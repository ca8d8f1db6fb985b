"""Counts and sizes from the index alone: `count_over_time({…}[1h])`, `rate`, `bytes_over_time`
and `bytes_rate` without line filters, wherever the step windows hold whole index rows.

An index row counts one stream's entries (and their bytes) in one chunk file with one set of
structured metadata, over [min_ts, max_ts]. The step at t covers (t - offset - range, t - offset];
a window holding a row's whole span takes the row's numbers as they are. A chunk file is answered
from the index when every window touching any of its rows holds that row whole and every row
knows its metadata set; the other files (and the heads) are still scanned, so each entry is
counted once, by exactly one of the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.exec.metrics.windows_sql import covered
from lokiarrow.logql import ast
from lokiarrow.store.tenant import Snapshot

COUNTS_SCHEMA = pa.schema([("stream_id", pa.int64()), ("mk", pa.string()), ("step", pa.int64()),
                           ("rows", pa.int64()), ("bytes", pa.int64())])


@dataclass(frozen=True)
class IndexCounts:
    counts: pa.Table        # COUNTS_SCHEMA: per (stream, metadata set, step), from the index
    answered: set[str]      # the chunk files (full paths) those counts stand for: not to be scanned


def _ceil_div(x: np.ndarray, d: int) -> np.ndarray:
    return -((-x) // d)


def whole_rows(snapshot: Snapshot, ids: list[int] | None, rng: ast.LogRange, steps: np.ndarray,
               step_ns: int) -> IndexCounts:
    """The counts of the chunk files whose rows every touching window holds whole (`ids`: the
    selected streams, None for all of them)."""
    rows = snapshot.index.rows_in(ids, *covered(rng, steps))
    if rows.num_rows == 0:
        return IndexCounts(COUNTS_SCHEMA.empty_table(), set())
    first, last_ts = rows.column("min_ts").to_numpy(), rows.column("max_ts").to_numpy()
    start, step, last = int(steps[0]), max(step_ns, 1), len(steps) - 1
    shift, width = rng.offset_ns - start, rng.range_ns
    # window k holds ts when t_k - offset - range < ts <= t_k - offset, t_k = start + k * step
    touch_lo = np.maximum(_ceil_div(first + shift, step), 0)
    touch_hi = np.minimum(_ceil_div(last_ts + shift + width, step) - 1, last)
    hold_lo = np.maximum(_ceil_div(last_ts + shift, step), 0)
    hold_hi = np.minimum(_ceil_div(first + shift + width, step) - 1, last)
    untouched = touch_lo > touch_hi
    whole = untouched | ((touch_lo == hold_lo) & (touch_hi == hold_hi))
    whole &= rows.column("metadata").is_valid().to_numpy(zero_copy_only=False)
    chunks = rows.column("chunk").cast(pa.string())
    partial = pc.unique(chunks.filter(pa.array(~whole)))
    answered = set(pc.unique(chunks).to_pylist()) - set(partial.to_pylist())
    keep = pc.invert(pc.is_in(chunks, value_set=partial)).to_numpy(zero_copy_only=False) & ~untouched
    kept = rows.filter(pa.array(keep))
    spans = (hold_hi - hold_lo + 1)[keep]
    which = np.repeat(np.arange(kept.num_rows), spans)
    offsets = np.arange(len(which)) - np.repeat(np.cumsum(spans) - spans, spans)
    counts = pa.table({
        "stream_id": kept.column("stream_id").take(which),
        "mk": kept.column("metadata").take(which).cast(pa.string()),
        "step": pa.array(hold_lo[keep][which] + offsets, pa.int64()),
        "rows": kept.column("rows").take(which),
        "bytes": kept.column("bytes").take(which),
    }, schema=COUNTS_SCHEMA)
    return IndexCounts(counts, {snapshot.root.full(c) for c in answered})
