"""Per-tenant limits: `limits_config` with the runtime file's `overrides` on top (Loki's
`runtime_config`), re-read when the file changes, without a restart.

The runtime file is YAML: `overrides: {<tenant>: {<limit>: <value>, …}}`, limits named and written
as in `limits_config`. It is looked at no more often than `period`; a file that cannot be read or
parsed leaves the last good overrides in force (and is logged), so a bad edit never drops limits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import fields

import yaml

from lokiarrow.config import Limits, apply_section

log = logging.getLogger(__name__)


class TenantLimits:
    """`limits(tenant)`: the limits that tenant runs with now."""

    def __init__(self, defaults: Limits, path: str | None = None, period_ns: int = 10 * 10**9) -> None:
        self.defaults = defaults
        self.path = path
        self.period_ns = period_ns
        self._lock = threading.Lock()
        self._checked = -period_ns
        self._stamp: tuple[int, int] | None = None
        self._tenants: dict[str, Limits] = {}

    def __call__(self, tenant: str) -> Limits:
        if self.path is not None:
            self._refresh()
        return self._tenants.get(tenant, self.defaults)

    def _refresh(self) -> None:
        now = time.monotonic_ns()
        if now - self._checked < self.period_ns:
            return
        with self._lock:
            if now - self._checked < self.period_ns:
                return
            self._checked = now
            try:
                st = os.stat(str(self.path))
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp == self._stamp:
                    return
                with open(str(self.path), encoding="utf-8") as f:
                    self._tenants = read_overrides(f.read(), self.defaults)
                self._stamp = stamp
            except (OSError, ValueError, yaml.YAMLError) as exc:
                log.error("runtime config %s not applied: %s", self.path, exc)


def read_overrides(text: str, defaults: Limits) -> dict[str, Limits]:
    """The tenants' limits a runtime file sets (ValueError on a wrong shape or an unknown limit)."""
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict):
        raise ValueError("the runtime config must be a mapping")
    overrides = doc.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ValueError("overrides must map tenants to limits")
    known = {f.name for f in fields(Limits)}
    tenants = {}
    for tenant, section in overrides.items():
        if not isinstance(section, dict):
            raise ValueError(f"overrides.{tenant} must be a mapping of limits")
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"overrides.{tenant}.{unknown[0]}: unknown limit")
        tenants[str(tenant)] = apply_section(defaults, section)
    return tenants
