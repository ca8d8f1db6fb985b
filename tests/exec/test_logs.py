"""Log queries answer as a brute-force reading of everything pushed would: both scan paths
(DuckDB over Parquet, Arrow over exact row groups), early stops, and reads of one window's slice
of an hour's file."""

from __future__ import annotations

import pytest
import re2

from lokiarrow.compile.fields import field_filter
from lokiarrow.compile.prefilter import prefilters
from lokiarrow.config import Ingester
from lokiarrow.exec import logs, pipeline
from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.logql.ast import LineFilter, LogExpr
from lokiarrow.logql.parser import parse_expr
from lokiarrow.model import labels_string, stream_id
from lokiarrow.store.fs import Root
from lokiarrow.store.schema import METADATA_SET_COLUMN
from lokiarrow.store.tenant import TenantStore
from tests.store.helpers import entries

HOUR = 3600 * 10**9
STEP = 36 * 10**9  # 100 timestamps span the hour's six row-group windows
QUERIES = ['{app="a"}', '{app=~"a|b"} |= "err"', '{app="b"} != "err" |~ "l[0-4]"',
           '{app=~".+"} |~ "(?i)ERR" or "l7"', '{pod="p1"} |= ""']


PUSHED: list[tuple[dict[str, str], int, str]] = []  # every row of the store, in arrival order


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TenantStore:
    """Four flushes plus a head, each over a whole hour (so every file has rows in all six
    windows of its hour), with equal timestamps across streams and within one; the fifth flush
    overlaps the first hour; the last holds app "c" alone, so files of apps a and b hold only
    streams `{app=~"a|b"}` wants (no stream test) while `{app="a"}` must test them."""
    tenant = TenantStore(Root(str(tmp_path_factory.mktemp("logs"))), "t", Ingester())
    PUSHED.clear()
    for flush in range(7):
        rows = []
        for i in range(300):
            app = "c" if flush == 6 else "ab"[i % 2]
            ts = (flush % 5) * HOUR + (i // 3) * STEP + (flush // 5) * 7 * 10**9
            rows.append(({"app": app, "pod": f"p{i % 3}"}, ts, f"l{i % 10} {'err' if i % 4 == 0 else 'ok'} {i}"))
        tenant.push(entries(rows))
        PUSHED.extend(rows)
        if flush != 4:
            tenant.flush()
    return tenant


def _reference(query: str, backward: bool, limit: int) -> list[tuple[int, str]]:
    """The answer read off PUSHED: ts in the query's direction; equal ts by stream id, then by
    arrival (reversed when backward), as Loki orders them."""
    expr = parse_expr(query)
    assert isinstance(expr, LogExpr)
    hits = []
    for n, (labels, ts, line) in enumerate(PUSHED):
        if all(m.matches(labels.get(m.name, "")) for m in expr.matchers) and \
                all(_passes(f, line) for f in expr.stages if isinstance(f, LineFilter)):
            sign = -1 if backward else 1
            hits.append(((sign * ts, stream_id(labels_string(labels)), sign * n), (ts, line)))
    return [row for _, row in sorted(hits)[:limit]]


def _passes(f: LineFilter, line: str) -> bool:
    if f.op in ("|=", "!="):
        hit = any(v in line for v in f.values)
    else:
        hit = any(re2.search(v, line) is not None for v in f.values)
    return hit if f.op in ("|=", "|~") else not hit


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("backward", [True, False])
@pytest.mark.parametrize("limit", [1, 37, 450, 5000])
def test_answers_match_a_brute_force_reading(store: TenantStore, query: str, backward: bool, limit: int) -> None:
    expr = parse_expr(query)
    assert isinstance(expr, LogExpr)
    filters = tuple(s for s in expr.stages if isinstance(s, LineFilter))
    snapshot = store.snapshot()
    q = LogQuery(expr.matchers, filters, 0, 10 * HOUR, limit, backward)
    rows = select_logs(snapshot, snapshot.index.streams.match(expr.matchers), q, ScanStats())
    got = list(zip(rows.column("ts").to_pylist(), rows.column("line").to_pylist(), strict=True))
    assert got == _reference(query, backward, limit)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("backward", [True, False])
@pytest.mark.parametrize("limit", [1, 37, 5000])
def test_duckdb_and_arrow_paths_agree(store: TenantStore, monkeypatch: pytest.MonkeyPatch,
                                      query: str, backward: bool, limit: int) -> None:
    expr = parse_expr(query)
    assert isinstance(expr, LogExpr)
    filters = tuple(s for s in expr.stages if isinstance(s, LineFilter))
    snapshot = store.snapshot()
    ids = snapshot.index.streams.match(expr.matchers)
    q = LogQuery(expr.matchers, filters, 0, 10 * HOUR, limit, backward)
    answers = []
    for direct_files in (0, 100):
        monkeypatch.setattr(logs, "DIRECT_READ_FILES", direct_files)
        monkeypatch.setattr(logs, "DIRECT_READ_ROWS", 10**9 if direct_files else 0)
        rows = select_logs(snapshot, ids, q, ScanStats())
        answers.append(list(zip(rows.column("ts").to_pylist(), rows.column("line").to_pylist(), strict=True)))
    assert answers[0] == answers[1]
    assert len(answers[0]) == min(limit, len(answers[0])) and answers[0]
    stamps = [ts for ts, _ in answers[0]]
    assert stamps == sorted(stamps, reverse=backward)


def test_a_pipeline_that_makes_entries_identical_still_fills_the_limit(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`| line_format "x"` drops no row but makes equal-time entries identical (kept once): the
    scan cannot stop at `limit` rows then."""
    tenant = TenantStore(Root(str(tmp_path_factory.mktemp("same"))), "t", Ingester())
    tenant.push(entries([({"app": "a"}, ts, line) for ts, line in
                         ((10, "a1"), (10, "a2"), (10, "a3"), (9, "b"), (8, "c"))]))
    expr = parse_expr('{app="a"} | line_format "x"')
    assert isinstance(expr, LogExpr)
    snapshot = tenant.snapshot()
    for limit, expected in ((2, [10, 9]), (3, [10, 9, 8]), (1, [10])):
        q = LogQuery(expr.matchers, (), 0, 100, limit, True, expr.stages)
        rows = select_logs(snapshot, snapshot.index.streams.match(expr.matchers), q, ScanStats())
        assert rows.column("ts").to_pylist() == expected
        assert set(rows.column("line").to_pylist()) == {"x"}


@pytest.mark.parametrize("query", [
    '{app=~"a|b"} | regexp "l(?P<d>\\\\d) (?P<kind>\\\\w+)" | kind="err"',
    '{app=~"a|b"} | regexp "l(?P<d>\\\\d)" | line_format "{{.d}}"',   # makes equal-time entries identical
    '{pod="p1"} | regexp "(?P<n>\\\\d+)$" | n > 250 or d="3"',
])
@pytest.mark.parametrize("backward", [True, False])
def test_a_limited_pipeline_answer_is_the_head_of_the_full_one(store: TenantStore, query: str, backward: bool) -> None:
    expr = parse_expr(query)
    assert isinstance(expr, LogExpr)
    snapshot = store.snapshot()
    ids = snapshot.index.streams.match(expr.matchers)

    def answer(limit: int) -> list[tuple[int, str, list[tuple[str, str]]]]:
        q = LogQuery(expr.matchers, (), 0, 10 * HOUR, limit, backward, expr.stages)
        rows = select_logs(snapshot, ids, q, ScanStats())
        return list(zip(rows.column("ts").to_pylist(), rows.column("line").to_pylist(),
                        [sorted(m) for m in rows.column("labels").to_pylist()], strict=True))

    whole = answer(100_000)
    assert len(whole) > 60
    for limit in (1, 5, 37, 60):
        assert answer(limit) == whole[:limit]


def test_files_that_hold_only_wanted_streams_are_read_without_a_stream_test(store: TenantStore) -> None:
    snapshot = store.snapshot()
    both = snapshot.index.streams.match(parse_expr('{app=~"a|b"}').matchers)  # type: ignore[attr-defined]
    one = snapshot.index.streams.match(parse_expr('{app="a"}').matchers)  # type: ignore[attr-defined]
    assert {ref.pure for ref in snapshot.index.chunks(both, 0, 10 * HOUR)} == {True}
    assert {ref.pure for ref in snapshot.index.chunks(one, 0, 10 * HOUR)} == {False}
    # app c's file, hour 1 only: a span that misses the other files' rows of other streams is pure
    c = snapshot.index.streams.match(parse_expr('{app="c"}').matchers)  # type: ignore[attr-defined]
    assert [ref.pure for ref in snapshot.index.chunks(c, 0, 10 * HOUR)] == [True]


@pytest.mark.parametrize("query", ['{app=~".+"} | json | level="error"', '{app="a"} | json | level="error"',
                                   '{app=~".+"} | json | status="5"', '{app=~".+"}'])
def test_files_without_metadata_sets_answer_alike(tmp_path_factory: pytest.TempPathFactory,
                                                  monkeypatch: pytest.MonkeyPatch, query: str) -> None:
    """Scans read each row's structured metadata as the file's `metadata_set` text; files written
    before that column read the map. Metadata named like a parsed field shadows it, and names
    JSON writes with escapes are found too."""
    tenant = TenantStore(Root(str(tmp_path_factory.mktemp("sets"))), "t", Ingester())
    rows, metadata = [], []
    kinds: list[dict[str, str] | None] = [None, {"level": "error"}, {"level": "info", "a\"b": "1"},
                                          {"trace": "t1"}, {"q\\": "x", "level": "error"}]
    for i in range(400):
        rows.append(({"app": "ab"[i % 2]}, i * 10**9, f'{{"level":"{("error", "info")[i % 3 == 0]}","status":"{i % 7}"}}'))
        metadata.append(kinds[i % 5])
    tenant.push(entries(rows[:200], metadata[:200]))
    tenant.flush()
    tenant.push(entries(rows[200:], metadata[200:]))
    tenant.flush()
    expr = parse_expr(query)
    assert isinstance(expr, LogExpr)
    filters, rest = pipeline.split(expr.stages)
    snapshot = tenant.snapshot()
    names = {"app"}
    q = LogQuery(expr.matchers, filters, 0, 10**12, 1000, True, rest, prefilters(rest, names), field_filter(rest, names))
    monkeypatch.setattr(logs, "DIRECT_READ_FILES", 0)
    answers = []
    real = logs.has_columns
    for keep in (lambda path: True, lambda path: False):
        monkeypatch.setattr(logs, "has_columns", lambda path, cols, keep=keep: keep(path) and real(path, cols) if
                            METADATA_SET_COLUMN in cols else real(path, cols))
        got = select_logs(snapshot, snapshot.index.streams.match(expr.matchers), q, ScanStats())
        labels = got.column("labels").to_pylist() if "labels" in got.column_names else got.column("metadata").to_pylist()
        answers.append(list(zip(got.column("ts").to_pylist(), [sorted(m or []) for m in labels], strict=True)))
    assert answers[0] == answers[1]
    assert len(answers[0]) > 50
    assert any(("q\\", "x") in m or ("a\"b", "1") in m for _, m in answers[0])  # names JSON escapes
