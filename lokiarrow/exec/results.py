"""Loki's JSON answers, built as plain dicts for orjson.

Log answers group entries into streams by their full label set: the stream's labels plus the
entry's structured metadata (Loki does the same when `categorize-labels` is not asked for), so one
stored stream can answer as several.

With `categorize-labels` (Loki 3's `X-Loki-Response-Encoding-Flags`) each label of an entry's final
set falls in one of three categories, as Loki's LabelsBuilder files them:
1. `__error__` / `__error_details__`, and any name a parser or `label_format` set: `parsed`;
2. structured metadata (renamed `<name>_extracted` where a stream label has the name) that still
   holds the stored value: `structuredMetadata`;
3. a stream label that still holds the stored value: the stream's labels.
Streams are then grouped by their category-3 labels alone, and every entry carries a third element
`{"structuredMetadata": {...}, "parsed": {...}}`, each key only when not empty.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pyarrow as pa

from lokiarrow.exec.logs import ScanStats
from lokiarrow.model import Labels

Pairs = tuple[tuple[str, str], ...]
_ERROR_LABELS = ("__error__", "__error_details__")
_EXTRACTED = "_extracted"


class Streams(list[dict[str, Any]]):
    """Loki's `streams` result, which can also give its entries as `categorize-labels` asks for them.

    A list of `{"stream", "values"}` dicts (orjson writes it as a list); it keeps the rows it was
    built from, so `categorized` regroups the same entries without running the query again."""

    def __init__(self, streams: list[dict[str, Any]], rows: pa.Table, labels_of: dict[int, Labels]) -> None:
        super().__init__(streams)
        self._rows = rows
        self._labels_of = labels_of

    def categorized(self, formatted: Collection[str] = ()) -> list[dict[str, Any]]:
        """The entries grouped by stream labels alone (see the module docstring). `formatted`: the
        names a `label_format` stage of the query set (always `parsed`, even to an unchanged value)."""
        return categorized_streams(self._rows, self._labels_of, formatted)


def streams_result(rows: pa.Table, labels_of: dict[int, Labels]) -> Streams:
    """Rows (stream_id, ts, line, metadata) in answer order -> Loki's `streams` result."""
    if "labels" in rows.column_names:
        return Streams(_streams_by_labels(rows), rows, labels_of)
    grouped: dict[tuple[int, Pairs], dict[str, Any]] = {}
    for sid, ts, line, meta in zip(rows.column("stream_id").to_pylist(), rows.column("ts").to_pylist(),
                                   rows.column("line").to_pylist(), _metadata(rows), strict=True):
        key = (sid, meta)
        stream = grouped.get(key)
        if stream is None:
            labels = dict(labels_of[sid])
            labels.update(_renamed_metadata(meta, labels_of[sid]))
            stream = grouped[key] = {"stream": labels, "values": []}
        stream["values"].append([str(ts), line])
    return Streams(list(grouped.values()), rows, labels_of)


def _renamed_metadata(meta: Pairs, stream: Labels) -> dict[str, str]:
    # Loki renames metadata that collides with a stream label (LabelsBuilder.Add)
    return {f"{name}{_EXTRACTED}" if name in stream else name: value for name, value in meta}


def _metadata(rows: pa.Table) -> list[Pairs]:
    """Each row's structured metadata as (name, value) pairs in stored order (none: empty)."""
    if "metadata" not in rows.column_names:
        return [()] * rows.num_rows
    return _map_pairs(rows.column("metadata"))


def _map_pairs(column: pa.ChunkedArray | pa.Array) -> list[Pairs]:
    """A map column's rows as tuples of pairs, its keys and values read out flat, once (a map
    column's own to_pylist builds a list of tuples per row, several times slower)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    offsets = column.offsets.to_pylist()
    pairs = list(zip(column.keys.to_pylist(), column.items.to_pylist(), strict=True))
    valid = column.is_valid().to_pylist() if column.null_count else [True] * len(column)
    return [tuple(pairs[offsets[i]:offsets[i + 1]]) if valid[i] else () for i in range(len(column))]


def _streams_by_labels(rows: pa.Table) -> list[dict[str, Any]]:
    """Rows whose final label sets a pipeline computed (`labels` map column, ordered by name)."""
    grouped: dict[Pairs, dict[str, Any]] = {}
    for key, ts, line in zip(_map_pairs(rows.column("labels")), rows.column("ts").to_pylist(),
                             rows.column("line").to_pylist(), strict=True):
        stream = grouped.get(key)
        if stream is None:
            stream = grouped[key] = {"stream": dict(key), "values": []}
        stream["values"].append([str(ts), line])
    return list(grouped.values())


def categorized_streams(rows: pa.Table, labels_of: dict[int, Labels],
                        formatted: Collection[str] = ()) -> list[dict[str, Any]]:
    """Rows in answer order -> the `streams` result `categorize-labels` asks for, streams in the
    order their first entry comes."""
    sids = rows.column("stream_id").to_pylist()
    metadata = _metadata(rows)
    finals = _map_pairs(rows.column("labels")) if "labels" in rows.column_names else None
    grouped: dict[Pairs, dict[str, Any]] = {}
    for i, (sid, ts, line) in enumerate(zip(sids, rows.column("ts").to_pylist(), rows.column("line").to_pylist(),
                                            strict=True)):
        stream = labels_of[sid]
        if finals is None:
            key, entry = tuple(sorted(stream.items())), {}
            renamed = _renamed_metadata(metadata[i], stream)
            if renamed:
                entry["structuredMetadata"] = dict(sorted(renamed.items()))
        else:
            key, entry = _categorize(finals[i], stream, dict(metadata[i]), formatted)
        group = grouped.get(key)
        if group is None:
            group = grouped[key] = {"stream": dict(key), "values": []}
        group["values"].append([str(ts), line, entry])
    return list(grouped.values())


def _categorize(final: Pairs, stream: Labels, metadata: dict[str, str],
                formatted: Collection[str]) -> tuple[Pairs, dict[str, dict[str, str]]]:
    """One entry's final labels (ordered by name) -> its stream labels and its third element."""
    kept: list[tuple[str, str]] = []
    meta: dict[str, str] = {}
    parsed: dict[str, str] = {}
    for name, value in final:
        if name in _ERROR_LABELS or name in formatted:
            parsed[name] = value
        elif stream.get(name) == value:
            kept.append((name, value))
        elif _from_metadata(name, value, stream, metadata):
            meta[name] = value
        else:
            parsed[name] = value
    entry = {}
    if meta:
        entry["structuredMetadata"] = meta
    if parsed:
        entry["parsed"] = parsed
    return tuple(kept), entry


def _from_metadata(name: str, value: str, stream: Labels, metadata: dict[str, str]) -> bool:
    if name not in stream and metadata.get(name) == value:
        return True
    base = name[:-len(_EXTRACTED)] if name.endswith(_EXTRACTED) else None
    return base is not None and base in stream and metadata.get(base) == value


# Loki's counters for its data-object storage, which lokiarrow does not have: always 0
_DATAOBJ_STATS = ("prePredicateDecompressedRows", "prePredicateDecompressedBytes",
                  "prePredicateDecompressedStructuredMetadataBytes", "postPredicateRows",
                  "postPredicateDecompressedBytes", "postPredicateStructuredMetadataBytes", "postFilterRows",
                  "pagesScanned", "pagesDownloaded", "pagesDownloadedBytes", "pageBatches", "totalRowsAvailable",
                  "totalPageDownloadTime", "wireBytesTransferred")


def stats_block(stats: ScanStats, seconds: float) -> dict[str, Any]:
    """Loki's `stats` object; the summary is what Grafana shows."""
    def per_second(n: int) -> int:
        return int(n / seconds) if seconds > 0 else 0

    empty_store: dict[str, Any] = {"totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0,
                   "queryReferencedStructuredMetadata": False, "queryUsedV2Engine": False,
                   "chunk": {"headChunkBytes": 0, "headChunkLines": 0, "decompressedBytes": 0,
                             "decompressedLines": 0, "compressedBytes": 0, "totalDuplicates": 0,
                             "postFilterLines": 0, "headChunkStructuredMetadataBytes": 0,
                             "decompressedStructuredMetadataBytes": 0},
                   "chunkRefsFetchTime": 0, "congestionControlLatency": 0, "pipelineWrapperFilteredLines": 0,
                   "dataobj": dict.fromkeys(_DATAOBJ_STATS, 0)}
    store = {**empty_store, "totalChunksRef": stats.chunks, "totalChunksDownloaded": stats.chunks}
    store["chunk"] = {**empty_store["chunk"], "decompressedLines": stats.lines - stats.head_lines,
                      "headChunkLines": stats.head_lines, "postFilterLines": stats.returned,
                      "decompressedBytes": stats.bytes - stats.head_bytes, "headChunkBytes": stats.head_bytes}
    return {
        "summary": {"bytesProcessedPerSecond": per_second(stats.bytes),
                    "linesProcessedPerSecond": per_second(stats.lines),
                    "totalBytesProcessed": stats.bytes, "totalLinesProcessed": stats.lines,
                    "execTime": seconds, "queueTime": 0, "subqueries": 0,
                    "totalEntriesReturned": stats.returned, "splits": 0, "shards": 0,
                    "totalPostFilterLines": stats.returned, "totalStructuredMetadataBytesProcessed": 0},
        "querier": {"store": store, "querierExecTime": seconds},
        "ingester": {"totalReached": 0, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": 0,
                     "store": empty_store},
        "cache": {name: {"entriesFound": 0, "entriesRequested": 0, "entriesStored": 0, "bytesReceived": 0,
                         "bytesSent": 0, "requests": 0, "downloadTime": 0, "queryLengthServed": 0}
                  for name in ("chunk", "index", "result", "statsResult", "volumeResult", "seriesResult",
                               "labelResult", "instantMetricResult", "logResult", "taskResult")},
        "index": {"totalChunks": stats.chunks, "postFilterChunks": stats.chunks, "shardsDuration": 0,
                  "usedBloomFilters": False, "totalStreams": 0, "chunkRefsLookupTime": 0, "bloomFilterTime": 0},
    }
