"""The answers of a split query's parts merged into the unsplit answer (Loki's `data` objects).

Log queries (`streams`), parts in answer order (newest first for backward queries):
1. The engine orders entries by time in the query's direction, and entries of equal time by a key
   the JSON does not carry (stream id, then arrival: exec/logs.py). Parts cover disjoint times, so
   the unsplit answer's entries are the parts' entries one part after the other, cut at `limit`.
2. Whole parts are kept while they fit under the limit; of the part where the limit falls, its first
   k entries (`first_entries`). They are known from the JSON unless the cut falls inside a run of
   equal timestamps held by several streams: then None, and the part is asked again with limit k.
3. Streams are joined by label set, in the order of their first entry (as the engine lists them);
   each stream's entries keep the parts' order. Entries may carry a third element
   (`categorize-labels`); it travels with its entry.

Metric queries (`matrix`), parts in time order: series are joined by label set, their points in
time order (parts hold disjoint steps). Series are ordered by their label set written out, as
Loki's frontend merges them (the engine itself gives no fixed order).

`stats`: counters summed, `summary.splits` the number of parts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

Data = dict[str, Any]
_PER_SECOND = {"bytesProcessedPerSecond": "totalBytesProcessed",
               "linesProcessedPerSecond": "totalLinesProcessed"}


def count_entries(data: Data) -> int:
    return sum(len(stream["values"]) for stream in data["result"])


def first_entries(data: Data, k: int, backward: bool) -> Data | None:
    """`data` cut to its first `k` entries in answer order, or None when the JSON cannot tell which
    they are (step 2)."""
    streams = data["result"]
    entries = [(int(v[0]), i) for i, stream in enumerate(streams) for v in stream["values"]]
    if len(entries) <= k:
        return data
    entries.sort(key=(lambda e: -e[0]) if backward else (lambda e: e[0]))   # stable: stream order kept
    edge = entries[k - 1][0]
    if entries[k][0] == edge and len({i for ts, i in entries if ts == edge}) > 1:
        return None
    taken = [0] * len(streams)
    for _, i in entries[:k]:
        taken[i] += 1
    result = [{**stream, "values": stream["values"][:n]} for stream, n in zip(streams, taken, strict=True) if n]
    return {**data, "result": result}


def merge_streams(parts: Sequence[Data]) -> Data:
    """Log answers, in answer order and already cut to the limit, as one (step 3)."""
    grouped: dict[tuple[tuple[str, str], ...], Data] = {}
    for data in parts:
        for stream in data["result"]:
            key = tuple(sorted(stream["stream"].items()))
            into = grouped.get(key)
            if into is None:
                grouped[key] = {"stream": stream["stream"], "values": list(stream["values"])}
            else:
                into["values"].extend(stream["values"])
    flags = next((data["encodingFlags"] for data in parts if "encodingFlags" in data), None)
    head: Data = {"resultType": "streams"} if flags is None else {"resultType": "streams", "encodingFlags": flags}
    return {**head, "result": list(grouped.values()), "stats": merge_stats(parts)}


def merge_matrix(parts: Sequence[Data]) -> Data:
    """Metric answers of disjoint steps, in time order, as one."""
    grouped: dict[str, Data] = {}
    for data in parts:
        for series in data["result"]:
            key = label_text(series["metric"])
            into = grouped.get(key)
            if into is None:
                grouped[key] = {"metric": series["metric"], "values": list(series["values"])}
            else:
                into["values"].extend(series["values"])
    result = [grouped[key] for key in sorted(grouped)]
    return {"resultType": "matrix", "result": result, "stats": merge_stats(parts)}


def label_text(labels: dict[str, str]) -> str:
    """A label set as Prometheus writes it, `{a="1", b="2"}`: names sorted, values quoted."""
    return "{" + ", ".join(f"{name}={json.dumps(value, ensure_ascii=False)}"
                           for name, value in sorted(labels.items())) + "}"


def merge_stats(parts: Sequence[Data]) -> Data:
    blocks = [data["stats"] for data in parts if isinstance(data.get("stats"), dict)]
    if not blocks:
        return {}
    merged = blocks[0]
    for block in blocks[1:]:
        merged = _add(merged, block)
    summary = merged.get("summary")
    if isinstance(summary, dict):
        seconds = summary.get("execTime") or 0
        for rate, total in _PER_SECOND.items():
            if rate in summary and total in summary:
                summary[rate] = int(summary[total] / seconds) if seconds > 0 else 0
        summary["splits"] = len(parts)
    return merged


def _add(a: Any, b: Any) -> Any:
    """Two stats blocks added up: numbers summed, flags or-ed, other values kept from `a`."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {**b, **{key: _add(value, b[key]) if key in b else value for key, value in a.items()}}
    if isinstance(a, bool) and isinstance(b, bool):
        return a or b
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return a + b
    return a
