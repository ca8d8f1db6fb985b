"""`sum by (…) (count_over_time({…} | json [w]))` from the field columns equals the pipeline's answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lokiarrow.config import Ingester, Limits
from lokiarrow.errors import BadRequest
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.exec.logs import ScanStats
from lokiarrow.exec.metrics import fielded
from lokiarrow.exec.sources import footer_value
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr
from lokiarrow.store.fields import PARSED_JSON, SETTLED_KEY, unsettled_rows
from lokiarrow.store.store import Store
from tests.exec.sql_recorder import record_sql
from tests.store.helpers import entries

S = 10**9
T0 = 1_700_000_000 * S
LEVELS = ["info", "error", "warn", ""]


def _line(i: int) -> str:
    level = LEVELS[i % 4]
    if i % 50 == 7:
        return f"level={level or 'x'} odd token here"          # logfmt the columns cannot settle
    if i % 3 == 0:
        return f"level={level} status={200 + i % 3} msg=\"req {i}\"" if level else f"status=200 msg=m{i}"
    return f'{{"level":"{level}","status":{500 + i % 2},"msg":"req {i}"}}' if level else f'{{"msg":"m{i}"}}'


def _store(path: Path, fields: int, flushed: int) -> Querier:
    """600 entries over 10 minutes in streams {app, pod}; the first `flushed` go to Parquet."""
    store = Store(str(path), Ingester(field_columns=fields))
    tenant = store.tenant("t")
    rows = [({"app": "ab"[i % 2], "pod": f"p{i % 3}"}, T0 + i * S, _line(i)) for i in range(600)]
    metadata = [{"level": "meta"} if i % 97 == 0 else None for i in range(600)]
    if flushed:
        tenant.push(entries(rows[:flushed], metadata[:flushed]))
        tenant.flush()
    if flushed < 600:
        tenant.push(entries(rows[flushed:], metadata[flushed:]))
    return Querier(store, Limits())


def _matrix(q: Querier, query: str) -> dict[tuple[tuple[str, str], ...], list[tuple[Any, Any]]]:
    """Series -> points, values as floats compared to 1e-9 (sums may add up in another order)."""
    answer = q.query_range("t", RangeRequest(query, T0, T0 + 660 * S, step_ns=60 * S))
    return {tuple(sorted(s["metric"].items())): [(t, float(v)) for t, v in s["values"]] for s in answer["result"]}


QUERIES = [
    'sum by (level) (count_over_time({app=~"a|b"} | logfmt [2m]))',
    'sum by (level, pod) (rate({app="a"} |= "req" | logfmt [1m]))',
    'sum(bytes_over_time({app=~".+"} | logfmt [5m]))',
    'sum by (status) (bytes_rate({app=~".+"} != "odd" | logfmt [1m]))',
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("flushed", [600, 400])
def test_field_columns_give_the_pipelines_answer(tmp_path: Path, query: str, flushed: int) -> None:
    with_fields = _matrix(_store(tmp_path / "f", 8, flushed), query)
    without = _matrix(_store(tmp_path / "p", 0, flushed), query)
    assert with_fields.keys() == without.keys()
    for key, points in with_fields.items():
        assert [t for t, _ in points] == [t for t, _ in without[key]]
        assert [v for _, v in points] == pytest.approx([v for _, v in without[key]], rel=1e-9)
    assert with_fields


def test_the_columns_are_used_and_failures_still_fail(tmp_path: Path) -> None:
    q = _store(tmp_path, 8, 600)
    expr = parse_expr('sum by (level) (count_over_time({app=~".+"} | logfmt [1m]))')
    assert isinstance(expr, ast.VectorAggregation)
    steps = np.arange(T0, T0 + 660 * S, 60 * S, dtype=np.int64)
    assert fielded.sum_by_fields(expr, q.store.tenant("t").snapshot(), steps, 60 * S, ScanStats()) is not None
    # `| json` over logfmt lines: the lines the columns cannot settle fail as in Loki
    with pytest.raises(BadRequest, match="pipeline error: 'JSONParserErr'"):
        _matrix(q, 'sum by (level) (count_over_time({app=~".+"} | json [1m]))')


def _latency(i: int) -> str:
    """Mostly plain decimals; every fifth written `37.50` (the column cannot hold it as written)."""
    value = (i * 37) % 500 + 0.25
    return f"{value + 0.25:.2f}" if i % 5 == 0 else str(value)


def _clean_store(path: Path, fields: int, latency: Any = _latency) -> Querier:
    """JSON lines with a float field, all plain: the unwrapped values can come from the columns."""
    store = Store(str(path), Ingester(field_columns=fields))
    tenant = store.tenant("t")
    rows = [({"app": "ab"[i % 2], "pod": f"p{i % 3}"}, T0 + i * S,
             f'{{"level":"{LEVELS[i % 3]}","latency_ms":{latency(i)},"msg":"m"}}') for i in range(600)]
    tenant.push(entries(rows))
    tenant.flush()
    return Querier(store, Limits())


UNWRAPPED = [
    'quantile_over_time(0.9, {app=~".+"} | json | unwrap latency_ms | __error__="" [2m]) by (pod)',
    'avg_over_time({app="a"} | json | unwrap latency_ms [1m]) by (level, app)',
    'max_over_time({app=~".+"} |= "m" | json | unwrap latency_ms [3m]) by (level)',
    'min_over_time({app=~".+"} | json | unwrap latency_ms [1m]) by (pod)',
    'stddev_over_time({app=~".+"} | json | unwrap latency_ms [5m]) by (app)',
]


@pytest.mark.parametrize("query", UNWRAPPED)
def test_unwrapped_field_columns_give_the_pipelines_answer(tmp_path: Path, query: str) -> None:
    fast = _clean_store(tmp_path / "f", 8)
    expr = parse_expr(query)
    assert isinstance(expr, ast.RangeAggregation)
    steps = np.arange(T0, T0 + 660 * S, 60 * S, dtype=np.int64)
    from lokiarrow.exec.metrics import unwrapped
    assert unwrapped.unwrapped_by_fields(expr, fast.store.tenant("t").snapshot(), steps, 60 * S,
                                         ScanStats()) is not None
    with_fields, without = _matrix(fast, query), _matrix(_clean_store(tmp_path / "p", 0), query)
    assert with_fields.keys() == without.keys() and with_fields
    for key, points in with_fields.items():
        assert [t for t, _ in points] == [t for t, _ in without[key]]
        assert [v for _, v in points] == pytest.approx([v for _, v in without[key]], rel=1e-9)


def _plain(i: int) -> str:
    return str((i * 37) % 500 + 0.25)


@pytest.mark.parametrize("query", UNWRAPPED)
def test_unwrapped_values_the_footers_vouch_for_need_no_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              query: str) -> None:
    """Every value a plain decimal, every row settled: no count of unsettled rows, no line read,
    and the same answer as the pipeline's."""
    from lokiarrow.exec.metrics import unwrapped
    fast = _clean_store(tmp_path / "f", 8, _plain)
    sql = record_sql(monkeypatch, unwrapped)
    with_fields = _matrix(fast, query)
    assert sql and not any(s.startswith("SELECT count(*)") or "json_" in s or "map_" in s for s in sql)
    monkeypatch.undo()
    without = _matrix(_clean_store(tmp_path / "p", 0, _plain), query)
    assert with_fields.keys() == without.keys() and with_fields
    for key, points in with_fields.items():
        assert [v for _, v in points] == pytest.approx([v for _, v in without[key]], rel=1e-9)


def _json_store(path: Path, fields: int, metadata_name: str) -> Querier:
    """JSON lines the columns settle whole; structured metadata `metadata_name` on every 7th line."""
    store = Store(str(path), Ingester(field_columns=fields))
    tenant = store.tenant("t")
    rows = [({"app": "ab"[i % 2]}, T0 + i * S, f'{{"level":"{LEVELS[i % 3]}","msg":"m{i}"}}') for i in range(600)]
    tenant.push(entries(rows, [{metadata_name: "meta"} if i % 7 == 0 else None for i in range(600)]))
    tenant.flush()
    return Querier(store, Limits())


@pytest.mark.parametrize("metadata_name", ["trace", "level"])
def test_files_whose_footers_promise_settled_rows_skip_the_leftover_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metadata_name: str) -> None:
    """Every row settled (the footer's summary) and, per the index, no metadata named like the
    grouping label: no count of unsettled rows, no metadata lookup; the answer is still exact."""
    q = _json_store(tmp_path / "f", 8, metadata_name)
    snapshot = q.store.tenant("t").snapshot()
    [chunk] = [snapshot.root.full(c) for c in set(snapshot.index.rows.column("chunk").to_pylist())]
    assert unsettled_rows(footer_value(chunk, SETTLED_KEY), PARSED_JSON, ["level"]) == 0
    assert snapshot.index.metadata_names(snapshot.index.streams.labels, 0, T0 + 1000 * S) == {metadata_name}
    sql = record_sql(monkeypatch, fielded)
    query = 'sum by (level) (count_over_time({app=~".+"} | json [1m]))'
    with_fields = _matrix(q, query)
    assert not any(s.startswith("SELECT count(*)") for s in sql)  # no count of leftover rows
    assert any("map_extract" in s for s in sql) == (metadata_name == "level")
    monkeypatch.undo()
    assert with_fields == _matrix(_json_store(tmp_path / "p", 0, metadata_name), query)


def _two_file_store(path: Path, flush: bool) -> Querier:
    """Two hours of JSON lines: the first hour's file also holds app c, the second's only a and b;
    without `flush`, everything stays in the head."""
    store = Store(str(path), Ingester(field_columns=8))
    tenant = store.tenant("t")
    for hour, apps in ((0, "abc"), (1, "ab")):
        rows = [({"app": apps[i % len(apps)]}, T0 + hour * 600 * S + i * S,
                 f'{{"level":"{LEVELS[i % 3]}","latency_ms":{_plain(i)},"msg":"m{i}"}}') for i in range(300)]
        tenant.push(entries(rows))
        if flush:
            tenant.flush()
    return Querier(store, Limits())


@pytest.mark.parametrize("query", [
    'sum by (level) (count_over_time({app=~"a|b"} | json [1m]))',
    'sum by (app) (count_over_time({app=~"a|b"} |= "m1" [1m]))',
    'max_over_time({app=~"a|b"} | json | unwrap latency_ms [2m]) by (level)',
    'sum by (app) (count_over_time({app=~"a|b"} | json | level="info" [1m]))',
])
def test_files_with_only_wanted_streams_and_mixed_ones_scan_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   query: str) -> None:
    """The second file holds wanted streams only (read without a stream test), the first also
    app c (tested): one scan reads both, with the answer the head gives."""
    from lokiarrow.exec import logs
    from lokiarrow.exec.metrics import ranges, unwrapped
    q = _two_file_store(tmp_path / "f", True)
    snapshot = q.store.tenant("t").snapshot()
    wanted = snapshot.index.streams.match(parse_expr('{app=~"a|b"}').matchers)  # type: ignore[attr-defined]
    assert sorted(ref.pure for ref in snapshot.index.chunks(wanted, 0, T0 + 1200 * S)) == [False, True]
    recorded = [record_sql(monkeypatch, module) for module in (fielded, unwrapped, ranges, logs)]
    monkeypatch.setattr(logs, "DIRECT_READ_FILES", 0)  # pipelines read through DuckDB too
    got = {key: [(t, pytest.approx(v, rel=1e-9)) for t, v in points]
           for key, points in _matrix(q, query).items()}
    assert any(("stream_id = ANY" in s or "stream_id IN (" in s) for texts in recorded for s in texts)  # the mixed file
    monkeypatch.undo()
    assert got == _matrix(_two_file_store(tmp_path / "h", False), query)
    assert got
