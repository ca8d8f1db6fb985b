"""The decoded shape of a push, whatever its wire encoding: one columnar `PushStream` per stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

Pairs = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class PushStream:
    """One stream of a push request, its entries as columns.

    `labels` is the label text as sent (protobuf, legacy JSON) or the JSON `stream` object; it is not
    parsed or validated here. `timestamps` (ns) and `lines` have one value per entry, in wire order.
    `metadata` holds each entry's structured metadata pairs in wire order (an empty list for an entry
    without any), or is None when no entry of the stream has any.
    """

    labels: str | dict[str, str]
    timestamps: pa.Int64Array
    lines: pa.StringArray
    metadata: list[Pairs] | None = None

    def __len__(self) -> int:
        return len(self.lines)

    @classmethod
    def of(cls, labels: str | dict[str, str], timestamps: Sequence[int], lines: Sequence[str],
           metadata: Sequence[Pairs] | None = None) -> PushStream:
        """Build a stream from Python lists (the agent, tests, benchmarks)."""
        if len(timestamps) != len(lines) or (metadata is not None and len(metadata) != len(lines)):
            raise ValueError("timestamps, lines and metadata must have one value per entry")
        meta = [list(m) for m in metadata] if metadata is not None and any(metadata) else None
        return cls(labels, pa.array(timestamps, pa.int64()), pa.array(lines, pa.string()), meta)
