"""Live tailing, as Loki's `/loki/api/v1/tail` does it: history first, then entries as they are pushed.

1. One `Watcher` per tenant with open tails polls the tenant's heads every `POLL_SECONDS`. Heads only
   grow, a whole batch at a time (`Head.spans` counts the complete ones), so the watcher's position
   is a batch count per head; a head that left the snapshot (flushed) is read to its end once more,
   then forgotten. Pushes do no work for tails, however many are open.
2. The batches new since the last poll go, in one worker thread, to every tail of the tenant: its
   streams (matchers tested once per stream, then cached), its line filters and pipeline
   (exec/pipeline), its labels as exec/results builds them. The result is a `Run`: the entries in
   time order, each already encoded as Loki's one-entry stream object; tails of the same query
   share it, so N tails of one query cost one selection and one encoding.
3. A tail opens at the watcher's position: its history (the last `limit` entries from `start` to
   now, by exec/logs) reads the heads as they were at that position, so no entry is both history
   and live (around a flush an entry may still come twice).
4. A tail holds runs until their entries are due, i.e. `delay_for` has passed since their timestamp
   (Loki's rule, so an entry stamped in the future waits for its time), then sends them oldest
   first in frames of up to 100 entries, one stream object per entry, as Loki's tailer does. A
   frame takes whole slices of runs, so sending costs per frame, not per entry. When a slow client
   lets more than `MAX_HELD` live entries pile up, new ones are dropped and reported in the next
   frame's `dropped_entries` (at most 1000 a frame).

Labels: history entries carry their stream's labels and structured metadata, as query_range answers
do; live entries of a query without stages carry the stream's labels alone (Loki's ingester sends a
stream unchanged when the pipeline does nothing), and with stages the labels after the pipeline.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.compile.fields import field_filter
from lokiarrow.compile.filters import line_filters_mask
from lokiarrow.compile.prefilter import prefilters
from lokiarrow.config import Limits
from lokiarrow.errors import BadRequest
from lokiarrow.exec import pipeline
from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.exec.results import streams_result
from lokiarrow.logql.ast import Expr, LogExpr
from lokiarrow.model import Labels
from lokiarrow.store.head import Head
from lokiarrow.store.schema import ENTRIES
from lokiarrow.store.store import Store
from lokiarrow.store.tenant import Snapshot, TenantStore

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1                # how often a watcher looks for new batches
MAX_DELAY_FOR = 5                 # seconds, Loki's cap on `delay_for`
MAX_ENTRIES_PER_FRAME = 100       # Loki's maxEntriesPerTailResponse
MAX_DROPPED_PER_FRAME = 1000      # Loki's maxDroppedEntriesPerTailResponse
MAX_HELD = 10_000                 # live entries a tail holds for a slow client before dropping
MAX_TAIL_SECONDS = 3600           # Loki's querier.tail_max_duration default
_COLUMNS = ["stream_id", "ts", "line", "metadata"]

Entry = tuple[int, Labels, str]   # (ts, labels, line)


@dataclass(frozen=True)
class TailRequest:
    start: int              # ns: history from here to now
    limit: int = 100        # history entries
    delay_for: int = 0      # seconds an entry is held after its timestamp


@dataclass(frozen=True)
class Run:
    """Entries in time order, each encoded once as Loki's one-entry stream object: the tails of
    one query share it (each keeps its own place in it)."""

    stamps: list[int]
    parts: list[bytes]
    labels: list[Labels]

    @classmethod
    def of(cls, entries: list[Entry]) -> Run:
        entries = sorted(entries, key=lambda e: e[0])
        return cls([ts for ts, _, _ in entries], [orjson.dumps({"stream": labels, "values": [[str(ts), line]]})
                                                 for ts, labels, line in entries],
                   [labels for _, labels, _ in entries])


@dataclass
class _Cursor:
    run: Run
    pos: int
    end: int


def _entries(rows: pa.Table, labels_of: dict[int, Labels]) -> list[Entry]:
    """Rows as (ts, labels, line), labels as exec/results gives them (ordered by name)."""
    out: list[Entry] = []
    for stream in streams_result(rows, labels_of):
        labels = dict(sorted(stream["stream"].items()))
        out.extend((int(ts), labels, line) for ts, line in stream["values"])
    return out


def history(snapshot: Snapshot, expr: LogExpr, start: int, end: int, limit: int) -> Run:
    """The newest `limit` entries of the query in [start, end), as query_range selects them."""
    labels_of = snapshot.index.streams.labels
    ids = snapshot.index.streams.match(expr.matchers)
    if not ids or start >= end:
        return Run.of([])
    filters, rest = pipeline.split(expr.stages)
    names = {name for sid in ids for name in labels_of[sid]}
    q = LogQuery(expr.matchers, filters, start, end, limit, True, rest, prefilters(rest, names),
                 field_filter(rest, names))
    return Run.of(_entries(select_logs(snapshot, ids, q, ScanStats()), labels_of))


class Tail:
    """One client's tail: selects its entries from new rows, holds them by time, packs frames.

    `select` runs in a worker thread; everything else runs on the event loop.
    """

    def __init__(self, expr: LogExpr, request: TailRequest) -> None:
        self.expr = expr
        self.request = request
        self.filters, self.rest = pipeline.split(expr.stages)
        self.closed = False
        self._delay_ns = request.delay_for * 10**9
        self._wanted: dict[int, bool] = {}
        self._held: list[_Cursor] = []
        self._count = 0
        self._dropped: list[dict[str, Any]] = []
        self._wake = asyncio.Event()

    def select(self, rows: pa.Table, labels_of: dict[int, Labels]) -> Run:
        """The entries of new head rows (ENTRIES schema) that this tail's query keeps."""
        sids = rows.column("stream_id")
        wanted = [sid for sid in pc.unique(sids).to_pylist() if self._wants(sid, labels_of)]
        if not wanted:
            return Run.of([])
        rows = rows.filter(pc.is_in(sids, value_set=pa.array(wanted, pa.int64())))
        mask = line_filters_mask(rows.column("line"), self.filters)
        if mask is not None:
            rows = rows.filter(mask)
        if rows.num_rows == 0:
            return Run.of([])
        if self.rest:
            rows = pipeline.finish(pipeline.run(self.rest, pipeline.begin(rows, labels_of)))
        elif not self.expr.stages:
            rows = rows.drop_columns(["metadata"])  # the stream's labels alone, as Loki sends them
        return Run.of(_entries(rows, labels_of))

    def _wants(self, sid: int, labels_of: dict[int, Labels]) -> bool:
        hit = self._wanted.get(sid)
        if hit is None:
            labels = labels_of[sid]
            hit = self._wanted[sid] = all(m.matches_labels(labels) for m in self.expr.matchers)
        return hit

    def hold(self, run: Run, history: bool = False) -> None:
        """Keep a run's entries until they are due; live ones beyond `MAX_HELD` (plus the
        history's `limit`) are dropped, the newest first, and reported in the next frame."""
        n = len(run.stamps)
        room = n if history else min(n, max(MAX_HELD + self.request.limit - self._count, 0))
        for ts, labels in zip(run.stamps[room:], run.labels[room:], strict=True):
            if len(self._dropped) >= MAX_DROPPED_PER_FRAME:
                break
            self._dropped.append({"timestamp": str(ts), "labels": labels})
        if room:
            self._held.append(_Cursor(run, 0, room))
            self._count += room
            self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def _due(self, now: int) -> list[bytes]:
        """Up to a frame's worth of due entries, oldest first: whole slices of runs, so the cost
        is per frame, not per entry, while runs do not interleave in time."""
        cutoff = now - self._delay_ns  # due once now is after ts + delay_for
        parts: list[bytes] = []
        while self._held and len(parts) < MAX_ENTRIES_PER_FRAME:
            heads = [c.run.stamps[c.pos] for c in self._held]
            i = min(range(len(heads)), key=heads.__getitem__)
            if heads[i] >= cutoff:
                break
            c = self._held[i]
            stop = min(bisect.bisect_left(c.run.stamps, cutoff, c.pos, c.end),
                       c.pos + MAX_ENTRIES_PER_FRAME - len(parts))
            if len(heads) > 1:
                nearest = min(h for j, h in enumerate(heads) if j != i)
                stop = min(stop, bisect.bisect_right(c.run.stamps, nearest, c.pos, c.end))
            parts += c.run.parts[c.pos:stop]
            self._count -= stop - c.pos
            c.pos = stop
            if c.pos == c.end:
                del self._held[i]
        return parts

    async def frames(self) -> AsyncIterator[str]:
        """Loki's tail frames (JSON text), as entries fall due, until the tail is closed."""
        while not self.closed:
            now = time.time_ns()
            due = self._due(now)
            if due:
                yield self._frame(due)
                continue
            wait = None
            if self._held:  # the next entry falls due then (1 ms past, as Loki wants now after it)
                first = min(c.run.stamps[c.pos] for c in self._held)
                wait = max(first + self._delay_ns - now, 0) / 1e9 + 0.001
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(wait, 1.0) if wait is not None else None)
            except TimeoutError:
                pass

    def _frame(self, parts: list[bytes]) -> str:
        frame = b'{"streams":[' + b",".join(parts) + b"]"
        if self._dropped:  # Loki writes the key only when something was dropped
            frame += b',"dropped_entries":' + orjson.dumps(self._dropped)
            self._dropped = []
        return (frame + b"}").decode()


def _select_all(tails: list[Tail], rows: pa.Table, labels_of: dict[int, Labels]) -> list[Run]:
    """Each tail's run of the new rows: tails of the same query share one."""
    runs: dict[LogExpr, Run] = {}
    out = []
    for tail in tails:
        run = runs.get(tail.expr)
        if run is None:
            run = runs[tail.expr] = tail.select(rows, labels_of)
        out.append(run)
    return out


def _frozen(head: Head, batches: int) -> Head:
    """A head as it was with its first `batches` batches (references, no copies)."""
    copy = Head()
    copy.batches = head.batches[:batches]
    copy.spans = head.spans[:batches]
    copy.rows = sum(b.num_rows for b in copy.batches)
    if copy.spans:
        copy.min_ts = min(lo for _, lo, _ in copy.spans)
        copy.max_ts = max(hi for _, _, hi in copy.spans)
    copy.stream_range = dict(head.stream_range)
    return copy


class Watcher:
    """Polls one tenant's heads for new batches and hands them to the tenant's tails.

    Its position only moves past a batch once the index knows the batch's streams (a push adds
    the batch to the head a moment before it names its new streams).
    """

    def __init__(self, store: TenantStore, on_idle: Callable[[Watcher], None]) -> None:
        self.store = store
        self.tails: list[Tail] = []
        self._on_idle = on_idle
        self._position: dict[int, tuple[Head, int]] = {
            id(h): (h, len(h.spans)) for h in store.snapshot().heads}
        self._jobs: list[tuple[list[pa.RecordBatch], list[Tail]]] = []  # new batches, for these tails
        self.task = asyncio.get_running_loop().create_task(self._run())

    def register(self, tail: Tail) -> Snapshot:
        """Add a tail; returns the snapshot its history reads: the heads at the position from
        which the watcher hands the tail every new batch."""
        snapshot = self.store.snapshot()
        self._advance(snapshot)
        self.tails.append(tail)
        heads = tuple(_frozen(h, self._position[id(h)][1]) for h in snapshot.heads)
        return Snapshot(heads, snapshot.index, snapshot.root)

    def _advance(self, snapshot: Snapshot) -> None:
        """Move the position to the end of every head, queueing what it passed for the tails."""
        known = snapshot.index.streams.labels
        current = {id(h): h for h in snapshot.heads}
        for key, head in current.items():
            self._position.setdefault(key, (head, 0))
        fresh: list[pa.RecordBatch] = []
        for key, (head, seen) in list(self._position.items()):
            spans, n = head.spans, seen
            while n < len(spans) and all(sid in known for sid in spans[n][0]):
                n += 1
            fresh += head.batches[seen:n]
            if key in current or n < len(spans):
                self._position[key] = (head, n)
            else:
                del self._position[key]  # flushed and read to its end: it grows no more
        if fresh and self.tails:
            self._jobs.append((fresh, list(self.tails)))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not self.tails:
                self._on_idle(self)
                return
            self._advance(self.store.snapshot())
            while self._jobs:
                batches, tails = self._jobs.pop(0)
                rows = pa.Table.from_batches(batches, schema=ENTRIES).select(_COLUMNS)
                labels_of = self.store.index.streams.labels
                try:
                    found = await asyncio.to_thread(_select_all, tails, rows, labels_of)
                except Exception:  # keep the watcher alive for the next batches
                    log.exception("cannot select tailed entries of tenant %s", self.store.tenant)
                    continue
                for tail, run in zip(tails, found, strict=True):
                    if not tail.closed:
                        tail.hold(run)


class TailHub:
    """Every open tail of a server, by tenant. Lives on one event loop."""

    def __init__(self, store: Store, limits: Callable[[str], Limits]) -> None:
        self.store = store
        self.limits = limits  # per tenant
        self._watchers: dict[str, Watcher] = {}

    async def open(self, tenant: str, expr: Expr, request: TailRequest) -> Tail:
        """Open a tail with its history held: errors here are Loki's errors after the upgrade."""
        if not isinstance(expr, LogExpr):
            raise BadRequest("only log selector is supported")
        watcher = self._watchers.get(tenant)
        if watcher is None:
            watcher = self._watchers[tenant] = Watcher(self.store.tenant(tenant), self._idle)
        max_tails = self.limits(tenant).max_concurrent_tail_requests
        if len(watcher.tails) >= max_tails:
            raise BadRequest(f"max concurrent tail requests limit exceeded, count > limit "
                             f"({len(watcher.tails) + 1} > {max_tails})")
        tail = Tail(expr, request)
        snapshot = watcher.register(tail)
        try:
            found = await asyncio.to_thread(history, snapshot, expr, request.start, time.time_ns(),
                                            request.limit)
        except BaseException:
            self.close(tenant, tail)
            raise
        tail.hold(found, history=True)
        return tail

    def close(self, tenant: str, tail: Tail) -> None:
        tail.close()
        watcher = self._watchers.get(tenant)
        if watcher is not None and tail in watcher.tails:
            watcher.tails.remove(tail)

    def _idle(self, watcher: Watcher) -> None:
        if self._watchers.get(watcher.store.tenant) is watcher:
            del self._watchers[watcher.store.tenant]
