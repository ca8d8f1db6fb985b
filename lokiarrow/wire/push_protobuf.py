"""Loki's protobuf push body: a snappy block (not framed) holding a `logproto.PushRequest`.

Decoding a stream, fast path first (every step runs in C; Python touches each stream, not each entry):
1. Parse the request with `PushColumns`, which keeps each stream's entries as raw bytes.
2. Join a stream's entries with `1a 00` (an empty structuredMetadata pair) between them and parse the
   join as one `EntryColumns`: its repeated fields collect every entry's timestamp, line and metadata
   pairs in order, the empty pairs marking where one entry's metadata ends.
3. Join the timestamps and parse them as one `TimestampColumns` (seconds and nanos lists); join the
   metadata pairs and parse them as one `LabelPairColumns`.
4. proto3 leaves out zero values (an empty line, zero nanos, an empty metadata value), which would
   shift the columns: whenever a column's length is not the entry count, or the text is not valid
   UTF-8, that stream is decoded entry by entry instead (`_stream_slow`), which is always exact.
5. The lines and timestamps of all fast-path streams become one Arrow array each; every stream
   gets zero-copy slices of them (Arrow arrays made per stream cost more than the decoding).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from typing import Any

import cramjam
import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError

from lokiarrow.errors import BadRequest, BodyTooLarge
from lokiarrow.model import labels_string
from lokiarrow.wire import logproto
from lokiarrow.wire.stream import Pairs, PushStream

_NS = 1_000_000_000
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_MAX_SECONDS = (1 << 63) // _NS - 1   # beyond this, seconds * 1e9 + nanos may not fit in int64
_SEPARATOR = b"\x1a\x00"
_NOT_PROTOBUF = "cannot parse push request: the body is not a valid snappy-compressed logproto.PushRequest"


def decode_protobuf(data: bytes, max_decompressed_bytes: int) -> list[PushStream]:
    """Decode a snappy-compressed `logproto.PushRequest`. Raises BadRequest when malformed."""
    try:
        size = cramjam.snappy.decompress_raw_len(data)
    except Exception as exc:
        raise BadRequest(f"cannot parse push request: {_cause(exc)}") from None
    if size > max_decompressed_bytes:
        raise BodyTooLarge(f"request body too large: decompressed message size too large than max "
                         f"({size} vs {max_decompressed_bytes})")
    try:
        raw = cramjam.snappy.decompress_raw(data)
    except Exception as exc:
        raise BadRequest(f"cannot parse push request: {_cause(exc)}") from None
    return decode_push_request(memoryview(raw))   # no copy: upb parses any buffer


def decode_push_request(raw: bytes | memoryview) -> list[PushStream]:
    """Decode an uncompressed `logproto.PushRequest`. Raises BadRequest when malformed."""
    try:
        request = logproto.PushColumns.FromString(raw)
    except DecodeError:
        try:   # a label text that is not UTF-8: keep it, with U+FFFD for the bad bytes
            request = logproto.RawPushColumns.FromString(raw)
        except DecodeError:
            raise BadRequest(_NOT_PROTOBUF) from None
    out: list[PushStream | None] = []
    fast: list[tuple[int, _Columns]] = []
    for stream in request.streams:
        labels = stream.labels
        if isinstance(labels, bytes):
            labels = labels.decode("utf-8", "replace")
        entries = list(stream.entries)
        cols = _columns(labels, entries)
        if cols is None:
            out.append(_stream_slow(labels, entries))
        else:
            fast.append((len(out), cols))
            out.append(None)
    _to_arrow(fast, out)
    return [s for s in out if s is not None]


class _Columns:
    """One stream's entries as protobuf's flat repeated fields, before they become Arrow."""

    __slots__ = ("labels", "entries", "lines", "seconds", "nanos", "metadata")

    def __init__(self, labels: str, entries: list[bytes], lines: Any, seconds: Any, nanos: Any,
                 metadata: list[Pairs] | None) -> None:
        self.labels, self.entries, self.lines = labels, entries, lines
        self.seconds, self.nanos, self.metadata = seconds, nanos, metadata


def _columns(labels: str, entries: list[bytes]) -> _Columns | None:
    """Steps 2-4 for one stream; None when the flat fields cannot be trusted."""
    n = len(entries)
    if n == 0:
        return _Columns(labels, entries, [], [], None, None)
    try:
        cols = logproto.EntryColumns.FromString(_SEPARATOR.join(entries))
    except DecodeError:
        return None
    lines, stamps, pairs = cols.line, cols.timestamp, cols.structuredMetadata
    if len(lines) != n or len(stamps) != n:
        return None
    try:
        ts = logproto.TimestampColumns.FromString(b"".join(stamps))
    except DecodeError:
        return None
    seconds, nanos = ts.seconds, ts.nanos
    if len(seconds) != n or len(nanos) not in (0, n):
        return None
    metadata: list[Pairs] | None = None
    if len(pairs) != n - 1:
        metadata = _split_metadata(list(pairs), n)
        if metadata is None:
            return None
    return _Columns(labels, entries, lines, seconds, nanos or None, metadata)


def _to_arrow(fast: list[tuple[int, _Columns]], out: list[PushStream | None]) -> None:
    """Step 5: one line array and one timestamp array for the push, sliced per stream."""
    if not fast:
        return
    counts = [len(c.lines) for _, c in fast]
    total = sum(counts)
    seconds = np.fromiter(chain.from_iterable(c.seconds for _, c in fast), np.int64, count=total)
    if total and (np.abs(seconds) > _MAX_SECONDS).any():
        for position, c in fast:   # out of range: the slow path clamps, exactly
            out[position] = _stream_slow(c.labels, c.entries)
        return
    nanos = np.fromiter(chain.from_iterable(c.nanos if c.nanos is not None else repeat(0, n)
                                            for (_, c), n in zip(fast, counts, strict=True)),
                        np.int64, count=total)
    timestamps = pa.array(seconds * _NS + nanos, pa.int64())
    lines = pa.array(list(chain.from_iterable(c.lines for _, c in fast)), pa.string())
    offset = 0
    for (position, c), n in zip(fast, counts, strict=True):
        out[position] = PushStream(c.labels, timestamps.slice(offset, n), lines.slice(offset, n), c.metadata)
        offset += n


def _split_metadata(pairs: list[bytes], n: int) -> list[Pairs] | None:
    """Cut the flat pair list at the empty separators into one list per entry; None if ambiguous."""
    if pairs.count(b"") != n - 1:
        return None   # an empty pair inside an entry: the separators cannot be told apart
    try:
        cols = logproto.LabelPairColumns.FromString(b"".join(pairs))
    except DecodeError:
        return None
    names, values = cols.name, cols.value
    if len(names) != len(pairs) - (n - 1) or len(values) != len(names):
        return None
    out: list[Pairs] = [[] for _ in range(n)]
    entry = k = 0
    for p in pairs:
        if p:
            out[entry].append((names[k], values[k]))
            k += 1
        else:
            entry += 1
    return out


def _stream_slow(labels: str, entries: list[bytes]) -> PushStream:
    """Decode entry by entry: exact for every valid body, and the one that reports malformed ones."""
    timestamps: list[int] = []
    lines: list[str] = []
    metadata: list[Pairs] = []
    for raw in entries:
        entry = _parse_entry(raw)
        ts = entry.timestamp
        timestamps.append(min(max(ts.seconds * _NS + ts.nanos, _INT64_MIN), _INT64_MAX))   # validation rejects
        lines.append(_text(entry.line))
        metadata.append([(_text(p.name), _text(p.value)) for p in entry.structuredMetadata])
    return PushStream(labels, pa.array(timestamps, pa.int64()), pa.array(lines, pa.string()),
                      metadata if any(metadata) else None)


def _parse_entry(raw: bytes) -> Any:
    try:
        return logproto.EntryAdapter.FromString(raw)
    except DecodeError:
        try:
            return logproto.RawEntryAdapter.FromString(raw)
        except DecodeError:
            raise BadRequest(_NOT_PROTOBUF) from None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _cause(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if text.startswith("snappy") else f"snappy: {text}"


def encode_push_request(streams: Iterable[PushStream]) -> bytes:
    """Encode streams as Loki's push body: `logproto.PushRequest`, snappy block compressed.

    Dict labels are written as their canonical text."""
    return encode_streams(
        (s.labels if isinstance(s.labels, str) else labels_string(s.labels),
         s.timestamps.to_pylist(), s.lines.to_pylist(), s.metadata) for s in streams)


def encode_streams(streams: Iterable[tuple[str, Sequence[int], Sequence[str], Sequence[Pairs] | None]]) -> bytes:
    """The push body of (label text, timestamps, lines, metadata pairs per entry or None) streams,
    built by protobuf's C runtime. Every entry carries its timestamp field (as Go's Loki and
    Promtail write it), so any Loki or lokiarrow server reads the body alike."""
    request = logproto.PushRequest()
    for labels, timestamps, lines, metadata in streams:
        add = request.streams.add(labels=labels).entries.add
        for i, (ts, line) in enumerate(zip(timestamps, lines, strict=True)):
            entry = add(line=line)
            stamp = entry.timestamp
            stamp.SetInParent()
            stamp.seconds, stamp.nanos = divmod(ts, _NS)
            if metadata is not None and metadata[i]:
                pairs = entry.structuredMetadata
                for name, value in metadata[i]:
                    pairs.add(name=name, value=value)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
