"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel (nbclient) on a store
the test writes: four services over three hours, one of them with an error spike."""

from __future__ import annotations

import json
import random
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from lokiarrow.config import Ingester
from lokiarrow.store.store import Store
from tests.conftest import ROOT
from tests.store.helpers import entries

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
T0 = 1_768_780_800 * 10**9   # 2026-01-19T00:00:00Z
MINUTE = 60 * 10**9


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notebook-store")
    store = Store(str(path), Ingester())
    tenant = store.tenant("fake")
    rng = random.Random(7)
    for minute in range(180):
        rows = []
        for service in ("checkout", "payments", "search", "auth"):
            spike = service == "payments" and 120 <= minute < 130
            for i in range(rng.randint(3, 6)):
                failed = rng.random() < (0.6 if spike else 0.05)
                line = json.dumps({"level": "error" if failed else "info",
                                   "msg": f"request {'error: upstream timeout after' if failed else 'served in'} "
                                          f"{rng.randint(5, 900)}ms", "id": f"{rng.getrandbits(48):012x}"})
                rows.append(({"service_name": service, "env": "prod"}, T0 + minute * MINUTE + i * 10**9, line))
        tenant.push(entries(rows))
        if minute % 30 == 29:
            tenant.flush()
    store.close()
    return path


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(notebook: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKIARROW_DATA", str(store_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = nbformat.read(notebook, as_version=4)
    NotebookClient(book, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") in ("execute_result", "display_data") for o in outputs)
    if notebook.name == "incident.ipynb":   # the walk-through finds the spike the data holds
        printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        assert "at 2026-01-19 02:0" in printed, printed          # the spike: minutes 120-129
        shown = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
        assert shown.index("payments") < shown.index("checkout")   # the culprit heads the comparison


def test_there_are_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "incident.ipynb"}
