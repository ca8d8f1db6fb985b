"""The answer encodings a query request can ask for besides Loki's default JSON.

- `X-Loki-Response-Encoding-Flags: <flag>[,<flag>…]`: the flags as Loki reads them (split on commas,
  neither trimmed nor lowercased, each once). A `streams` answer echoes every flag in
  `data.encodingFlags` (between `resultType` and `result`, where Grafana's parser looks first), and
  `categorize-labels` regroups its entries (`exec/results.Streams.categorized`). Metric answers stay
  as they are, as Loki's query frontend writes them.
- `Accept: application/vnd.apache.parquet` (that exact value): the answer as one Parquet file with
  the columns of Loki's `queryrange` Parquet encoder, a row per log entry or per sample:
  logs `timestamp` (int64 TIMESTAMP(NANOS, UTC), delta-encoded), `labels` (MAP<string, string>),
  `line` (string, LZ4_RAW); metrics `timestamp` (int64 TIMESTAMP(MILLIS, UTC), delta-encoded),
  `labels`, `value` (double). Every column is required; pages are version 2, other columns
  uncompressed, no dictionaries.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lokiarrow.logql import ast

ENCODING_FLAGS_HEADER = "X-Loki-Response-Encoding-Flags"
CATEGORIZE_LABELS = "categorize-labels"
PARQUET_TYPE = "application/vnd.apache.parquet"

_LABELS = pa.map_(pa.string(), pa.field("value", pa.string(), nullable=False))
LOGS_SCHEMA = pa.schema([pa.field("timestamp", pa.timestamp("ns", tz="UTC"), nullable=False),
                         pa.field("labels", _LABELS, nullable=False),
                         pa.field("line", pa.string(), nullable=False)])
METRICS_SCHEMA = pa.schema([pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
                            pa.field("labels", _LABELS, nullable=False),
                            pa.field("value", pa.float64(), nullable=False)])


def encoding_flags(header: str | None) -> list[str]:
    """The flags of an `X-Loki-Response-Encoding-Flags` value, in order, each once."""
    return list(dict.fromkeys(header.split(","))) if header else []


def with_encoding_flags(data: dict[str, Any], flags: list[str], expr: ast.Expr) -> dict[str, Any]:
    """A query answer's `data` as the flags ask for it: only `streams` answers change. `expr`: the
    query (its `label_format` stages set labels Loki always files as parsed)."""
    if not flags or data.get("resultType") != "streams":
        return data
    result = data["result"]
    if CATEGORIZE_LABELS in flags:
        # an answer without entries is a plain empty list
        # Streams, or several tenants' (exec/multitenant.TenantStreams)
        result = result.categorized(_formatted_names(expr)) if hasattr(result, "categorized") else []
    return {"resultType": "streams", "encodingFlags": flags, "result": result,
            **{k: v for k, v in data.items() if k not in ("resultType", "result")}}


def _formatted_names(expr: ast.Expr) -> frozenset[str]:
    stages = expr.stages if isinstance(expr, ast.LogExpr) else ()
    return frozenset(fmt.name for stage in stages if isinstance(stage, ast.LabelFormat) for fmt in stage.formats)


def parquet_answer(data: dict[str, Any]) -> bytes:
    """A query answer's `data` as Loki's Parquet answer (stats are not part of it)."""
    kind = data["resultType"]
    if kind == "streams":
        table = _logs_table(data["result"])
    elif kind == "matrix":
        table = _metrics_table([(s["metric"], s["values"]) for s in data["result"]])
    elif kind == "vector":
        table = _metrics_table([(s["metric"], [s["value"]]) for s in data["result"]])
    else:  # scalar: one sample without labels
        table = _metrics_table([({}, [data["result"]])])
    sink = io.BytesIO()
    value_column = table.schema.names[2]
    pq.write_table(table, sink, use_dictionary=False, data_page_version="2.0", store_schema=False,
                   compression={name: "lz4" if name == "line" else "none" for name in
                                ("timestamp", "labels.key_value.key", "labels.key_value.value", value_column)},
                   column_encoding={"timestamp": "DELTA_BINARY_PACKED"})
    return sink.getvalue()


def _logs_table(streams: list[dict[str, Any]]) -> pa.Table:
    stamps: list[int] = []
    labels: list[list[tuple[str, str]]] = []
    lines: list[str] = []
    for stream in streams:
        pairs = sorted(stream["stream"].items())
        for value in stream["values"]:
            stamps.append(int(value[0]))
            labels.append(pairs)
            lines.append(value[1])
    return pa.table([pa.array(stamps, pa.int64()).cast(LOGS_SCHEMA.field("timestamp").type),
                     pa.array(labels, _LABELS), pa.array(lines, pa.string())], schema=LOGS_SCHEMA)


def _metrics_table(series: list[tuple[dict[str, str], list[list[Any]]]]) -> pa.Table:
    stamps: list[int] = []
    labels: list[list[tuple[str, str]]] = []
    values: list[float] = []
    for metric, points in series:
        pairs = sorted(metric.items())
        for seconds, value in points:
            stamps.append(round(float(seconds) * 1000))
            labels.append(pairs)
            values.append(float(value))  # Python reads "+Inf", "-Inf" and "NaN" as Go writes them
    return pa.table([pa.array(stamps, pa.int64()).cast(METRICS_SCHEMA.field("timestamp").type),
                     pa.array(labels, _LABELS), pa.array(values, pa.float64())], schema=METRICS_SCHEMA)
