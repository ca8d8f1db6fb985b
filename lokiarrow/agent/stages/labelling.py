"""Promtail stages: see lokiarrow/agent/stages/__init__.py for which live here."""

from __future__ import annotations

from lokiarrow.agent.stages import Builder

BUILDERS: dict[str, Builder] = {}
