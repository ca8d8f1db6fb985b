"""The push path: request bytes to validated, enriched entries in one Arrow batch (`ENTRIES`).

`prepare_push`, in the order Loki's push handler and distributor work:
  1. decode the body into streams (`lokiarrow.wire`); a request without streams is refused (422);
  2. parse every stream's label text (cached per text); one that does not parse refuses the whole
     request; add `service_name`;
  3. drop streams without entries; truncate long lines when `max_line_size_truncate`;
  4. refuse streams whose labels break a limit, then entries (`validate`), keeping the rest;
  5. sanitise structured metadata names, add `detected_level` (`enrich`);
  6. take the accepted bytes from the tenant's rate limit (429 refuses the whole request);
  7. build the batch; the refusals of step 4 become the message of the 400 to answer once the
     accepted part is stored;
  8. as Loki's ingester after the distributor: a stream not active yet is refused when the tenant
     has `max_global_streams_per_user` active streams; then each stream's accepted bytes come from
     its own rate limit: a stream over either is dropped whole and the answer becomes 429 with Loki's message
     for the last such stream (it replaces the 400 of step 4, as the ingester's error replaces the
     distributor's); when no stream is left the push is refused with that 429 at once.
Entries keep request order. The decoded streams belong to this call (metadata lists are edited).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.config import Limits
from lokiarrow.errors import BadRequest, LokiError, TooManyRequests
from lokiarrow.ingest import validate
from lokiarrow.ingest.enrich import (
    add_service_name,
    level_detector,
    level_from_labels,
    level_from_metadata,
    sanitize_metadata_name,
)
from lokiarrow.ingest.limits import (
    ACTIVE_STREAMS,
    RATE_LIMITER,
    STREAM_LIMITED,
    STREAM_RATE_LIMITER,
    ActiveStreams,
    RateLimiter,
    StreamRateLimiter,
    stream_rate_limited,
)
from lokiarrow.logql.promlabels import parse_label_pairs
from lokiarrow.model import go_quote, labels_string, stream_id
from lokiarrow.store.schema import ENTRIES, METADATA_TYPE
from lokiarrow.wire import PushStream, decode_push
from lokiarrow.wire.stream import Pairs

LABEL_CACHE_SIZE = 100_000   # Loki's maxLabelCacheSize


class NoStreams(BadRequest):
    """A push without any stream: Loki answers 422."""

    status = 422


@dataclass(frozen=True, slots=True)
class PreparedPush:
    """The accepted part of a push and what to answer once it is stored.

    `batch` holds the accepted entries (ENTRIES schema, request order); `lines` and `bytes` count
    them (bytes of lines and structured metadata, `detected_level` not counted, as Loki's rate limit
    does); `error` is the message for the refused part, None when everything was accepted, and
    `status` the status to answer it with (400, or 429 when a stream's rate limit refused entries).
    """

    batch: pa.RecordBatch
    lines: int
    bytes: int
    error: str | None
    status: int = 400

    def failure(self) -> LokiError | None:
        """The error to raise once the batch is stored, None when everything was accepted."""
        if self.error is None:
            return None
        return TooManyRequests(self.error) if self.status == TooManyRequests.status else BadRequest(self.error)


@dataclass(frozen=True, slots=True)
class _Labels:
    """A label text, parsed and enriched for one `discover_service_name` list."""

    pairs: list[tuple[str, str]]   # sorted by name, duplicates kept (for validation)
    labels: dict[str, str]
    text: str                      # what Loki's messages print
    canonical: str
    stream_id: int
    discover: tuple[str, ...]
    checked: list[tuple[Limits | None, str | None]] = field(default_factory=lambda: [(None, None)])

    def error(self, limits: Limits) -> str | None:
        """validate.label_error, remembered for the last Limits object seen (the server's never
        changes); `checked` holds one (limits, error) tuple, swapped whole, so threads never mix two."""
        last = self.checked[0]
        if last[0] is not limits:
            last = (limits, validate.label_error(self.text, self.pairs, limits))
            self.checked[0] = last
        return last[1]


_LABELS: dict[str, _Labels] = {}


def _labels(raw: str | dict[str, str], limits: Limits) -> _Labels:
    text = raw if isinstance(raw, str) else labels_string(raw)
    cached = _LABELS.get(text)
    if cached is not None and cached.discover == limits.discover_service_name:
        return cached
    try:
        pairs = parse_label_pairs(text)
    except LokiError as exc:
        raise BadRequest(validate.INVALID_LABELS % exc.message) from None
    base = dict(pairs)
    labels = add_service_name(base, limits)
    if labels is not base:
        pairs = sorted([*pairs, (validate.SERVICE_NAME, labels[validate.SERVICE_NAME])], key=lambda p: p[0])
    canonical = labels_string(labels)
    shown = canonical if len(pairs) == len(labels) else "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in pairs) + "}"
    entry = _Labels(pairs, labels, shown, canonical, stream_id(canonical), limits.discover_service_name)
    if len(_LABELS) >= LABEL_CACHE_SIZE:
        _LABELS.clear()
    _LABELS[text] = entry
    return entry


def prepare_push(tenant: str, body: bytes, content_type: str | None, content_encoding: str | None,
                 limits: Limits, now_ns: int, legacy: bool = False,
                 limiter: RateLimiter | None = None,
                 stream_limiter: StreamRateLimiter | None = None) -> PreparedPush:
    """Decode, validate and enrich a push for `tenant` at time `now_ns`.

    Raises BadRequest when the body is malformed or a label text does not parse, NoStreams (422)
    when it holds no stream, TooManyRequests (429) past the tenant's rate limit (`limiter`, the
    process's shared one by default) or when every accepted stream is past its own
    (`stream_limiter`, likewise). Otherwise returns the accepted entries and the error to answer
    for the refused ones (`PreparedPush.failure`).
    """
    streams = decode_push(body, content_type, content_encoding, legacy=legacy)
    return prepare_streams(tenant, streams, limits, now_ns, limiter, stream_limiter)


def prepare_streams(tenant: str, streams: list[PushStream], limits: Limits, now_ns: int,
                    limiter: RateLimiter | None = None,
                    stream_limiter: StreamRateLimiter | None = None) -> PreparedPush:
    """`prepare_push` from step 2, for streams decoded elsewhere (gRPC, OTLP)."""
    if not streams:
        raise NoStreams(validate.MISSING_STREAMS)
    parsed = [_labels(s.labels, limits) for s in streams]
    errors: list[tuple[int, int, str]] = []   # (stream in request, row, message): sorted into Loki's order
    kept: list[_Kept] = []
    for i, (lbs, stream) in enumerate(zip(parsed, streams, strict=True)):
        if not len(stream):
            continue
        problem = lbs.error(limits)
        if problem is not None:
            errors.append((i, -1, problem))
        else:
            kept.append(_Kept(i, lbs, stream))
    if not kept:
        return PreparedPush(_EMPTY, 0, 0, validate.group_errors([m for _, _, m in sorted(errors)]))
    accepted = _accept(kept, limits, now_ns, errors)
    batch, size = accepted.batch, accepted.size
    if batch.num_rows:
        (limiter or RATE_LIMITER).check(tenant, batch.num_rows, size, limits, now_ns)
        limited = _limit_streams(tenant, kept, accepted, limits, now_ns, stream_limiter or STREAM_RATE_LIMITER)
        if limited is not None:
            if not limited.batch.num_rows:
                raise TooManyRequests(limited.message)
            return PreparedPush(limited.batch, limited.batch.num_rows, limited.size, limited.message,
                                TooManyRequests.status)
    errors.sort(key=lambda e: (e[0], e[1]))
    return PreparedPush(batch, batch.num_rows, size, validate.group_errors([m for _, _, m in errors]))


@dataclass(frozen=True, slots=True)
class _Kept:
    index: int            # position in the request
    labels: _Labels
    stream: PushStream


@dataclass(frozen=True, slots=True)
class _Accepted:
    batch: pa.RecordBatch   # ENTRIES, request order
    size: int               # bytes of lines and structured metadata
    owner: pa.Array         # int32 per row: its stream's position in `kept`
    row_bytes: pa.Array     # int64 per row: bytes of its line and structured metadata


@dataclass(frozen=True, slots=True)
class _Limited:
    batch: pa.RecordBatch   # what is left to store
    size: int
    message: str            # the 429's


_EMPTY = pa.RecordBatch.from_pylist([], schema=ENTRIES)
_LEVEL_KEY = pa.scalar(validate.LEVEL_LABEL, pa.string())


def _limit_streams(tenant: str, kept: list[_Kept], accepted: _Accepted, limits: Limits, now_ns: int,
                   limiter: StreamRateLimiter, active: ActiveStreams | None = None) -> _Limited | None:
    """Step 8, as Loki's ingester takes each stream: a stream it does not hold yet is refused when
    the tenant has `max_global_streams_per_user` active ones; then the stream's rate limit must pay
    for its bytes. None when nothing was refused; else what is left, and the last refusal's words."""
    owner = accepted.owner.to_numpy(zero_copy_only=False)
    row_bytes = accepted.row_bytes.to_numpy(zero_copy_only=False)
    stream_bytes = np.bincount(owner, weights=row_bytes, minlength=len(kept)).astype(np.int64)
    present = np.flatnonzero(np.bincount(owner, minlength=len(kept))).tolist()
    admitted = (active or ACTIVE_STREAMS).admit(tenant, [kept[i].labels.stream_id for i in present],
                                                limits.max_global_streams_per_user, now_ns)
    too_many = [i for i, ok in zip(present, admitted, strict=True) if not ok]
    present = [i for i, ok in zip(present, admitted, strict=True) if ok]
    paid = limiter.allow(tenant, [(kept[i].labels.stream_id, int(stream_bytes[i])) for i in present],
                         limits, now_ns)
    refused = sorted(too_many + [i for i, ok in zip(present, paid, strict=True) if not ok])
    if not refused:
        return None
    last = np.flatnonzero(owner == refused[-1])
    if refused[-1] in too_many:
        message = STREAM_LIMITED % (kept[refused[-1]].labels.canonical, tenant)
    else:
        timestamps = accepted.batch.column("ts").to_numpy(zero_copy_only=False)[last].tolist()
        message = stream_rate_limited(tenant, kept[refused[-1]].labels.canonical, timestamps,
                                      row_bytes[last].tolist(), limits)
    keep = ~np.isin(owner, refused)
    return _Limited(accepted.batch.filter(pa.array(keep)), accepted.size - int(stream_bytes[refused].sum()), message)


def _accept(kept: list[_Kept], limits: Limits, now_ns: int, errors: list[tuple[int, int, str]]) -> _Accepted:
    """Steps 3-5 and 7 for the streams whose labels passed; appends entry refusals to `errors`."""
    if sum(len(k.stream) for k in kept) < 64 * len(kept):   # many small streams: one conversion, not one per stream
        stream_of_row = pa.array([i for i, k in enumerate(kept) for _ in range(len(k.stream))], pa.int32())
    else:
        stream_of_row = pa.concat_arrays([pa.repeat(pa.scalar(i, pa.int32()), len(k.stream))
                                          for i, k in enumerate(kept)])
    timestamps = pa.concat_arrays([k.stream.timestamps for k in kept])
    lines = pa.concat_arrays([k.stream.lines for k in kept])
    metadata: list[Pairs] | None = None
    if any(k.stream.metadata is not None for k in kept):
        metadata = [pairs for k in kept for pairs in (k.stream.metadata or [[] for _ in range(len(k.stream))])]
    line_bytes = pc.binary_length(lines)
    if limits.max_line_size_truncate and limits.max_line_size:
        lines, line_bytes = _truncate(lines, line_bytes, limits)

    owners: list[int] = []

    def kept_of(row: int) -> _Kept:   # only for refused rows
        if not owners:
            owners.extend(stream_of_row.to_pylist())
        return kept[owners[row]]

    refused = validate.entry_errors(timestamps, line_bytes, metadata, lambda row: kept_of(row).labels.text,
                                    limits, now_ns)
    if refused:
        errors.extend((kept_of(row).index, row, message) for row, message in refused)
        refused_rows = {row for row, _ in refused}
        keep = pa.array([row not in refused_rows for row in range(len(lines))], pa.bool_())
        timestamps, lines, line_bytes, stream_of_row = (
            a.filter(keep) for a in (timestamps, lines, line_bytes, stream_of_row))
        if metadata is not None:
            metadata = [pairs for row, pairs in enumerate(metadata) if row not in refused_rows]
    row_bytes = pc.cast(line_bytes, pa.int64())
    if metadata is not None:
        _sanitize(metadata)
        row_bytes = pc.add(row_bytes, pa.array([validate.metadata_size(pairs) if pairs else 0 for pairs in metadata],
                                               pa.int64()))
    size = pc.sum(row_bytes).as_py() or 0
    column = _metadata_column(kept, stream_of_row, lines, metadata, limits)
    labels = pc.take(pa.array([k.labels.canonical for k in kept], pa.string()), stream_of_row)
    ids = pc.take(pa.array([k.labels.stream_id for k in kept], pa.int64()), stream_of_row)
    batch = pa.RecordBatch.from_arrays([labels, ids, timestamps, lines, column], schema=ENTRIES)
    return _Accepted(batch, size, stream_of_row, row_bytes)


def _truncate(lines: pa.StringArray, line_bytes: pa.Array, limits: Limits) -> tuple[pa.StringArray, pa.Array]:
    """Loki's truncateLines: a line over max_line_size keeps its first max - len(identifier) bytes
    and gets the identifier appended; when that leaves nothing it stays (and is refused as too long)."""
    suffix = getattr(limits, "max_line_size_truncate_identifier", "")
    keep = limits.max_line_size - len(suffix.encode())
    long = pc.greater(line_bytes, pa.scalar(limits.max_line_size, pa.int64()))
    if keep <= 0 or not pc.any(long).as_py():
        return lines, line_bytes
    cut = [line.encode()[:keep].decode("utf-8", "ignore") + suffix for line in lines.filter(long).to_pylist()]
    lines = pc.replace_with_mask(lines, long, pa.array(cut, pa.string()))
    return lines, pc.binary_length(lines)


_SANITIZED: dict[str, str] = {}


def _sanitized_name(name: str) -> str:
    clean = _SANITIZED.get(name)
    if clean is None:
        try:
            clean = sanitize_metadata_name(name)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if len(_SANITIZED) < LABEL_CACHE_SIZE:
            _SANITIZED[name] = clean
    return clean


def _sanitize(metadata: list[Pairs]) -> None:
    """Structured metadata as Loki stores it: names sanitised (a name given twice keeps its last
    value), U+FFFD (bytes that were not UTF-8) removed from values. Edits `metadata` in place."""
    for i, pairs in enumerate(metadata):
        if pairs and any(_sanitized_name(name) != name or "\ufffd" in value for name, value in pairs):
            clean: dict[str, str] = {}
            for name, value in pairs:
                clean[_sanitized_name(name)] = value.replace("\ufffd", "")
            metadata[i] = list(clean.items())


def _metadata_column(kept: list[_Kept], stream_of_row: pa.Array, lines: pa.StringArray,
                     metadata: list[Pairs] | None, limits: Limits) -> pa.Array:
    """The `metadata` map column: each row's pairs, then `detected_level` when Loki adds one."""
    n = len(lines)
    if not (limits.discover_log_levels and limits.allow_structured_metadata):
        if metadata is None:
            return pa.nulls(n, METADATA_TYPE)
        return _map(metadata, [None] * n)
    detector = level_detector(limits)
    stream_levels = [level_from_labels(k.labels.labels, detector.fields) for k in kept]
    if metadata is None:
        levels = pc.take(pa.array(stream_levels, pa.string()), stream_of_row)
        missing = levels.is_null()
        if pc.any(missing).as_py():
            levels = pc.replace_with_mask(levels, missing, detector.detect(lines.filter(missing)))
        offsets = pa.array(range(n + 1), pa.int32())
        return pa.MapArray.from_arrays(offsets, pa.repeat(_LEVEL_KEY, n), levels, type=METADATA_TYPE)
    owners = stream_of_row.to_pylist()
    found: list[str | None] = [level_from_metadata(pairs, stream_levels[owner], detector.fields) if pairs
                               else stream_levels[owner] for pairs, owner in zip(metadata, owners, strict=True)]
    missing = pa.array([level is None for level in found], pa.bool_())
    if pc.any(missing).as_py():
        detected = iter(detector.detect(lines.filter(missing)).to_pylist())
        found = [next(detected) if level is None else level for level in found]
    return _map(metadata, found)


def _map(metadata: list[Pairs], levels: list[str | None]) -> pa.Array:
    """A map column from each row's pairs plus its level (None or "" adds none); empty rows are null."""
    offsets: list[int | None] = []
    keys: list[str] = []
    items: list[str] = []
    for pairs, level in zip(metadata, levels, strict=True):
        start = len(keys)
        for name, value in pairs:
            keys.append(name)
            items.append(value)
        if level:
            keys.append(validate.LEVEL_LABEL)
            items.append(level)
        offsets.append(start if len(keys) > start else None)   # a null offset makes a null row
    offsets.append(len(keys))
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(keys, pa.string()),
                                   pa.array(items, pa.string()), type=METADATA_TYPE)
