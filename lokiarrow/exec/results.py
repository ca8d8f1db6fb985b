"""Loki's JSON answers, built as plain dicts for orjson.

Log answers group entries into streams by their full label set: the stream's labels plus the
entry's structured metadata (Loki does the same when `categorize-labels` is not asked for), so one
stored stream can answer as several.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from lokiarrow.exec.logs import ScanStats
from lokiarrow.model import Labels


def streams_result(rows: pa.Table, labels_of: dict[int, Labels]) -> list[dict[str, Any]]:
    """Rows (stream_id, ts, line, metadata) in answer order -> Loki's `streams` result."""
    if "labels" in rows.column_names:
        return _streams_by_labels(rows)
    grouped: dict[tuple[int, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    metadata = rows.column("metadata").to_pylist() if "metadata" in rows.column_names else [None] * rows.num_rows
    for sid, ts, line, meta in zip(rows.column("stream_id").to_pylist(), rows.column("ts").to_pylist(),
                                   rows.column("line").to_pylist(), metadata, strict=True):
        key = (sid, tuple(meta) if meta else ())
        stream = grouped.get(key)
        if stream is None:
            labels = dict(labels_of[sid])
            for name, value in key[1]:
                # Loki renames metadata that collides with a stream label (LabelsBuilder.Add)
                labels[f"{name}_extracted" if name in labels_of[sid] else name] = value
            stream = grouped[key] = {"stream": labels, "values": []}
        stream["values"].append([str(ts), line])
    return list(grouped.values())


def _streams_by_labels(rows: pa.Table) -> list[dict[str, Any]]:
    """Rows whose final label sets a pipeline computed (`labels` map column, ordered by name).

    The map's keys and values are read out flat, once (a map column's own to_pylist builds a
    list of tuples per row, several times slower)."""
    column = rows.column("labels").combine_chunks()
    offsets = column.offsets.to_pylist()
    pairs = list(zip(column.keys.to_pylist(), column.items.to_pylist(), strict=True))
    grouped: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for i, (ts, line) in enumerate(zip(rows.column("ts").to_pylist(), rows.column("line").to_pylist(), strict=True)):
        key = tuple(pairs[offsets[i]:offsets[i + 1]])
        stream = grouped.get(key)
        if stream is None:
            stream = grouped[key] = {"stream": dict(key), "values": []}
        stream["values"].append([str(ts), line])
    return list(grouped.values())


def stats_block(stats: ScanStats, seconds: float) -> dict[str, Any]:
    """Loki's `stats` object; the summary is what Grafana shows."""
    def per_second(n: int) -> int:
        return int(n / seconds) if seconds > 0 else 0

    empty_store: dict[str, Any] = {"totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0,
                   "queryReferencedStructuredMetadata": False,
                   "chunk": {"headChunkBytes": 0, "headChunkLines": 0, "decompressedBytes": 0,
                             "decompressedLines": 0, "compressedBytes": 0, "totalDuplicates": 0,
                             "postFilterLines": 0, "headChunkStructuredMetadataBytes": 0,
                             "decompressedStructuredMetadataBytes": 0},
                   "chunkRefsFetchTime": 0, "congestionControlLatency": 0, "pipelineWrapperFilteredLines": 0}
    store = {**empty_store, "totalChunksRef": stats.chunks, "totalChunksDownloaded": stats.chunks}
    store["chunk"] = {**empty_store["chunk"], "decompressedLines": stats.lines - stats.head_lines,
                      "headChunkLines": stats.head_lines, "postFilterLines": stats.returned}
    return {
        "summary": {"bytesProcessedPerSecond": per_second(stats.bytes),
                    "linesProcessedPerSecond": per_second(stats.lines),
                    "totalBytesProcessed": stats.bytes, "totalLinesProcessed": stats.lines,
                    "execTime": seconds, "queueTime": 0, "subqueries": 0,
                    "totalEntriesReturned": stats.returned, "splits": 0, "shards": 0,
                    "totalPostFilterLines": stats.returned, "totalStructuredMetadataBytesProcessed": 0},
        "querier": {"store": store},
        "ingester": {"totalReached": 0, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": 0,
                     "store": empty_store},
        "cache": {name: {"entriesFound": 0, "entriesRequested": 0, "entriesStored": 0, "bytesReceived": 0,
                         "bytesSent": 0, "requests": 0, "downloadTime": 0, "queryLengthServed": 0}
                  for name in ("chunk", "index", "result", "statsResult", "volumeResult", "seriesResult",
                               "labelResult", "instantMetricResult")},
    }
