"""`static_configs`: fixed targets, each with its `labels` (where `__path__` names the files)."""

from __future__ import annotations

from lokiarrow.agent.discovery import Target
from lokiarrow.agent.settings import Section


class Static:
    """Prometheus' static discovery: one target per entry of `targets`, `__address__` set to
    it, plus the group's `labels`. Never changes, so `targets()` is cheap to call each sync."""

    def __init__(self, sections: list[Section]) -> None:
        self._targets: list[Target] = []
        for i, s in enumerate(sections):
            addresses = s.strings("targets")
            labels = s.mapping("labels")
            s.done()
            for address in addresses or [""]:
                with_address = {"__address__": address, **labels} if address else dict(labels)
                self._targets.append(Target(with_address, f"static/{i}"))

    def targets(self) -> list[Target]:
        return list(self._targets)
