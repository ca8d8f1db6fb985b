"""Watch the SQL a module sends to DuckDB, for tests that check which scan a query takes."""

from __future__ import annotations

from typing import Any

import pytest


def record_sql(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    """The SQL texts `module` runs through its DuckDB cursor from now on (the queries still run)."""
    texts: list[str] = []
    real = module.cursor

    class Recorder:
        def __init__(self) -> None:
            self.cur = real()

        def sql(self, text: str, **kw: Any) -> Any:
            texts.append(text)
            return self.cur.sql(text, **kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.cur, name)
    monkeypatch.setattr(module, "cursor", Recorder)
    return texts
