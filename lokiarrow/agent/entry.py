"""A log entry on its way through the agent's pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Entry:
    """What Promtail's stages see and change: the labels to send, the time (ns), the line, the
    structured metadata, the values extracted by earlier stages (Promtail's `extracted` map,
    where `json`/`regex`/`logfmt` put what they find), the tenant to push to (None: the
    client's own), and the read batches its lines came from (the runtime acknowledges a batch
    once every entry made from it was shipped). `origins` lists are shared: stages that join
    entries make a new list, never change one in place."""

    labels: dict[str, str]
    ts: int
    line: str
    metadata: dict[str, str] = field(default_factory=dict)
    extracted: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    origins: list[Any] = field(default_factory=list)
