"""Counts over `| drop …` / `| keep …` alone (Grafana's log volume sends `| drop __error__`) are
counted in SQL and relabelled per series: the same answer as through the pipeline."""

from __future__ import annotations

from typing import Any

import pytest

from lokiarrow.config import Ingester, Limits
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.exec.metrics import ranges
from tests.store.helpers import entries

S = 10**9
M = 60 * S
T0 = 1_700_001_960 * S
LEVELS = ["info", "error", "warn"]


@pytest.fixture(scope="module")
def querier(tmp_path_factory: pytest.TempPathFactory) -> Querier:
    """3,000 lines over 10 minutes; metadata `detected_level` on most, `level` on some; 2,000 flushed."""
    from lokiarrow.store.store import Store
    store = Store(str(tmp_path_factory.mktemp("relabel")), Ingester())
    tenant = store.tenant("t")
    rows = [({"app": "ab"[i % 2], "pod": f"p{i % 3}", **({"level": "debug"} if i % 2 else {})},
             T0 + i * S // 5, f"line {i}") for i in range(3000)]
    metadata: list[dict[str, str] | None] = [
        None if i % 11 == 0 else {"detected_level": LEVELS[i % 3], **({"level": "x"} if i % 7 == 0 else {})}
        for i in range(3000)]
    tenant.push(entries(rows[:2000], metadata[:2000]))
    tenant.flush()
    tenant.push(entries(rows[2000:], metadata[2000:]))
    return Querier(store, Limits())


def _matrix(q: Querier, query: str) -> dict[Any, Any]:
    answer = q.query_range("t", RangeRequest(query, T0, T0 + 12 * M, step_ns=M))
    return {tuple(sorted(s["metric"].items())): [(t, pytest.approx(float(v), rel=1e-9)) for t, v in s["values"]]
            for s in answer["result"]}


QUERIES = [
    'sum by (level, detected_level) (count_over_time({app=~".+"} | drop __error__ [1m]))',
    'count_over_time({app="a"} | keep pod, detected_level [1m])',
    'sum by (pod) (rate({app=~".+"} |= "line 1" | drop detected_level="info", app [2m]))',
    'bytes_over_time({pod="p1"} | drop level | keep app, level_extracted [1m])',
]


@pytest.mark.parametrize("query", QUERIES)
def test_relabelled_counts_equal_the_pipelines(querier: Querier, monkeypatch: pytest.MonkeyPatch, query: str) -> None:
    in_sql: list[object] = []
    real = ranges._in_sql

    def spy(*args: Any, **kw: Any) -> Any:
        in_sql.append(args[0])
        return real(*args, **kw)
    monkeypatch.setattr(ranges, "_in_sql", spy)
    got = _matrix(querier, query)
    assert in_sql
    # the same query with a stage that changes nothing but sends it through the pipeline
    inner, _, outer = query.partition(" [")
    piped = _matrix(querier, f'{inner} | line_format "{{{{ __line__ }}}}" [{outer}')
    assert len(in_sql) == 1
    assert got == piped
    assert got
