"""The head: entries accepted since the last flush, kept as Arrow batches and queryable at once.

Contract:
- `add(batch)` keeps each (stream_id, ts, line) once: an exact duplicate of an entry already in
  this head, or earlier in the same batch, is dropped. The check is a set of 64-bit keys of
  (stream, ts), so the common case costs one C-level set operation per batch; only key hits are
  compared line by line.
- `table()` returns an immutable snapshot; batches are never modified after `add`.
- One writer (the tenant serialises `add`); readers may call `table_for` concurrently with it.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.store.schema import ENTRIES

_MIX = np.uint64(0x9E3779B97F4A7C15)


def _keys(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    sid = batch.column("stream_id").to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
    ts = batch.column("ts").to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
    with np.errstate(over="ignore"):
        return (sid * _MIX) ^ ts


class Head:
    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        # per batch: (its streams, min_ts, max_ts), so queries skip batches; appended after the
        # batch itself, so a reader that takes len(self.spans) first sees whole entries only
        self.spans: list[tuple[frozenset[int], int, int]] = []
        self.rows = 0
        self.bytes = 0
        self.created = time.monotonic()
        self.min_ts: int | None = None
        self.max_ts: int | None = None
        self.streams: dict[int, str] = {}              # stream_id -> canonical labels
        self.stream_range: dict[int, tuple[int, int]] = {}
        self._keys: set[int] = set()

    def add(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, dict[int, str]]:
        """Keep the entries of `batch` that are not duplicates.

        Returns what was kept and the streams (id -> labels) it holds.
        """
        if batch.num_rows == 0:
            return batch, {}
        batch = self._drop_duplicates(batch)
        if batch.num_rows == 0:
            return batch, {}
        if not self.batches:
            self.created = time.monotonic()
        self.batches.append(batch)
        self.rows += batch.num_rows
        self.bytes += batch.column("line").nbytes
        seen, lo, hi = self._track_streams(batch)
        self.spans.append((frozenset(seen), lo, hi))
        return batch, seen

    def _drop_duplicates(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        keys = _keys(batch)
        key_list = keys.tolist()
        unique_in_batch = len(set(key_list)) == len(key_list)
        if unique_in_batch and self._keys.isdisjoint(key_list):
            self._keys.update(key_list)
            return batch
        keep = np.ones(len(key_list), dtype=bool)
        seen = self._lines_for(set(key_list) & self._keys)
        lines = batch.column("line").to_pylist()
        for i, (key, line) in enumerate(zip(key_list, lines, strict=True)):
            bucket = seen.setdefault(key, set())
            if line in bucket:
                keep[i] = False
            else:
                bucket.add(line)
        self._keys.update(key_list)
        return batch.filter(pa.array(keep))

    def _lines_for(self, keys: set[int]) -> dict[int, set[str]]:
        """The lines already held under the given (stream, ts) keys."""
        found: dict[int, set[str]] = {}
        if not keys:
            return found
        wanted = pa.array(list(keys), pa.uint64())
        for held in self.batches:
            mask = pc.is_in(pa.array(_keys(held)), value_set=wanted)
            if not pc.any(mask).as_py():
                continue
            hits = held.filter(mask)
            for key, line in zip(_keys(hits).tolist(), hits.column("line").to_pylist(), strict=True):
                found.setdefault(key, set()).add(line)
        return found

    def _track_streams(self, batch: pa.RecordBatch) -> tuple[dict[int, str], int, int]:
        """Record each stream's labels and time span; returns the batch's streams and span."""
        sids = batch.column("stream_id").to_numpy()
        ts = batch.column("ts").to_numpy()
        order = np.argsort(sids, kind="stable")
        sorted_ids = sids[order]
        starts = np.flatnonzero(np.diff(sorted_ids, prepend=sorted_ids[0] - 1))
        ids = sorted_ids[starts].tolist()
        los = np.minimum.reduceat(ts[order], starts).tolist()
        his = np.maximum.reduceat(ts[order], starts).tolist()
        labels = batch.column("labels").take(pa.array(order[starts])).to_pylist()
        seen = dict(zip(ids, labels, strict=True))
        for sid, lo, hi in zip(ids, los, his, strict=True):
            old = self.stream_range.get(sid)
            self.stream_range[sid] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        self.streams.update(seen)
        lo, hi = int(ts.min()), int(ts.max())
        self.min_ts = lo if self.min_ts is None else min(self.min_ts, lo)
        self.max_ts = hi if self.max_ts is None else max(self.max_ts, hi)
        return seen, lo, hi

    def table(self) -> pa.Table:
        return pa.Table.from_batches(self.batches, schema=ENTRIES)

    def table_for(self, stream_ids: set[int], start: int, end: int) -> tuple[pa.Table, list[int]]:
        """The batches that may hold the streams within [start, end), and each one's first row
        number in the head (arrival order), without copying any of them."""
        chosen: list[pa.RecordBatch] = []
        offsets: list[int] = []
        row = 0
        spans = self.spans[:len(self.spans)]
        for batch, (streams, lo, hi) in zip(self.batches[:len(spans)], spans, strict=True):
            if hi >= start and lo < end and not streams.isdisjoint(stream_ids):
                chosen.append(batch)
                offsets.append(row)
            row += batch.num_rows
        return pa.Table.from_batches(chosen, schema=ENTRIES), offsets

    def age_seconds(self) -> float:
        return time.monotonic() - self.created if self.batches else 0.0
