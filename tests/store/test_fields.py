"""Parsed-field columns hold exactly what `| json` / `| logfmt` extract, wherever a row is marked parsed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.config import Ingester
from lokiarrow.logql import ast
from lokiarrow.store.fields import (
    PARSED_JSON,
    PARSED_LOGFMT,
    PARSED_NONE,
    SETTLED_KEY,
    choose_fields,
    extract,
    settled_summary,
    unsettled_rows,
)
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.exec.parsers.helpers import run
from tests.store.helpers import entries

NAMES = ["level", "msg", "status", "latency_ms", "a_b"]


def check_exact(lines: list[str]) -> list[int]:
    """Extract, then compare every row marked parsed with the real parser's labels; the markers."""
    fields = extract(pa.array(lines, pa.string()), NAMES)
    kinds, columns, inexact = fields.parsed.to_pylist(), fields.columns, fields.inexact.to_pylist()
    by_json = run(ast.JsonParser(), lines)
    by_logfmt = run(ast.LogfmtParser(), lines)
    for i, kind in enumerate(kinds):
        if kind == PARSED_NONE:
            assert all(columns[n][i].as_py() is None for n in NAMES)
            continue
        labels = by_json[i] if kind == PARSED_JSON else by_logfmt[i]
        unknown = inexact[i] or []
        assert "__error__" not in labels, lines[i]
        for name in NAMES:
            if name in unknown:
                assert columns[name][i].as_py() is None
            else:
                assert columns[name][i].as_py() == labels.get(name), (lines[i], name)
    return kinds


def test_plain_json_and_logfmt_lines_are_read_in_sql() -> None:
    lines = [
        '{"level":"error","msg":"db down","status":500,"latency":1.5,"nested":{"level":"x"}}',
        '{"msg":"no level","status":true}',
        '{"level":"","status":-12}',
        'level=info msg="request completed" status=200 duration=1.5s',
        'msg=first level=warn level=error',
        'ts=2026-01-01T00:00:00Z  status=404',
    ]
    assert check_exact(lines) == [PARSED_JSON] * 3 + [PARSED_LOGFMT] * 3


def test_lines_the_readers_could_disagree_on_are_left_to_the_parser() -> None:
    lines = [
        '{"level":"a\\"b"}',                       # an escape
        '{"level":"\ufffd"}',                      # Loki turns U+FFFD into a space
        '{"x":NaN,"level":"error"}',               # DuckDB reads NaN, Loki's scanner stops there
        '{"level":"error","x":1,}',                # a trailing comma
        '{" level":"a","level":"b"}',              # Loki trims the key: the first "level" wins
        '["level"]',
        'level=error msg=',                        # an empty value
        'level=error\tmsg=x',                      # a tab between pairs
        'level=a=b',
        'level="unterminated',
        'just some text',
    ]
    assert check_exact(lines) == [PARSED_NONE] * len(lines)


def test_values_the_readers_could_disagree_on_are_unknown_fields_of_a_parsed_line() -> None:
    lines = [
        '{"level":null,"level":"b","msg":"m"}',    # null gives no label, so the second one counts
        '{"level":{"a":1},"level":"b","msg":"m"}',
        '{"x":{"status":1.50},"status":2.50,"msg":"m"}',  # an odd number's key twice: which one is unclear
        '{"status":1.50,"status":2,"msg":"m"}',
    ]
    assert check_exact(lines) == [PARSED_JSON] * len(lines)
    fields = extract(pa.array(lines), NAMES)
    assert fields.inexact.to_pylist() == [["level"], ["level"], ["status"], ["status"]]
    assert fields.columns["msg"].to_pylist() == ["m"] * 4


def test_numbers_duckdb_writes_otherwise_are_kept_as_the_line_writes_them() -> None:
    """Loki keeps a number's text (`-0`, `1.50`, `1e3`); DuckDB would rewrite it, so the column
    takes it from the line where its key occurs once."""
    lines = ['{"status":-0,"msg":"m"}', '{"status":1.50,"msg":"m"}', '{"status":1e3 ,"msg":"m"}',
             '{"msg":"m","status":12345678901234567}', '{"msg":"m","status":-0.0}']
    fields = extract(pa.array(lines), NAMES)
    assert fields.inexact.to_pylist() == [None] * 5
    assert fields.columns["status"].to_pylist() == ["-0", "1.50", "1e3", "12345678901234567", "-0.0"]


_KEYS = st.sampled_from(["level", "msg", "status", " level", "level ", "lev.el", "Level", "a", "",
                         "latency_ms", "latency.ms", "latency-ms", "latency", "a_b", "a.b", "a-b"])
_VALUES = st.sampled_from(['"error"', '"a b"', '""', '"x\\"y"', '"\ufffd"', "0", "-0", "12", "1.50", "1e3",
                           "NaN", "Infinity", "true", "false", "null", '{"level":"n"}', "[1,]", '"\t"',
                           "8.094", "8.0940", "0.5", "-0.0", "-12.25", "12345678901234567", "1.2345678901234567",
                           '{"ms":1}', '{"b":"x"}', '{"b":{"c":2}}', '"HTTP/1.0"'])


@st.composite
def json_lines(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(_KEYS, _VALUES), max_size=5))
    body = ",".join(f'"{k}":{v}' for k, v in pairs)
    return "{" + body + draw(st.sampled_from(["", ",", " ", "} x"])) + "}" + draw(st.sampled_from(["", " ", "\n"]))


_LOGFMT_VALUES = st.sampled_from(["error", '"a b"', '""', "", '"x\\"y"', "a=b", '"\ufffd"', "1.5s", 'a"b', "é"])


@st.composite
def logfmt_lines(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(_KEYS, _LOGFMT_VALUES), min_size=1, max_size=5))
    seps = draw(st.lists(st.sampled_from([" ", "  ", "\t"]), min_size=len(pairs), max_size=len(pairs)))
    return "".join(f"{sep}{k}={v}" for sep, (k, v) in zip(seps, pairs, strict=True)).lstrip(" ")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(json_lines(), logfmt_lines()), min_size=1, max_size=20))
def test_marked_rows_always_match_the_parsers(lines: list[str]) -> None:
    check_exact(lines)


def test_frequent_cheap_fields_are_chosen() -> None:
    lines = [f'{{"level":"{"info" if i % 3 else "error"}","trace":"{i:032x}","n":{i % 7},"a.b":"x",'
             f'"rare{i}":"y","size":{i},"lat_ms":{i % 50}.5}}' for i in range(3000)]
    # trace: many long distinct values; a.b: not a label name; rare*: too rare; size, lat_ms: short values
    assert choose_fields(pa.array(lines), 8) == ["lat_ms", "level", "n", "size"]
    assert choose_fields(pa.array(lines), 1) == ["level"]
    assert choose_fields(pa.array(lines), 0) == []


def test_flush_writes_field_columns_beside_the_line(tmp_path: Path) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester(field_columns=4))
    store.push(entries([({"app": "x"}, i, f'level={"error" if i % 10 == 0 else "info"} i={i % 3}')
                        for i in range(500)]))
    store.flush()
    (chunk,) = (tmp_path / "t" / "chunks").glob("day=*/*.parquet")
    table = pq.read_table(chunk)
    assert {"parsed", "f_level", "f_i"} <= set(table.column_names)
    assert set(table.column("parsed").to_pylist()) == {PARSED_LOGFMT}
    assert table.column("f_level").to_pylist().count("error") == 50


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([PARSED_NONE, PARSED_JSON, PARSED_LOGFMT]),
                          st.none() | st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True)),
                max_size=30),
       st.sampled_from([PARSED_JSON, PARSED_LOGFMT]), st.lists(st.sampled_from(["a", "b", "c"]), max_size=2))
def test_the_footer_summary_bounds_the_unsettled_rows(rows: list[tuple[int, list[str] | None]], kind: int,
                                                      needed: list[str]) -> None:
    """The summary never promises fewer unsettled rows than there are, and promises none exactly
    when every row is parsed by `kind` with every needed field known."""
    summary = settled_summary(pa.array([p for p, _ in rows], pa.uint8()),
                              pa.array([u for _, u in rows], pa.list_(pa.string())))
    actual = sum(1 for p, unknown in rows if p != kind or set(unknown or ()) & set(needed))
    bound = unsettled_rows(summary, kind, needed)
    assert bound is not None and bound >= actual
    assert (bound == 0) == (actual == 0)
    assert unsettled_rows(None, kind, needed) is None


def test_chunk_files_carry_the_summary(tmp_path: Path) -> None:
    tenant = TenantStore(Root(str(tmp_path)), "t", Ingester())
    tenant.push(entries([({"app": "a"}, i, '{"level":"info"}' if i % 4 else "plain") for i in range(40)]))
    tenant.flush()
    [chunk] = set(tenant.snapshot().index.rows.column("chunk").to_pylist())
    summary = pq.read_metadata(tmp_path / chunk).metadata[SETTLED_KEY]
    assert unsettled_rows(summary, PARSED_JSON, ["level"]) == 10
