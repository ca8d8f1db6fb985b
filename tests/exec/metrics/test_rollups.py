"""Counts from the per-minute rollups equal the counts from the lines, and are taken only where exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lokiarrow.config import Ingester, Limits
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.exec.metrics import fielded, ranges
from lokiarrow.exec.sources import footer_value
from lokiarrow.store import rollups
from lokiarrow.store.names import rollup_of
from lokiarrow.store.store import Store
from tests.exec.sql_recorder import record_sql
from tests.store.helpers import entries

S = 10**9
M = 60 * S
T0 = 1_700_001_960 * S  # a whole minute, 14 minutes before an hour ends
LEVELS = ["info", "error", "warn", "debug"]


def _line(i: int) -> str:
    if i % 211 == 5:
        return f"level=info odd {i}"                      # not JSON: fails `| json`, as in Loki
    if i % 97 == 3:
        return f'{{"level":"info","level":"warn","n":{i}}}'  # duplicate key: the column cannot settle it
    if i % 13 == 0:
        return f'{{"msg":"no level {i}"}}'
    return _plain(i)


def _plain(i: int) -> str:
    msg = ["req", "upstream error", "warning: slow", "errors: 2"][i % 7 % 4]
    return f'{{"level":"{LEVELS[i % 4]}","kind":"k{i % 3}","msg":"{msg} {i}"}}'


def _store(path: Path, fields: int, *, rollup: bool = True, odd: bool = True, flushed: int = 4000) -> Querier:
    """4,000 entries over 20 minutes (more in the first minutes), streams {app, pod}, some with
    structured metadata `level` (which shadows the parsed one); the first `flushed` in Parquet."""
    store = Store(str(path), Ingester(field_columns=fields))
    tenant = store.tenant("t")
    n = 4000
    stamps = [T0 + (i * i * 1200 * S) // (n * n) + i for i in range(n)]  # uneven, with minute edges hit
    stamps[10] = T0 + 3 * M                                            # exactly a minute's end
    lines = [_line(i) if odd else _plain(i) for i in range(n)]
    rows = [({"app": "ab"[i % 2], "pod": f"p{i % 3}"}, stamps[i], lines[i]) for i in range(n)]
    metadata = [{"level": "meta"} if i % 89 == 0 else None for i in range(n)]
    patch = pytest.MonkeyPatch()
    if not rollup:
        patch.setattr(rollups, "MAX_SHARE", 0.0)
    try:
        tenant.push(entries(rows[:flushed], metadata[:flushed]))
        tenant.flush()
        if flushed < n:
            tenant.push(entries(rows[flushed:], metadata[flushed:]))
    finally:
        patch.undo()
    return Querier(store, Limits())


def _matrix(q: Querier, query: str, start: int = T0, step: int = M, end: int = T0 + 25 * M) -> dict[Any, Any]:
    answer = q.query_range("t", RangeRequest(query, start, end, step_ns=step))
    return {tuple(sorted(s["metric"].items())): [(t, float(v)) for t, v in s["values"]] for s in answer["result"]}


def _approx(matrix: dict[Any, Any]) -> dict[Any, Any]:
    """Points compared to 1e-9 (sums may add up in another order)."""
    return {key: [(t, pytest.approx(v, rel=1e-9)) for t, v in points] for key, points in matrix.items()}


def _chunks(path: Path) -> list[str]:
    return sorted(str(p) for p in path.glob("t/chunks/*/*.parquet"))


def _rollups_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The rollup files the metric scans read from now on."""
    read: list[str] = []

    def spy(chunk: str) -> str:
        read.append(rollup_of(chunk))
        return read[-1]
    monkeypatch.setattr(fielded, "rollup_of", spy)
    monkeypatch.setattr(ranges, "rollup_of", spy)
    return read


def test_flush_writes_a_rollup_named_in_the_chunk_footer(tmp_path: Path) -> None:
    _store(tmp_path / "r", 8, odd=False)
    chunks = _chunks(tmp_path / "r")
    assert len(chunks) == 2  # the data crosses an hour
    for chunk in chunks:
        held = rollups.rolled_of(footer_value(chunk, rollups.ROLLUP_KEY))
        assert held is not None and held.fields == {"level"} and held.words == Ingester().rollup_words
        rolled, rows = pq.read_table(rollup_of(chunk)), pq.read_table(chunk)
        assert sum(rolled.column("n").to_pylist()) == rows.num_rows
        lines = rows.column("line").to_pylist()
        for i, word in enumerate(held.words):
            assert sum(rolled.column(f"w{i}").to_pylist()) == sum(word in line for line in lines)
        assert sum(rolled.column("bytes").to_pylist()) == sum(len(t.encode()) for t in rows.column("line").to_pylist())
        assert rolled.num_rows <= rollups.MAX_SHARE * rows.num_rows
        assert all(ts % M == 0 for ts in rolled.column("ts").to_pylist())
    # no rollup where it would not be much smaller, and then the footer names none
    _store(tmp_path / "n", 8, rollup=False)
    for chunk in _chunks(tmp_path / "n"):
        assert rollups.rolled_of(footer_value(chunk, rollups.ROLLUP_KEY)) is None
        assert not Path(rollup_of(chunk)).exists()


QUERIES = [
    'sum by (level) (count_over_time({app=~"a|b"} | json [1m]))',
    'sum by (level) (count_over_time({app=~"a|b"} |= "error" | json [1m]))',
    'sum by (pod) (rate({app=~"a|b"} != "warn" | json [2m]))',
    'sum by (level, pod) (rate({app="a"} | json [2m]))',
    'sum(bytes_over_time({app=~".+"} | json [5m]))',
    'sum by (app, level) (bytes_rate({app=~".+"} | json [1m] offset 2m))',
    'sum by (level) (count_over_time({pod="p1"} | logfmt [3m]))',
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("step", [M, 2 * M])
def test_rollups_give_the_lines_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str, step: int) -> None:
    rolled = _store(tmp_path / "r", 8, odd=False)
    read = _rollups_read(monkeypatch)
    got = _matrix(rolled, query, step=step)
    assert len(set(read)) == 2
    monkeypatch.undo()
    lines = _matrix(_store(tmp_path / "l", 8, rollup=False, odd=False), query, step=step)
    parsed = _matrix(_store(tmp_path / "p", 0, odd=False), query, step=step)  # no columns: the pipeline
    assert got.keys() == lines.keys() == parsed.keys()
    for key, points in got.items():
        assert [t for t, _ in points] == [t for t, _ in parsed[key]]
        assert [v for _, v in points] == pytest.approx([v for _, v in parsed[key]], rel=1e-9)
        assert [v for _, v in points] == pytest.approx([v for _, v in lines[key]], rel=1e-9)
    assert got


def test_rows_the_columns_cannot_settle_still_run_through_the_pipeline(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    query = 'sum by (level) (count_over_time({app=~"a|b"} | logfmt [1m]))'
    rolled = _store(tmp_path / "r", 8)
    read = _rollups_read(monkeypatch)
    got = _matrix(rolled, query)
    assert len(set(read)) == 2
    monkeypatch.undo()
    assert _approx(got) == _matrix(_store(tmp_path / "p", 0), query)


@pytest.mark.parametrize(("start", "step", "query"), [
    (T0 + 20 * S, M, 'sum by (level) (count_over_time({app=~"a|b"} | json [1m]))'),  # start mid-minute
    (T0, 90 * S, 'sum by (level) (count_over_time({app=~"a|b"} | json [3m]))'),       # step of 1.5 minutes
    (T0, M, 'sum by (level) (count_over_time({app=~"a|b"} | json [90s]))'),           # range of 1.5 minutes
    (T0, M, 'sum by (level) (count_over_time({app=~"a|b"} | json [1m] offset 30s))'),
    (T0, M, 'sum by (level) (count_over_time({app=~"a|b"} |= "req" | json [1m]))'),   # a word not counted
    (T0, M, 'sum by (level) (count_over_time({app=~"a|b"} |= "error" |= "up" | json [1m]))'),  # two filters
    (T0, M, 'sum by (level) (count_over_time({app=~"a|b"} |~ "error" | json [1m]))'),  # a regex
    (T0, M, 'sum by (level) (bytes_over_time({app=~"a|b"} |= "error" | json [1m]))'),  # sizes of some lines
    (T0, M, 'sum by (kind) (count_over_time({app=~"a|b"} | json [1m]))'),             # a field not rolled up
])
def test_windows_not_made_of_whole_minutes_read_the_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          start: int, step: int, query: str) -> None:
    rolled = _store(tmp_path / "r", 8, odd=False)
    read, texts = _rollups_read(monkeypatch), record_sql(monkeypatch, fielded)
    got = _matrix(rolled, query, start=start, step=step)
    assert texts and not read
    monkeypatch.undo()
    assert _approx(got) == _matrix(_store(tmp_path / "p", 0, odd=False), query, start=start, step=step)
    assert got


@pytest.mark.parametrize("query", [
    'count_over_time({app=~"a|b"}[1m])',
    'sum by (pod) (rate({app=~".+"} |= "error" [5m]))',
    'count_over_time({app="b"} != "ERROR" [1m])',
    'sum by (app) (rate({app="a"}[2m]))',
    'bytes_over_time({pod="p1"}[5m] offset 1m)',
    'sum by (level) (bytes_rate({app=~".+"}[1m]))',  # structured metadata `level` on some lines
])
@pytest.mark.parametrize("flushed", [4000, 3000])
def test_counts_without_a_parser_read_the_rollups_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     query: str, flushed: int) -> None:
    rolled = _store(tmp_path / "r", 8, flushed=flushed)
    read = _rollups_read(monkeypatch)
    got = _matrix(rolled, query)
    assert read
    monkeypatch.undo()
    assert _approx(got) == _matrix(_store(tmp_path / "l", 8, rollup=False, flushed=flushed), query)
    assert got
    # windows not made of whole minutes: the lines
    read = _rollups_read(monkeypatch)
    got = _matrix(rolled, query, start=T0 + S)
    assert not read
    monkeypatch.undo()
    assert _approx(got) == _matrix(_store(tmp_path / "p", 8, rollup=False, flushed=flushed), query, start=T0 + S)


def test_files_with_and_without_rollups_count_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first flush wrote no rollup (too big a share), the second did: one answer from both."""
    queries = ['sum by (level) (count_over_time({app=~"a|b"} |= "error" | json [1m]))',
               'sum by (pod) (rate({app=~".+"}[2m]))']
    store = Store(str(tmp_path / "mixed"), Ingester(field_columns=8))
    tenant = store.tenant("t")
    rows = [({"app": "ab"[i % 2], "pod": f"p{i % 3}"}, T0 + i * S // 5, _plain(i)) for i in range(4000)]  # in one hour
    with monkeypatch.context() as patch:
        patch.setattr(rollups, "MAX_SHARE", 0.0)
        tenant.push(entries(rows[:2000]))
        tenant.flush()
    tenant.push(entries(rows[2000:]))
    tenant.flush()
    held = [rollups.rolled_of(footer_value(c, rollups.ROLLUP_KEY)) for c in _chunks(tmp_path / "mixed")]
    assert sorted(h is None for h in held) == [False, True]
    reference = Store(str(tmp_path / "head"), Ingester(field_columns=8))
    reference.tenant("t").push(entries(rows))  # never flushed: every line read from the head
    for query in queries:
        read = _rollups_read(monkeypatch)
        got = _matrix(Querier(store, Limits()), query)
        assert len(set(read)) == 1
        monkeypatch.undo()
        assert _approx(got) == _matrix(Querier(reference, Limits()), query)
        assert got
