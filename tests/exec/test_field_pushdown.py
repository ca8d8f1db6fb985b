"""Label filters after `| json` / `| logfmt` read the parsed-field columns, and answers do not change."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.compile.fields import field_filter
from lokiarrow.compile.prefilter import prefilters
from lokiarrow.config import Ingester
from lokiarrow.exec import logs, pipeline
from lokiarrow.exec.label_filters import FilterState, evaluate
from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.exec.sql_recorder import record_sql
from tests.store.helpers import entries

HOUR = 3600 * 10**9
DURATIONS = ["1.5s", "850ms", "2m3s", "1s", "999999999ns", "1.0000000005s", "abc", "", "-2s", "0", "3h", "7µs"]
LEVELS = ["info", "error", "warn", "", "ERROR"]


def _line(i: int) -> str:
    level, duration, status = LEVELS[i % 5], DURATIONS[(i // 6) % 12], [200, 404, 500, 503][i % 4]
    match i % 6:
        case 0 | 1:
            lat = f"{i % 7}.{i % 3}0" if i % 2 else f"{i % 7}.{i % 3}"   # 1.20: DuckDB would write 1.2
            return (f'{{"level":"{level}","status":{status},"msg":"request {i} error-free","duration":"{duration}",'
                    f'"lat":{lat}}}')
        case 2:
            return f'{{"status":"{status}","msg":"no level here, error in text"}}'
        case 3:
            return f"level={level or 'none'} status={status} duration={duration or '0'} msg=\"job {i}\""
        case 4:
            return f'{{"x":NaN,"level":"{level}","status":{status}}}' if i % 4 == 0 else f"status={status} msg=plain"
        case _:
            return f'{{"level":"err\\u006fr","status":{status}}}' if i % 7 == 0 else f"plain text line {i} error"


def _rows() -> tuple[list[tuple[dict[str, str], int, str]], list[dict[str, str] | None]]:
    rows, metadata = [], []
    for i in range(1200):
        labels = {"app": "ab"[i % 2]} | ({"level": "stream"} if i % 10 == 9 else {})
        rows.append((labels, (i // 400) * HOUR + i * 10**6, _line(i)))
        metadata.append({"level": "error"} if i % 37 == 0 else None)
    return rows, metadata


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TenantStore]:
    """The same entries with field columns, without them, and only in the head."""
    rows, metadata = _rows()
    out = {}
    for name, fields in (("fields", 8), ("plain", 0), ("head", 8)):
        store = TenantStore(Root(str(tmp_path_factory.mktemp(name))), "t", Ingester(field_columns=fields))
        for part in range(3):
            lo, hi = part * 400, (part + 1) * 400
            store.push(entries(rows[lo:hi], metadata[lo:hi]))
            if name != "head":
                store.flush()
        out[name] = store
    return out


def run(store: TenantStore, query: str, limit: int, backward: bool) -> tuple[list[object], ScanStats]:
    expr = parse_expr(query)
    assert isinstance(expr, ast.LogExpr)
    filters, rest = pipeline.split(expr.stages)
    snapshot = store.snapshot()
    ids = snapshot.index.streams.match(expr.matchers)
    names = {n for sid in ids for n in snapshot.index.streams.labels[sid]}
    q = LogQuery(expr.matchers, filters, 0, 10 * HOUR, limit, backward, rest, prefilters(rest, names),
                 field_filter(rest, names))
    stats = ScanStats()
    table = select_logs(snapshot, ids, q, stats)
    labels = [sorted(m) for m in table.column("labels").to_pylist()] if "labels" in table.column_names \
        else [None] * table.num_rows  # label order in the map does not matter: answers sort them
    return list(zip(table.column("ts").to_pylist(), table.column("line").to_pylist(), labels, strict=True)), stats


QUERIES = [
    '{app=~"a|b"} | json | level="error"',
    '{app="a"} | json | level!="error"',
    '{app=~".+"} | json | level=~"err.*|warn"',
    '{app=~".+"} | json | level!~"info|"',
    '{app=~".+"} | json | level=""',
    '{app=~".+"} | json | status >= 500',
    '{app=~".+"} | json | status == 404 or level="warn"',
    '{app=~".+"} | json | status != 200, level="error"',
    '{app=~".+"} | json | level="error" | line_format "{{.status}}"',
    '{app=~".+"} |= "error" | json | level="error" | status > 499',
    '{app=~".+"} | logfmt | duration > 1s',
    '{app=~".+"} | logfmt | duration <= 850ms',
    '{app=~".+"} | logfmt | duration == 1s',
    '{app=~".+"} | logfmt | duration != 1s',
    '{app=~".+"} | logfmt | level="error" or status >= 500',
    '{app=~".+"} | logfmt --strict | level="none"',
    '{app=~".+"} | json | level="stream"',
    '{app=~".+"} | json | lat > 2.5',
    '{app=~".+"} | json | lat == 1.2 or lat=~"3.*"',
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("direct", [True, False])
def test_answers_equal_with_and_without_field_columns(stores: dict[str, TenantStore], monkeypatch: pytest.MonkeyPatch,
                                                      query: str, direct: bool) -> None:
    monkeypatch.setattr(logs, "DIRECT_READ_FILES", 100 if direct else 0)
    monkeypatch.setattr(logs, "DIRECT_READ_ROWS", 10**9 if direct else 0)
    for limit, backward in ((5000, True), (7, True), (30, False)):
        answers = {name: run(store, query, limit, backward)[0] for name, store in stores.items()}
        assert answers["fields"] == answers["plain"] == answers["head"], (query, limit, backward)
    assert answers["fields"], query


def test_a_selective_filter_hands_the_pipeline_only_its_matches(stores: dict[str, TenantStore]) -> None:
    query = '{app="a"} | json | level="error"'
    rows, with_fields = run(stores["fields"], query, 5000, True)
    _, without = run(stores["plain"], query, 5000, True)
    assert with_fields.returned == without.returned == len(rows) > 0
    # app "a" rows that are plain JSON (all hold "error", so the line prefilter keeps them), with
    # no `level` metadata: the columns settle them, and only those with level=error go on
    settled = [i for i in range(0, 1200, 2) if i % 6 in (0, 1, 2) and i % 37 != 0]
    dropped = [i for i in settled if i % 6 == 2 or LEVELS[i % 5] != "error"]
    assert len(dropped) > 100
    assert without.candidates - with_fields.candidates == len(dropped)


def test_stream_labels_and_parameters_are_not_pushed_down() -> None:
    def plan(query: str) -> object:
        expr = parse_expr(query)
        assert isinstance(expr, ast.LogExpr)
        return field_filter(pipeline.split(expr.stages)[1], {"app"})

    assert plan('{app="a"} | json | app="x"') is None
    assert plan('{app="a"} | json level | level="x"') is None
    assert plan('{app="a"} | regexp "(?P<level>\\\\w+)" | level="x"') is None
    assert plan('{app="a"} | json | __error__=""') is None
    assert plan('{app="a"} | json | _x="y"') is None               # not a field-column name
    assert plan('{app="a"} | json | level="x" or foo > 1KB') is None  # bytes: not pushed
    pushed = plan('{app="a"} | json | level="x" | foo > 1KB')
    assert pushed is not None and pushed.names == ("level",)        # type: ignore[attr-defined]


_VALUES = st.one_of(st.sampled_from(DURATIONS + ["1.5", "12", "-3", "1e3", " 5", "0x10", "1_0", "NaN"]),
                    st.builds(lambda n, u: f"{n}{u}", st.floats(0, 1e4, allow_nan=False).map(lambda f: f"{f:.4f}"),
                              st.sampled_from(["ns", "us", "µs", "ms", "s", "m", "h"])),
                    st.none())


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_VALUES, min_size=1, max_size=30),
       filter_text=st.sampled_from(["d > 1s", "d >= 1.5s", "d < 850ms", "d <= 2m3s", "d == 1s", "d != 1s",
                                    "d > 12", "d <= 1.5", "d == 12", "d != -3"]))
def test_field_conditions_never_drop_what_the_filter_keeps(values: list[str | None], filter_text: str) -> None:
    expr = parse_expr(f'{{a="b"}} | json | {filter_text}')
    assert isinstance(expr, ast.LogExpr)
    stage = expr.stages[1]
    assert isinstance(stage, ast.LabelFilterStage)
    plan = field_filter(expr.stages, set())
    assert plan is not None
    column = pa.array(values, pa.string())
    con = duckdb.connect()
    con.register("t", pa.table({"f_d": column}))
    pushed_keep = con.sql(f"SELECT {plan.sql} AS keep FROM t", params=list(plan.params)).fetchnumpy()["keep"]
    n = len(values)
    state = FilterState({"d": column}, pa.nulls(n, pa.string()), pa.nulls(n, pa.string()))
    kept = evaluate(stage.filter, state, np.ones(n, dtype=bool))
    assert not np.any(kept & ~pushed_keep.astype(bool)), list(zip(values, kept, pushed_keep, strict=True))


def test_the_metadata_check_is_left_out_where_the_index_rules_it_out(stores: dict[str, TenantStore]) -> None:
    """Some entries carry `level` as structured metadata, none `status`: only a filter on `level`
    keeps the per-row check that metadata shadows the parsed value."""
    snapshot = stores["fields"].snapshot()
    ids = sorted(snapshot.index.streams.labels)
    for query, checked in (('{app=~".+"} | json | status >= 500', False), ('{app=~".+"} | json | level="x"', True)):
        expr = parse_expr(query)
        assert isinstance(expr, ast.LogExpr)
        _, rest = pipeline.split(expr.stages)
        q = LogQuery(expr.matchers, (), 0, 10 * HOUR, 10, True, rest, (), field_filter(rest, {"app"}))
        fields = logs._unshadowed(snapshot, ids, q).fields
        assert fields is not None
        assert ("metadata_set" in fields.row_sql("TRUE", [])[0]) == checked


def _clean_store(path: str, fields: int, metadata_name: str | None) -> TenantStore:
    """JSON lines the columns settle whole; optionally metadata `metadata_name` on every 9th."""
    store = TenantStore(Root(path), "t", Ingester(field_columns=fields))
    rows = [({"app": "ab"[i % 2]}, i * 10**6, f'{{"level":"{LEVELS[i % 3]}","status":{200 + i % 4}}}')
            for i in range(900)]
    store.push(entries(rows, [{metadata_name: "error"} if metadata_name and i % 9 == 0 else None for i in range(900)]))
    store.flush()
    return store


@pytest.mark.parametrize("metadata_name", [None, "trace", "level"])
def test_files_whose_footers_settle_every_row_are_tested_on_the_column_alone(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, metadata_name: str | None) -> None:
    """Every row parsed and exact (the footer), no metadata of that name (the index): the scan's
    test is the column's, with no per-row fallback; the answer is the pipeline's."""
    fast = _clean_store(str(tmp_path_factory.mktemp("fast")), 8, metadata_name)
    slow = _clean_store(str(tmp_path_factory.mktemp("slow")), 0, metadata_name)
    monkeypatch.setattr(logs, "DIRECT_READ_FILES", 0)
    texts = record_sql(monkeypatch, logs)
    for query in ('{app=~".+"} | json | level="error"', '{app="a"} | json | status >= 202, level!="info"'):
        texts.clear()
        got, _ = run(fast, query, 1000, True)
        assert texts and all(("WHEN parsed = " in t) == (metadata_name == "level") for t in texts)  # per-row fallback
        want, _ = run(slow, query, 1000, True)
        assert got == want and got
