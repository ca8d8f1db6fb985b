"""Loki's index queries: `index/stats`, `index/volume` and `index/volume_range`, without reading lines
where the index or the per-minute rollups know the answer.

Totals (stats, volume):
1. Match the streams with the postings map.
2. Their index rows overlapping [start, end), summed per (stream, chunk file): Loki's chunk. A chunk
   reaching past the range counts the share of its span inside it (Loki's GetFactorOfTime), whole
   entries and bytes rounded down; a stream whose index share rounds to no entry is left out, as
   Loki's TSDB leaves it out.
3. The unflushed head rows of those streams in [start, end), counted exactly; each head holding a
   stream counts as one chunk of it.

Volume buckets (volume_range), exact per stream and bucket. Buckets follow Loki's split: aligned to
multiples of the step, the first starting at `start`. A bucket holds the entries of
(bucket start, bucket start + step], the first one also the entry at its start, clipped to
[start, end): windows that end inclusively, as the per-minute rollups do. Each bucket is stamped
as Loki stamps it, 1 ms before its end; the last at the end of the range (in ms, rounded up).
4. A chunk file with a rollup, the step a whole number of minutes: the rollup rows of the minutes
   wholly inside the range give the interior; the entries of the partial minutes at the range's
   edges are read from the chunk.
5. A chunk file without a rollup (or a step that is not whole minutes): (stream_id, ts,
   strlen(line)) of its wanted entries, read with DuckDB.
6. The head rows, bucketed in memory.

Aggregation (Loki's seriesvolume rules): `series` names each stream by its values of the labels the
matchers name (all its labels for `{}`), or of `targetLabels` when given; `labels` gives each label
name the volume of every stream that has it (only target labels when given). Target labels the
matchers do not name become `=~".+"` matchers. Per bucket, names are ordered by volume (descending)
then name, and the first `limit` are kept.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.errors import BadRequest
from lokiarrow.exec.duck import cursor, note_reads
from lokiarrow.exec.logs import ScanStats
from lokiarrow.exec.metrics.answers import format_time, format_value
from lokiarrow.exec.results import stats_block
from lokiarrow.exec.sources import footer_value, head_rows
from lokiarrow.logql.parser import parse_matchers
from lokiarrow.model import Matcher, labels_string
from lokiarrow.store import rollups
from lokiarrow.store.fs import readable
from lokiarrow.store.names import rollup_of
from lokiarrow.store.tenant import Snapshot

MATCH_ANY = "{}"
SERIES = "series"
LABELS = "labels"
VOLUME_MAX_SERIES = 1000  # Loki's limits_config.volume_max_series default
MINUTE_NS = rollups.BUCKET_NS
MS = 10**6


@dataclass(frozen=True)
class VolumeRequest:
    """One `index/volume` (step 0) or `index/volume_range` request, times in ns."""

    query: str
    start: int
    end: int
    limit: int = 100
    step_ns: int = 0
    target_labels: tuple[str, ...] = ()
    aggregate_by: str = SERIES


@dataclass(frozen=True)
class _Totals:
    """Per stream: entries, bytes and chunks in the range (index share plus head)."""

    entries: dict[int, int]
    bytes: dict[int, int]
    chunks: dict[int, int]


def index_stats(snapshot: Snapshot, query: str, start: int, end: int) -> dict[str, int]:
    """Loki's IndexStatsResponse: streams, chunks, bytes and entries of the selector in [start, end)."""
    matchers = parse_matchers(query)
    totals = _totals(snapshot, snapshot.index.streams.match(matchers), start, end)
    return {"streams": len(totals.entries), "chunks": sum(totals.chunks.values()),
            "bytes": sum(totals.bytes.values()), "entries": sum(totals.entries.values())}


def bytes_of(snapshot: Snapshot, matchers: list[Matcher], start: int, end: int) -> int:
    """The bytes of lines the streams matching `matchers` hold in [start, end), as index_stats counts them."""
    return sum(_totals(snapshot, snapshot.index.streams.match(matchers), start, end).bytes.values())


def volume(snapshot: Snapshot, req: VolumeRequest) -> dict[str, Any]:
    """Loki's `data` object of a volume answer: a vector (one bucket, or every name seen in at
    most one bucket) or a matrix."""
    if req.aggregate_by not in (SERIES, LABELS):
        raise BadRequest("invalid aggregation option")
    matchers = _volume_matchers(req.query)
    by, match_any = _prepare(list(req.target_labels), matchers)
    if req.target_labels:
        matchers = [*matchers, *(Matcher(t, "=~", ".+") for t in req.target_labels
                                 if not any(m.name == t for m in matchers))]
    ids = snapshot.index.streams.match(matchers)
    names = _Namer(snapshot, by, match_any, req.aggregate_by == SERIES, bool(req.target_labels))
    through_ms = -(-req.end // MS)
    step_ms = req.step_ns // MS
    if step_ms <= 0:  # Loki's middleware splits nothing: one bucket, at the end of the range
        totals = _totals(snapshot, ids, req.start, req.end)
        buckets = {through_ms: names.volumes(totals.entries, totals.bytes, req.limit)}
    else:
        buckets = _bucket_volumes(snapshot, ids, req, names, step_ms, through_ms)
    return _answer(buckets, names.metrics if req.aggregate_by == SERIES else None)


def _volume_matchers(query: str) -> list[Matcher]:
    """The selector's matchers; `{}` (exactly) matches every stream, as in Loki."""
    if query == MATCH_ANY:
        return []
    return list(parse_matchers(query))


def _prepare(targets: list[str], matchers: list[Matcher]) -> tuple[set[str], bool]:
    """The label names volumes are named by, and whether a stream's every label counts (`{}`)."""
    if targets:
        return set(targets), False
    return {m.name for m in matchers}, not matchers


class _Namer:
    """Names a stream's volume: its label subset (series) or each label name (labels)."""

    def __init__(self, snapshot: Snapshot, by: set[str], match_any: bool, series: bool, targeted: bool) -> None:
        self.labels = snapshot.index.streams.labels
        self.by = by
        self.match_any = match_any
        self.series = series
        self.targeted = targeted
        self.metrics: dict[str, dict[str, str]] = {}  # series name -> its labels
        self._cache: dict[int, list[str]] = {}

    def of(self, sid: int) -> list[str]:
        names = self._cache.get(sid)
        if names is None:
            labels = self.labels[sid]
            if self.series:
                subset = {k: v for k, v in labels.items() if self.match_any or k in self.by}
                names = [labels_string(subset)]
                self.metrics[names[0]] = subset
            elif self.targeted:
                names = [k for k in labels if self.match_any or k in self.by]
            else:
                names = list(labels)
            self._cache[sid] = names
        return names

    def volumes(self, entries: dict[int, int], sizes: dict[int, int], limit: int) -> list[tuple[str, int]]:
        """The top `limit` (name, bytes) of streams with entries, largest first, ties by name."""
        found: dict[str, int] = defaultdict(int)
        for sid, n in entries.items():
            if n <= 0:
                continue
            for name in self.of(sid):
                found[name] += sizes.get(sid, 0)
        if len(found) > VOLUME_MAX_SERIES:
            raise BadRequest(f"the query hit the max number of series limit (limit: {VOLUME_MAX_SERIES} series)")
        return sorted(found.items(), key=lambda nv: (-nv[1], nv[0]))[:limit]


def _totals(snapshot: Snapshot, ids: set[int], start: int, end: int) -> _Totals:
    entries: dict[int, int] = defaultdict(int)
    sizes: dict[int, int] = defaultdict(int)
    chunks: dict[int, int] = defaultdict(int)
    if not ids:
        return _Totals({}, {}, {})
    rows = snapshot.index.rows_in(ids, start, end)
    if rows.num_rows:
        per_chunk = rows.select(["stream_id", "chunk", "min_ts", "max_ts", "rows", "bytes"]).group_by(
            ["stream_id", "chunk"], use_threads=False).aggregate(
            [("min_ts", "min"), ("max_ts", "max"), ("rows", "sum"), ("bytes", "sum")])
        lo = per_chunk.column("min_ts_min").to_numpy()
        hi = per_chunk.column("max_ts_max").to_numpy()
        factor = _time_factor(start, end, lo, hi)
        n = np.floor(per_chunk.column("rows_sum").to_numpy() * factor).astype(np.int64)
        b = np.floor(per_chunk.column("bytes_sum").to_numpy() * factor).astype(np.int64)
        index_entries: dict[int, int] = defaultdict(int)
        index_bytes: dict[int, int] = defaultdict(int)
        index_chunks: dict[int, int] = defaultdict(int)
        for sid, rows_n, size in zip(per_chunk.column("stream_id").to_pylist(), n.tolist(), b.tolist(), strict=True):
            index_entries[sid] += rows_n
            index_bytes[sid] += size
            index_chunks[sid] += 1
        for sid, rows_n in index_entries.items():
            if rows_n > 0:  # Loki's TSDB drops a stream whose share holds no entry
                entries[sid] += rows_n
                sizes[sid] += index_bytes[sid]
                chunks[sid] += index_chunks[sid]
    for _, table in head_rows(snapshot, ids, start, end):
        grouped = pa.table({"stream_id": table.column("stream_id"),
                            "bytes": pc.binary_length(table.column("line"))}).group_by(
            "stream_id", use_threads=False).aggregate([("bytes", "count"), ("bytes", "sum")])
        for sid, rows_n, size in zip(*(grouped.column(c).to_pylist() for c in ("stream_id", "bytes_count", "bytes_sum")),
                                     strict=True):
            entries[sid] += rows_n
            sizes[sid] += size or 0
            chunks[sid] += 1
    return _Totals(dict(entries), dict(sizes), dict(chunks))


def _time_factor(start: int, end: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The share of each span [lo, hi] inside [start, end] (1 for a single instant)."""
    total = (hi - lo).astype(np.float64)
    inside = total - np.maximum(start - lo, 0) - np.maximum(hi - end, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, np.clip(inside / np.where(total > 0, total, 1), 0, 1), 1.0)


# --- buckets ----------------------------------------------------------------------------------

_BUCKET = "least(greatest((ts - $a + $step - 1) // $step - 1, 0), $last)"  # (start, start + step] -> k


def _bucket_volumes(snapshot: Snapshot, ids: set[int], req: VolumeRequest, names: _Namer, step_ms: int,
                    through_ms: int) -> dict[int, list[tuple[str, int]]]:
    """Per bucket (keyed by its sample time in ms, as Loki stamps it), the named volumes."""
    step = step_ms * MS
    from_ms = req.start // MS
    aligned_ms = from_ms - from_ms % step_ms
    count = max(-(-(through_ms - aligned_ms) // step_ms), 0)
    if count == 0:
        return {}
    stamps = [aligned_ms + (k + 1) * step_ms - 1 for k in range(count - 1)] + [through_ms]
    found = _bucketed(snapshot, ids, req.start, req.end, aligned_ms * MS, step, count)
    by_bucket: dict[int, tuple[dict[int, int], dict[int, int]]] = defaultdict(lambda: ({}, {}))
    for sid, k, n, size in zip(*(found.column(c).to_pylist() for c in ("stream_id", "k", "n", "bytes")), strict=True):
        entries, sizes = by_bucket[k]
        entries[sid] = n
        sizes[sid] = size
    return {stamps[k]: names.volumes(entries, sizes, req.limit) for k, (entries, sizes) in sorted(by_bucket.items())}


_PARTS = pa.schema([("stream_id", pa.int64()), ("k", pa.int64()), ("n", pa.int64()), ("bytes", pa.int64())])


def _bucketed(snapshot: Snapshot, ids: set[int], start: int, end: int, aligned: int, step: int,
              count: int) -> pa.Table:
    """(stream_id, k, n, bytes): entries and bytes per stream and bucket k."""
    parts: list[pa.Table] = []
    if ids:
        refs = snapshot.index.chunks(ids, start, end)
        note_reads(ref.path for ref in refs)
        params = {"a": aligned, "step": step, "last": count - 1, "ids": sorted(ids)}
        # the interior (lo, hi] is whole rollup minutes; [start, lo] and (hi, end) are read from chunks
        lo = -(-start // MINUTE_NS) * MINUTE_NS
        hi = (end - 1) // MINUTE_NS * MINUTE_NS
        minutes = step % MINUTE_NS == 0 and hi > lo
        whole: list[str] = []
        rolled: list[str] = []
        edges: list[str] = []
        for ref in refs:
            path = snapshot.root.full(ref.path)
            if not minutes or footer_value(path, rollups.ROLLUP_KEY) is None:
                whole.append(path)
                continue
            rolled.append(rollup_of(path))
            if ref.min_ts <= lo or ref.max_ts > hi:
                edges.append(path)
        parts += _chunk_buckets(whole, "ts >= $start AND ts < $end", {**params, "start": start, "end": end})
        parts += _chunk_buckets(edges, "((ts >= $start AND ts <= $lo) OR (ts > $hi AND ts < $end))",
                                {**params, "start": start, "end": end, "lo": lo, "hi": hi})
        if rolled:
            sql = (f"SELECT stream_id, {_BUCKET} AS k, sum(n)::BIGINT AS n, sum(bytes)::BIGINT AS bytes "
                   "FROM read_parquet($files) WHERE stream_id = ANY($ids) AND ts > $lo AND ts <= $hi GROUP BY ALL")
            parts.append(cursor().sql(sql, params={**params, "files": readable(rolled), "lo": lo, "hi": hi}).to_arrow_table())
        for _, table in head_rows(snapshot, ids, start, end):
            ts = table.column("ts").to_numpy()
            k = np.clip(-((aligned - ts) // step) - 1, 0, count - 1)
            parts.append(pa.table({"stream_id": table.column("stream_id"), "k": pa.array(k, pa.int64()),
                                   "n": pa.array(np.ones(len(ts), np.int64)),
                                   "bytes": pc.binary_length(table.column("line")).cast(pa.int64())}))
    if not parts:
        return _PARTS.empty_table()
    rows = pa.concat_tables([p.select(_PARTS.names).cast(_PARTS) for p in parts])
    summed = rows.group_by(["stream_id", "k"], use_threads=False).aggregate([("n", "sum"), ("bytes", "sum")])
    return summed.rename_columns({"n_sum": "n", "bytes_sum": "bytes"})


def _chunk_buckets(files: list[str], where: str, params: dict[str, Any]) -> list[pa.Table]:
    """Entries and bytes per stream and bucket read from chunk files (`params`: exactly those the SQL names)."""
    if not files:
        return []
    sql = (f"SELECT stream_id, {_BUCKET} AS k, count(*)::BIGINT AS n, sum(strlen(line))::BIGINT AS bytes "
           f"FROM read_parquet($files) WHERE stream_id = ANY($ids) AND {where} GROUP BY ALL")
    return [cursor().sql(sql, params={**params, "files": readable(files)}).to_arrow_table()]


# --- the answer -------------------------------------------------------------------------------

def _answer(buckets: dict[int, list[tuple[str, int]]], metrics: dict[str, dict[str, str]] | None) -> dict[str, Any]:
    """Loki's Prometheus-shaped answer: a name seen in several buckets makes it a matrix; series
    ordered by their first sample's value (descending), then name."""
    samples: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for stamp, volumes in buckets.items():
        for name, size in volumes:
            samples[name].append((stamp, size))
    matrix = any(len(s) > 1 for s in samples.values())
    ordered = sorted(samples.items(), key=lambda item: (-min(item[1])[1], item[0]))
    result: list[dict[str, Any]] = []
    for name, points in ordered:
        metric = dict(metrics[name]) if metrics is not None else {name: ""}
        points.sort()
        if matrix:
            result.append({"metric": metric, "values": [_point(t, v) for t, v in points]})
        else:
            result.append({"metric": metric, "value": _point(*points[0])})
    return {"resultType": "matrix" if matrix else "vector", "result": result,
            "stats": stats_block(ScanStats(), 0.0)}


def _point(ms: int, size: int) -> list[Any]:
    return [format_time(ms * MS), format_value(float(size))]

