"""Answers compared with a real Loki's over the same data (see README.md in this folder).

`test_case` runs the cases this version promises to answer exactly; `test_scoreboard` runs all
of them, prints how many pass and fails if fewer pass than are promised.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conformance.harness import load_jsonl, push_dataset, run_case
from tests.conftest import PERMISSIVE, Server

CASES = load_jsonl("cases.jsonl.gz")


def in_scope(case: dict[str, Any]) -> bool:
    """Cases this version answers exactly: all of them (log and metric queries, invalid queries,
    labels, label values and series)."""
    return case["id"].startswith(("log-", "logf-", "range-", "range60-", "instant-", "labels", "values-",
                                  "series-", "err-"))


PROMISED = [c for c in CASES if in_scope(c)]


@pytest.fixture(scope="module", params=["head", "parquet"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server holding the data set in its head (just pushed) or in Parquet (after a flush)."""
    folder = tmp_path_factory.mktemp("conformance") / "data"
    folder.mkdir()
    server = Server(folder, PERMISSIVE, []).start()
    try:
        with server.client() as client:
            assert push_dataset(client) == 13420
            if request.param == "parquet":
                assert client.post("/flush").status_code == 204
                assert list(folder.glob("fake/chunks/day=*/*.parquet"))
            yield client
    finally:
        server.kill()


@pytest.mark.parametrize("case", PROMISED, ids=[c["id"] for c in PROMISED])
def test_case(loaded: httpx.Client, case: dict[str, Any]) -> None:
    assert run_case(loaded, case) is None


def test_scoreboard(loaded: httpx.Client) -> None:
    failures = {c["id"]: run_case(loaded, c) for c in CASES}
    passed = sum(1 for f in failures.values() if f is None)
    print(f"\nconformance: {passed} of {len(CASES)} Loki cases pass ({len(PROMISED)} promised)")
    assert passed >= len(PROMISED)
