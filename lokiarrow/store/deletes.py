"""A tenant's delete requests (Loki's `/loki/api/v1/delete`), kept in `<tenant>/deletes/requests.json`.

A request names a log selector (with line filters, or any pipeline: a line is deleted when it
comes out of the pipeline) and a span of milliseconds, both ends included. It is `received` when
added; it can be cancelled while received and younger than `delete_request_cancel_period`; once
that period has passed the compactor applies it (store/compactor.py rewrites the chunk files
holding such lines) and marks it `processed`. The file is rewritten whole, atomically, on every
change; one process uses a store, and a lock per file serialises its threads (the API's and the
compactor's).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.exec import pipeline
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_log_selector
from lokiarrow.model import Labels
from lokiarrow.store.fs import Root

RECEIVED, PROCESSED = "received", "processed"
_NS_PER_MS = 10**6
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(path, threading.Lock())


@dataclass
class DeleteRequest:
    request_id: str
    start_time: int    # ms, included
    end_time: int      # ms, included
    query: str
    status: str
    created_at: int    # ms

    def answer(self) -> dict[str, object]:
        """As Loki lists it: times in seconds, an empty user id."""
        return {"request_id": self.request_id, "start_time": self.start_time / 1000, "end_time": self.end_time / 1000,
                "query": self.query, "status": self.status, "created_at": self.created_at / 1000, "user_id": ""}


class DeleteRequests:
    def __init__(self, root: Root, tenant: str) -> None:
        self.root, self.path = root, f"{tenant}/deletes/requests.json"
        self._lock = _lock_for(root.full(self.path))

    def _load(self) -> list[DeleteRequest]:
        full = self.root.full(self.path)
        if not self.root.fs.exists(full):
            return []
        with self.root.fs.open(full, "rb") as f:
            return [DeleteRequest(**r) for r in json.loads(f.read())]

    def _save(self, requests: list[DeleteRequest]) -> None:
        self.root.write_atomic(self.path, json.dumps([asdict(r) for r in requests]).encode())

    def all(self) -> list[DeleteRequest]:
        with self._lock:
            return sorted(self._load(), key=lambda r: r.created_at)

    def add(self, query: str, start_ms: int, end_ms: int, now_ms: int) -> DeleteRequest:
        with self._lock:
            requests = self._load()
            request = DeleteRequest(os.urandom(4).hex(), start_ms, end_ms, query, RECEIVED, now_ms)
            self._save([*requests, request])
            return request

    def remove(self, request_id: str) -> None:
        with self._lock:
            self._save([r for r in self._load() if r.request_id != request_id])

    def due(self, now_ms: int, cancel_period_ms: int) -> list[DeleteRequest]:
        """Received requests whose cancel period has passed: the compactor applies them."""
        return [r for r in self.all() if r.status == RECEIVED and r.created_at + cancel_period_ms <= now_ms]

    def mark_processed(self, ids: set[str]) -> None:
        with self._lock:
            requests = self._load()
            for r in requests:
                if r.request_id in ids:
                    r.status = PROCESSED
            self._save(requests)


@dataclass(frozen=True)
class Deletion:
    """Due requests compiled for the rows of chunk files."""

    parts: tuple[tuple[ast.LogExpr, int, int], ...]   # selector and pipeline, span in ns

    @classmethod
    def of(cls, requests: list[DeleteRequest]) -> Deletion:
        return cls(tuple((parse_log_selector(r.query, validate=False), r.start_time * _NS_PER_MS,
                          r.end_time * _NS_PER_MS + _NS_PER_MS - 1) for r in requests))

    def touches(self, stream_labels: Labels, min_ts: int, max_ts: int) -> bool:
        """Can an index row (a stream in a file, over a span) hold a deleted line?"""
        return any(lo <= max_ts and min_ts <= hi and all(m.matches_labels(stream_labels) for m in expr.matchers)
                   for expr, lo, hi in self.parts)

    def doomed(self, table: pa.Table, labels_of: dict[int, Labels]) -> pa.Array:
        """Per row of a chunk table (stream_id, ts, line, metadata): is it deleted?"""
        doomed = np.zeros(table.num_rows, dtype=bool)
        ts = table.column("ts")
        streams = pc.unique(table.column("stream_id")).to_pylist()
        for expr, lo, hi in self.parts:
            ids = [s for s in streams if all(m.matches_labels(labels_of[s]) for m in expr.matchers)]
            if not ids:
                continue
            candidate = pc.and_(pc.is_in(table.column("stream_id"), value_set=pa.array(ids, pa.int64())),
                                pc.and_(pc.greater_equal(ts, lo), pc.less_equal(ts, hi)))
            if not pc.any(candidate).as_py():
                continue
            positions = pc.indices_nonzero(candidate)
            picked = table.take(positions).append_column("row", positions)
            kept = pipeline.run(expr.stages, pipeline.begin(picked, labels_of))
            doomed[kept.table.column("row").to_numpy()] = True
        return pa.array(doomed)
