"""The floors of the benchmark's metric queries (me–mh), without a server.

Both floors must give the series worked out by hand on a tiny store (windows right-closed, a line at
t - range left out, lines without the field or the label, streams the selector leaves out), agree
with each other on the generated data, and `answer_series` / `compare` must read and judge answers
as the benchmark's "same answer" column says.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench import generate, legacy
from bench.metrics import (
    MINUTE_NS,
    MetricQuery,
    Series,
    answer_series,
    build_metric_queries,
    compare,
    floor_series,
    metric_floor_duckdb,
    metric_floor_polars,
)
from bench.queries import StoreFiles, build_queries
from bench.run import select_queries
from lokiarrow.store.schema import METADATA_TYPE

S = 29_000_000 * MINUTE_NS                    # the first step
SEC = 10**9
STREAMS = {1: {"namespace": "a", "pod": "p1"}, 2: {"namespace": "a", "pod": "p2"},
           3: {"namespace": "b", "pod": "p3"}, 4: {"job": "x"}}


def _line(level: str | None, latency: str, msg: str = "ok") -> str:
    head = f'{{"level":"{level}",' if level is not None else "{"
    return f'{head}"msg":"{msg}","latency_ms":{latency}}}'


# (stream, ts, line, detected_level metadata)
ROWS = [
    (1, S - 60 * SEC, _line("info", "7"), "info"),             # t - range: in no window
    (1, S - 30 * SEC, _line("info", "1"), "info"),             # step S
    (1, S, _line("info", "2"), "info"),                        # step S (right-closed)
    (1, S + 1, _line("error", "10", "error here"), "error"),   # step S + 60 s
    (2, S + 60 * SEC, _line("warn", "3"), "warn"),             # step S + 60 s
    (2, S + 100 * SEC, _line("error", "50", "error again"), "error"),
    (3, S + 61 * SEC, _line("error", "100", "error"), "error"),
    (3, S + 90 * SEC, _line(None, '"abc"'), None),             # no level, latency not a number
    (3, S + 125 * SEC, _line("info", "5"), "info"),            # after the last step
    (4, S + 30 * SEC, _line("info", "9"), "info"),             # not selected (no namespace)
]


def _write_store(folder: Path, rows: list[tuple[int, int, str, str | None]], streams: dict[int, dict[str, str]],
                 files: int = 2) -> StoreFiles:
    """The rows as `files` chunk files (sorted by stream then time, as the store writes them)."""
    chunks = folder / "chunks" / "day=2026-01-19"
    chunks.mkdir(parents=True)
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    per = -(-len(ordered) // files)
    for k in range(files):
        part = ordered[k * per:(k + 1) * per]
        table = pa.table({
            "stream_id": pa.array([r[0] for r in part], pa.int64()),
            "ts": pa.array([r[1] for r in part], pa.int64()),
            "line": pa.array([r[2] for r in part], pa.string()),
            "metadata": pa.array([[("detected_level", r[3])] if r[3] else None for r in part], METADATA_TYPE),
        })
        pq.write_table(table, chunks / f"{k}.parquet")
    return StoreFiles(str(folder / "chunks" / "day=*" / "*.parquet"), streams)


def _both(files: StoreFiles, q: MetricQuery) -> tuple[Series, Series]:
    con = duckdb.connect(config={"threads": 2})
    ids = files.select(q.streams)
    return (floor_series(metric_floor_duckdb(con, files, q, ids), q, files),
            floor_series(metric_floor_polars(files, q, ids), q, files))


def _query(**kw: object) -> MetricQuery:
    base: dict[str, object] = {"name": "x", "title": "x", "logql": "x", "start": S, "end": S + 150 * SEC,
                               "step": MINUTE_NS, "range": MINUTE_NS,
                               "streams": lambda lb: bool(lb.get("namespace")), "by": ("json", "level")}
    return MetricQuery(**{**base, **kw})  # type: ignore[arg-type]


def _ms(ns: int) -> int:
    return ns // 10**6


@pytest.fixture
def tiny(tmp_path: Path) -> StoreFiles:
    return _write_store(tmp_path, ROWS, STREAMS)


def test_count_per_json_field(tiny: StoreFiles) -> None:
    want = {(("level", "info"),): {_ms(S): 2.0},
            (("level", "error"),): {_ms(S + 60 * SEC): 1.0, _ms(S + 120 * SEC): 2.0},
            (("level", "warn"),): {_ms(S + 60 * SEC): 1.0},
            (): {_ms(S + 120 * SEC): 1.0}}                       # the line without `level`
    by_duckdb, by_polars = _both(tiny, _query())
    assert by_duckdb == by_polars == want


def test_quantile_per_label(tiny: StoreFiles) -> None:
    q = _query(by=("label", "namespace"), op="quantile", unwrap_json="latency_ms", phi=0.99)
    want: Series = {(("namespace", "a"),): {_ms(S): 1 + 0.99 * (2 - 1), _ms(S + 60 * SEC): 3 + 0.99 * (10 - 3),
                                    _ms(S + 120 * SEC): 50.0},
            (("namespace", "b"),): {_ms(S + 120 * SEC): 100.0}}   # "abc" is left out
    for got in _both(tiny, q):
        assert compare(got, want) is None, compare(got, want)


def test_rate_per_label_topk(tiny: StoreFiles) -> None:
    q = _query(by=("label", "pod"), op="rate", contains=("error",), topk=1)
    for got in _both(tiny, q):
        assert set(got) <= {(("pod", p),) for p in ("p1", "p2", "p3")}
        assert got[(("pod", "p1"),)] == {_ms(S + 60 * SEC): 1 / 60}
        # at S + 120 s p2 and p3 tie (one line each): either may be the top one
        at = [points[_ms(S + 120 * SEC)] for points in got.values() if _ms(S + 120 * SEC) in points]
        assert at == [1 / 60]
    full = _both(tiny, _query(by=("label", "pod"), op="rate", contains=("error",)))
    for got in full:
        assert got == {(("pod", "p1"),): {_ms(S + 60 * SEC): 1 / 60}, (("pod", "p2"),): {_ms(S + 120 * SEC): 1 / 60},
                       (("pod", "p3"),): {_ms(S + 120 * SEC): 1 / 60}}


def test_instant_count_per_stream_and_metadata(tiny: StoreFiles) -> None:
    q = _query(start=S + 120 * SEC, end=S + 120 * SEC, step=0, range=120 * SEC, by=("stream", "detected_level"))
    t = _ms(S + 120 * SEC)
    want = {(("detected_level", "error"), ("namespace", "a"), ("pod", "p1")): {t: 1.0},   # S itself is out
            (("detected_level", "warn"), ("namespace", "a"), ("pod", "p2")): {t: 1.0},
            (("detected_level", "error"), ("namespace", "a"), ("pod", "p2")): {t: 1.0},
            (("detected_level", "error"), ("namespace", "b"), ("pod", "p3")): {t: 1.0},
            (("namespace", "b"), ("pod", "p3")): {t: 1.0}}                              # no metadata
    by_duckdb, by_polars = _both(tiny, q)
    assert by_duckdb == by_polars == want


def test_steps_and_params() -> None:
    q = _query()
    assert q.last == S + 120 * SEC and q.steps == 3
    assert q.params() == {"query": "x", "start": S, "end": S + 150 * SEC, "step": "60"}
    inst = _query(start=S, end=S, step=0, range=3600 * SEC)
    assert inst.instant and inst.path == "/loki/api/v1/query" and inst.params() == {"query": "x", "time": S}
    with pytest.raises(ValueError):
        _query(range=5 * MINUTE_NS)   # a line in several windows: not what the floors do


def _generated_store(tmp_path: Path) -> tuple[StoreFiles, generate.Dataset]:
    """The JSON set plus streams the selector leaves out, with the level as metadata, as the server
    stores them."""
    ds = generate.build(generate.Spec(6000, 42, 4, 1000))
    batches = list(ds.batches())
    lines = pa.concat_arrays([b.lines for b in batches])
    sids = pa.concat_arrays([pa.array(ds.stream_of_line[b:e], pa.int64()) for _, b, e in ds.bounds])
    ts = pa.concat_arrays([pa.array(b.ts, pa.int64()) for b in batches])
    levels = pc.extract_regex(lines, r'"level":"(?P<l>[a-z]+)"').field("l").to_pylist()
    rows = list(zip(sids.to_pylist(), ts.to_pylist(), lines.to_pylist(), levels, strict=True))
    streams = {k: s.labels for k, s in enumerate(ds.streams)}
    other = len(streams)
    streams[other] = {"job": "legacy/x"}
    rows += [(other, ds.start_ns + k * 10**12, '{"level":"error","latency_ms":1}', "error") for k in range(50)]
    return _write_store(tmp_path, rows, streams, files=3), ds


def test_floors_agree_on_the_generated_data(tmp_path: Path) -> None:
    files, ds = _generated_store(tmp_path)
    queries = {q.name: q for q in build_metric_queries(ds)}
    assert set(queries) == {"me", "mf", "mg", "mh"}
    for q in queries.values():
        by_duckdb, by_polars = _both(files, q)
        assert by_duckdb, q.name
        assert compare(by_polars, by_duckdb, topk=q.topk is not None) is None, q.name
    me, _ = _both(files, queries["me"])
    assert {dict(k)["level"] for k in me} == set(generate.LEVELS)
    assert sum(sum(p.values()) for p in me.values()) == 6000            # every JSON line, once
    mf, _ = _both(files, queries["mf"])
    per_step: dict[int, int] = {}
    for points in mf.values():
        for t in points:
            per_step[t] = per_step.get(t, 0) + 1
    assert max(per_step.values()) == 5
    mh, _ = _both(files, queries["mh"])
    assert all("namespace" in dict(k) and "detected_level" in dict(k) for k in mh)


def _matrix(series: list[tuple[dict[str, str], list[tuple[float, str]]]]) -> bytes:
    return orjson.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": m, "values": [[t, v] for t, v in points]} for m, points in series]}})


def test_answers_are_read_and_compared() -> None:
    q = _query()
    body = _matrix([({"level": "info"}, [(1768780800, "2"), (1768780860.5, "0.30000000000000004")])])
    got, problems = answer_series(body, q)
    assert not problems
    assert got == {(("level", "info"),): {1768780800000: 2.0, 1768780860500: 0.30000000000000004}}
    assert compare(got, {(("level", "info"),): {1768780800000: 2.0, 1768780860500: 0.3}}) is None
    assert "differ" in (compare(got, {(("level", "info"),): {1768780800000: 3.0, 1768780860500: 0.3}}) or "")
    assert "only in the floor" in (compare(got, {**got, (("level", "warn"),): {1: 1.0}}) or "")
    assert "only in ours" in (compare({**got, (): {1: 1.0}}, got) or "")
    _, problems = answer_series(_matrix([({"a": "1"}, [(1, "1")]), ({"a": "1"}, [(2, "1")])]), q)
    assert problems
    inst = _query(start=S, end=S, step=0, range=3600 * SEC)
    vector = orjson.dumps({"data": {"resultType": "vector", "result": [{"metric": {"a": "1"}, "value": [12, "4"]}]}})
    assert answer_series(vector, inst)[0] == {(("a", "1"),): {12000: 4.0}}
    with pytest.raises(RuntimeError):
        answer_series(vector, q)
    # topk: per step, the values as a multiset; which of tied series is kept does not matter
    ours: Series = {(("pod", "p2"),): {1000: 1.0}, (("pod", "p1"),): {1000: 2.0}}
    floor: Series = {(("pod", "p3"),): {1000: 1.0}, (("pod", "p1"),): {1000: 2.0}}
    assert compare(ours, floor, topk=True) is None
    assert compare(ours, floor) is not None
    one: Series = {(("pod", "p1"),): {1000: 2.0}}
    assert compare(ours, one, topk=True) is not None


def test_queries_option_selects_metric_queries() -> None:
    ds, lg = generate.build(generate.Spec(3000)), legacy.build(generate.Spec(legacy.MIN_LINES))
    logs, metrics = build_queries(ds, lg), build_metric_queries(ds)
    assert not {q.name for q in logs} & {q.name for q in metrics}
    picked = select_queries(logs, metrics, "a,me,mh")
    assert [q.name for q in picked[0]] == ["a"] and [q.name for q in picked[1]] == ["me", "mh"]
    assert select_queries(logs, metrics, "none") == ([], [])
    assert len(select_queries(logs, metrics, "all")[1]) == 4
    with pytest.raises(ValueError):
        select_queries(logs, metrics, "mz")
