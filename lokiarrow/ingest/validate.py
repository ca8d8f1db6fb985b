"""Loki's distributor validation: which streams and entries of a push are refused, in Loki's words.

A stream is checked once (Loki's `Validator.ValidateLabels`), the first failing check wins:
  1. no labels at all;
  2. more label names than `max_label_names_per_series` (`service_name` is not counted);
  3. per label, in name order: name longer than `max_label_name_length` bytes, value longer than
     `max_label_value_length` bytes, the same name twice.
An entry is checked against its stream's labels (`Validator.ValidateEntry`), first failing check wins;
the checks run vectorised over the whole push and only refused rows are visited in Python:
  1. older than now - `reject_old_samples_max_age` (when `reject_old_samples`);
  2. newer than now + `creation_grace_period`;
  3. a line longer than `max_line_size` bytes (0: no limit);
  4. structured metadata when it is not allowed, larger than `max_structured_metadata_size` bytes
     (names and values, `detected_level` not counted) or with more than
     `max_structured_metadata_entries_count` pairs.
Loki keeps what is valid and answers 400 with all the messages joined by `group_errors`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.config import Limits
from lokiarrow.wire.stream import Pairs

SERVICE_NAME = "service_name"
LEVEL_LABEL = "detected_level"

# Loki's texts (pkg/validation/validate.go); `%`-style, as Go's fmt writes them.
MISSING_STREAMS = "error at least one valid stream is required for ingestion"
MISSING_LABELS = "error at least one label pair is required per stream"
INVALID_LABELS = "couldn't parse labels: %s"
MAX_LABEL_NAMES = "entry for stream '%s' has %d label names; limit %d"
LABEL_NAME_TOO_LONG = "stream '%s' has label name too long: '%s'"
LABEL_VALUE_TOO_LONG = "stream '%s' has label value too long: '%s'"
DUPLICATE_LABEL_NAMES = "stream '%s' has duplicate label name: '%s'"
TOO_OLD = "entry for stream '%s' has timestamp too old: %s, oldest acceptable timestamp is: %s"
TOO_NEW = "entry for stream '%s' has timestamp too new: %s"
LINE_TOO_LONG = "max entry size '%d' bytes exceeded for stream '%s' while adding an entry with length '%d' bytes"
METADATA_DISALLOWED = ("stream '%s' includes structured metadata, but this feature is disallowed. Please see "
                       "`limits_config.allow_structured_metadata` or contact your Loki administrator to enable it")
METADATA_TOO_LARGE = ("stream '%s' has structured metadata too large: '%d' bytes, limit: '%d' bytes. Please see "
                      "`limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it")
METADATA_TOO_MANY = ("stream '%s' has too many structured metadata labels: '%d', limit: '%d'. Please see "
                     "`limits_config.max_structured_metadata_entries_count` or contact your Loki administrator "
                     "to increase it")


def label_error(labels: str, pairs: Sequence[tuple[str, str]], limits: Limits) -> str | None:
    """Why Loki refuses a stream, or None. `labels` is its canonical text, `pairs` sorted by name."""
    if not pairs:
        return MISSING_LABELS
    names = len(pairs) - any(name == SERVICE_NAME for name, _ in pairs)
    if names > limits.max_label_names_per_series:
        return MAX_LABEL_NAMES % (labels, names, limits.max_label_names_per_series)
    last = ""
    for name, value in pairs:
        if _size(name) > limits.max_label_name_length:
            return LABEL_NAME_TOO_LONG % (labels, name)
        if _size(value) > limits.max_label_value_length:
            return LABEL_VALUE_TOO_LONG % (labels, value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        if name == last:
            return DUPLICATE_LABEL_NAMES % (labels, name)
        last = name
    return None


def _size(text: str) -> int:
    """Length in bytes, as Go's len(string)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def metadata_size(pairs: Pairs) -> int:
    """Loki's StructuredMetadataSize: bytes of names and values, `detected_level` left out."""
    return sum(_size(n) + _size(v) for n, v in pairs if n != LEVEL_LABEL)


def entry_errors(timestamps: pa.Int64Array, line_bytes: pa.Array, metadata: Sequence[Pairs] | None,
                 labels_of: Callable[[int], str], limits: Limits, now_ns: int) -> list[tuple[int, str]]:
    """The refused rows of a push and why, in row order.

    `line_bytes` holds each line's length in bytes, `metadata` each row's pairs (or None when no row
    has any), `labels_of(row)` the canonical label text of the row's stream.
    """
    oldest = now_ns - limits.reject_old_samples_max_age
    newest = now_ns + limits.creation_grace_period
    bad = pc.greater(timestamps, _int64(newest))
    if limits.reject_old_samples:
        bad = pc.or_(bad, pc.less(timestamps, _int64(oldest)))
    if limits.max_line_size:
        bad = pc.or_(bad, pc.greater(line_bytes, _int64(limits.max_line_size)))
    rows = set(pc.indices_nonzero(bad).to_pylist()) if pc.any(bad).as_py() else set()
    if metadata is not None:
        rows.update(i for i, pairs in enumerate(metadata) if pairs and _metadata_error(pairs, "", limits))
    out = []
    for row in sorted(rows):
        ts = timestamps[row].as_py()
        labels = labels_of(row)
        if limits.reject_old_samples and ts < oldest:
            message = TOO_OLD % (labels, go_rfc3339(ts), go_rfc3339(oldest))
        elif ts > newest:
            message = TOO_NEW % (labels, go_rfc3339(ts))
        elif limits.max_line_size and line_bytes[row].as_py() > limits.max_line_size:
            message = LINE_TOO_LONG % (limits.max_line_size, labels, line_bytes[row].as_py())
        else:
            assert metadata is not None
            message = _metadata_error(metadata[row], labels, limits) or ""
        out.append((row, message))
    return out


def _int64(value: int) -> pa.Scalar:
    """An Arrow scalar: a Python int given to pyarrow.compute costs a failed import per call."""
    return pa.scalar(value, pa.int64())


def _metadata_error(pairs: Pairs, labels: str, limits: Limits) -> str | None:
    if not limits.allow_structured_metadata:
        return METADATA_DISALLOWED % labels
    size = metadata_size(pairs)
    if limits.max_structured_metadata_size and size > limits.max_structured_metadata_size:
        return METADATA_TOO_LARGE % (labels, size, limits.max_structured_metadata_size)
    if limits.max_structured_metadata_entries_count and len(pairs) > limits.max_structured_metadata_entries_count:
        return METADATA_TOO_MANY % (labels, len(pairs), limits.max_structured_metadata_entries_count)
    return None


def go_rfc3339(ns: int) -> str:
    """A time as Go's `Format(time.RFC3339)` prints it in UTC: `2026-01-02T15:04:05Z`."""
    seconds = ns // 1_000_000_000
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def group_errors(messages: Sequence[str]) -> str | None:
    """Join messages as Loki's GroupedErrors: one message alone, else `N errors like: msg` per distinct
    message, joined by `; ` (in order of first occurrence, where Go's map order is random)."""
    if not messages:
        return None
    counts: dict[str, int] = {}
    for message in messages:
        counts[message] = counts.get(message, 0) + 1
    if len(counts) == 1 and len(messages) == 1:
        return messages[0]
    return "; ".join(f"{n} errors like: {message}" for message, n in counts.items())
