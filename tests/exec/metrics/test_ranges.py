"""Range aggregations through the querier: windows, offsets, the in-SQL path, unwrap, answers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.config import Ingester, Limits
from lokiarrow.errors import BadRequest
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.exec.metrics.answers import format_time, format_value
from lokiarrow.store.store import Store
from tests.store.helpers import entries

S = 10**9
T0 = 1_700_000_000 * S


def querier(tmp_path: Path, rows: list[tuple[dict[str, str], int, str]], flush: bool = False,
            metadata: list[dict[str, str] | None] | None = None, limits: Limits | None = None) -> Querier:
    store = Store(str(tmp_path), Ingester())
    tenant = store.tenant("t")
    tenant.push(entries(rows, metadata))
    if flush:
        tenant.flush()
    return Querier(store, limits or Limits())


def points(answer: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]:
    assert answer["resultType"] == "matrix"
    return {tuple(sorted(s["metric"].items())): [(t, float(v)) for t, v in s["values"]] for s in answer["result"]}


def test_a_window_holds_what_is_newer_than_its_start_and_not_newer_than_its_end(tmp_path: Path) -> None:
    # lines exactly at T0, T0 + 60 s and T0 + 61 s; steps every 60 s from T0
    q = querier(tmp_path, [({"a": "x"}, T0 + d * S, f"l{d}") for d in (0, 60, 61)])
    got = points(q.query_range("t", RangeRequest('count_over_time({a="x"}[1m])', T0, T0 + 180 * S, step_ns=60 * S)))
    t0 = T0 // S
    assert got == {(("a", "x"),): [(t0, 1.0), (t0 + 60, 1.0), (t0 + 120, 1.0)]}
    # offset 1m: the window at t covers (t - 2m, t - 1m]
    got = points(q.query_range("t", RangeRequest('count_over_time({a="x"}[1m] offset 1m)', T0, T0 + 180 * S,
                                                 step_ns=60 * S)))
    assert got == {(("a", "x"),): [(t0 + 60, 1.0), (t0 + 120, 1.0), (t0 + 180, 1.0)]}


@pytest.mark.parametrize("flush", [False, True])
@pytest.mark.parametrize("op", ["count_over_time", "rate", "bytes_over_time", "bytes_rate"])
def test_the_sql_path_agrees_with_the_pipeline_path(tmp_path: Path, flush: bool, op: str) -> None:
    rows = [({"app": "a" if i % 3 else "b"}, T0 + i * 7 * S + i, "x" * (i % 13) + " line") for i in range(400)]
    metadata = [{"level": "warn"} if i % 5 == 0 else None for i in range(400)]
    q = querier(tmp_path, rows, flush, metadata)
    request = RangeRequest(f'{op}({{app=~"a|b"}} |= "line" [2m])', T0, T0 + 3000 * S, step_ns=45 * S)
    direct = points(q.query_range("t", request))
    through = points(q.query_range("t", RangeRequest(f'{op}({{app=~"a|b"}} |= "line" | drop nothing [2m])',
                                                     T0, T0 + 3000 * S, step_ns=45 * S)))
    assert direct == through
    assert len(direct) == 4   # (app a, app b) x (with, without metadata)


def test_unwrapped_aggregations(tmp_path: Path) -> None:
    values = [5, 1, 4, 2, 3]
    rows = [({"a": "x"}, T0 + (i + 1) * S, f"v={v}") for i, v in enumerate(values)]
    q = querier(tmp_path, rows)

    def at_end(query: str) -> float:
        answer = q.query_instant("t", query, T0 + 10 * S)
        [series] = answer["result"]
        return float(series["value"][1])

    assert at_end('sum_over_time({a="x"} | logfmt | unwrap v [1m])') == 15
    assert at_end('avg_over_time({a="x"} | logfmt | unwrap v [1m])') == 3
    assert at_end('min_over_time({a="x"} | logfmt | unwrap v [1m])') == 1
    assert at_end('max_over_time({a="x"} | logfmt | unwrap v [1m])') == 5
    assert at_end('first_over_time({a="x"} | logfmt | unwrap v [1m])') == 5
    assert at_end('last_over_time({a="x"} | logfmt | unwrap v [1m])') == 3
    assert at_end('stdvar_over_time({a="x"} | logfmt | unwrap v [1m])') == 2
    assert at_end('quantile_over_time(0.5, {a="x"} | logfmt | unwrap v [1m])') == 3
    assert at_end('quantile_over_time(0.25, {a="x"} | logfmt | unwrap v [1m])') == 2
    assert at_end('quantile_over_time(2, {a="x"} | logfmt | unwrap v [1m])') == math.inf
    assert at_end('rate({a="x"} | logfmt | unwrap v [1m])') == 15 / 60
    # a counter 5, 1 (reset), 4, 2 (reset), 3: 3 - 5 + 5 + 4 = 7 over the 4 s sampled, extrapolated by
    # half the mean spacing at each end (both ends are far from the window's): 7 * 5 / 4, per 60 s
    assert at_end('rate_counter({a="x"} | logfmt | unwrap v [1m])') == pytest.approx(7 * 5 / 4 / 60, rel=1e-12)


def test_unwrap_conversion_errors_fail_unless_filtered(tmp_path: Path) -> None:
    q = querier(tmp_path, [({"a": "x"}, T0 + S, "v=1"), ({"a": "x"}, T0 + 2 * S, "v=oops")])
    with pytest.raises(BadRequest, match="pipeline error: 'SampleExtractionErr'"):
        q.query_instant("t", 'sum_over_time({a="x"} | logfmt | unwrap v [1m])', T0 + 10 * S)
    answer = q.query_instant("t", 'sum_over_time({a="x"} | logfmt | unwrap v | __error__="" [1m])', T0 + 10 * S)
    assert [float(s["value"][1]) for s in answer["result"]] == [1.0]


def test_durations_and_bytes_unwrap(tmp_path: Path) -> None:
    q = querier(tmp_path, [({"a": "x"}, T0 + S, "d=1m30s b=2KiB"), ({"a": "x"}, T0 + 2 * S, "d=500ms b=1KB")])
    assert q.query_instant("t", 'sum_over_time({a="x"} | logfmt d | unwrap duration(d) [1m])',
                           T0 + 10 * S)["result"][0]["value"][1] == "90.5"
    assert q.query_instant("t", 'sum_over_time({a="x"} | logfmt b | unwrap bytes(b) [1m])',
                           T0 + 10 * S)["result"][0]["value"][1] == "3048"
    # the unwrapped label leaves the series; the others stay
    answer = q.query_instant("t", 'sum_over_time({a="x"} | logfmt | unwrap bytes(b) [1m])', T0 + 10 * S)
    assert sorted(s["metric"]["d"] for s in answer["result"]) == ["1m30s", "500ms"]


def test_absent_over_time_marks_the_empty_windows(tmp_path: Path) -> None:
    q = querier(tmp_path, [({"a": "x"}, T0 + 30 * S, "l")])
    got = points(q.query_range("t", RangeRequest('absent_over_time({a="x", b=~".*"}[1m])', T0, T0 + 180 * S,
                                                 step_ns=60 * S)))
    t0 = T0 // S
    assert got == {(("a", "x"),): [(t0, 1.0), (t0 + 120, 1.0), (t0 + 180, 1.0)]}


def test_scalars_vectors_and_limits(tmp_path: Path) -> None:
    q = querier(tmp_path, [({"a": str(i)}, T0 + S, "l") for i in range(5)], limits=Limits(max_query_series=3))
    scalar = q.query_instant("t", "1 + 1", T0)
    assert (scalar["resultType"], scalar["result"]) == ("scalar", [T0 // S, "2"])
    answer = q.query_instant("t", "vector(1) + vector(1)", T0)
    assert [s["value"][1] for s in answer["result"]] == ["2"]
    with pytest.raises(BadRequest, match=r"maximum number of series \(3\) reached"):
        q.query_instant("t", 'count_over_time({a=~".+"}[1m])', T0 + 10 * S)
    assert len(q.query_instant("t", 'sum(count_over_time({a=~".+"}[1m]))', T0 + 10 * S)["result"]) == 1


@pytest.mark.parametrize(("value", "text"), [
    (2.0, "2"), (0.1, "0.1"), (1e-05, "0.00001"), (1e21, "1000000000000000000000"), (-1.5, "-1.5"),
    (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"), (1 / 3, "0.3333333333333333"),
])
def test_values_are_written_as_go_writes_them(value: float, text: str) -> None:
    assert format_value(value) == text


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**17, 10**17).map(float)
       | st.sampled_from([-0.0, 0.0, 1e15, 1e16, 123456789.125, 5e-324]))
def test_fast_value_formatting_matches_the_shortest_positional_form(value: float) -> None:
    """Integers and Python's shortest repr are taken where they are Go's 'f', -1 text."""
    assert format_value(value) == np.format_float_positional(value, trim="-")


def test_times_are_seconds_with_milliseconds_when_present() -> None:
    assert format_time(T0) == T0 // S
    assert format_time(T0 + 250 * 10**6) == T0 // S + 0.25


def test_batches_of_lines_give_the_same_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(str(tmp_path), Ingester())
    tenant = store.tenant("t")
    for part in range(4):   # four chunk files and a head
        tenant.push(entries([({"app": "ab"[i % 2]}, T0 + (part * 100 + i) * S, f"v={i % 7} n={part}")
                             for i in range(100)]))
        if part < 3:
            tenant.flush()
    q = Querier(store, Limits())
    queries = ['sum by (app) (count_over_time({app=~"a|b"} | logfmt [1m]))',
               'first_over_time({app=~"a|b"} | logfmt | unwrap v [2m]) by (app)',
               'quantile_over_time(0.9, {app=~"a|b"} | logfmt | unwrap v [3m]) by (app)']
    request = [RangeRequest(text, T0, T0 + 400 * S, step_ns=30 * S) for text in queries]
    whole = [points(q.query_range("t", r)) for r in request]
    from lokiarrow.exec.metrics import ranges
    monkeypatch.setattr(ranges, "BATCH_ROWS", 50)
    assert [points(q.query_range("t", r)) for r in request] == whole
    assert all(whole)


@pytest.mark.parametrize("flush", [False, True])
def test_one_metadata_set_written_in_two_orders_is_one_series(tmp_path: Path, flush: bool) -> None:
    rows = [({"a": "x"}, T0 + i * S, f"l{i}") for i in range(4)]
    metadata = [{"k": "1", "j": "2"}, {"j": "2", "k": "1"}, {"k": "1", "j": "2"}, None]
    q = querier(tmp_path, rows, flush, metadata)
    answer = q.query_instant("t", 'count_over_time({a="x"}[1m])', T0 + 30 * S)
    got = {tuple(sorted(s["metric"].items())): s["value"][1] for s in answer["result"]}
    assert got == {(("a", "x"), ("j", "2"), ("k", "1")): "3", (("a", "x"),): "1"}
