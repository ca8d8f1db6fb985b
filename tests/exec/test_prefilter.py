"""Label filters after parsers narrow the scan itself; the pipeline sees only candidate lines."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.compile.prefilter import Prefilter, metadata_has_sql, prefilters
from lokiarrow.config import Ingester
from lokiarrow.exec import logs, pipeline
from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.logql.ast import LogExpr
from lokiarrow.logql.parser import parse_expr
from lokiarrow.store.fs import Root
from lokiarrow.store.schema import METADATA_SET_COLUMN, METADATA_TYPE
from lokiarrow.store.tenant import TenantStore
from tests.store.helpers import entries


def stages(query: str) -> LogExpr:
    expr = parse_expr(query)
    assert isinstance(expr, LogExpr)
    return expr


@pytest.mark.parametrize(("query", "expected"), [
    ('{a="b"} | json | level="error"', (Prefilter("error", "level"),)),
    ('{a="b"} | logfmt | level="error", status="500"', (Prefilter("error", "level"), Prefilter("500", "status"))),
    ('{a="b"} | json | level="error" or level="warn"', ()),      # an `or` implies nothing on its own
    ('{a="b"} | json | level!="error"', ()),
    ('{a="b"} | json | app="x"', ()),                             # a stream label: not from the line
    ('{a="b"} | line_format "{{.x}}" | json | level="e"', ()),    # the line changed before parsing
    ('{a="b"} | json | __error__=""', ()),
])
def test_which_filters_imply_line_text(query: str, expected: tuple[Prefilter, ...]) -> None:
    _, rest = pipeline.split(stages(query).stages)
    assert prefilters(rest, {"app", "a"}) == expected


@pytest.mark.parametrize("direct", [True, False])
def test_selective_pipeline_parses_only_candidate_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        direct: bool) -> None:
    store = TenantStore(Root(str(tmp_path)), "t", Ingester())
    rows = [({"app": "x"}, i, f'{{"level":"{"error" if i % 100 == 0 else "info"}","i":{i}}}') for i in range(2000)]
    rows.append(({"app": "x"}, 5000, '{"level":"err\\u006fr","i":-1}'))   # escaped: must still be found
    store.push(entries(rows))
    store.flush()
    monkeypatch.setattr(logs, "DIRECT_READ_ROWS", 10**9 if direct else 0)
    seen: list[int] = []
    begin = pipeline.begin
    monkeypatch.setattr(pipeline, "begin", lambda table, labels: seen.append(table.num_rows) or begin(table, labels))
    expr = stages('{app="x"} | json | level="error"')
    filters, rest = pipeline.split(expr.stages)
    snapshot = store.snapshot()
    q = LogQuery(expr.matchers, filters, 0, 10**6, 100, True, rest, prefilters(rest, {"app"}))
    result = select_logs(snapshot, snapshot.index.streams.match(expr.matchers), q, ScanStats())
    assert result.num_rows == 21
    assert isinstance(result.column("labels"), pa.ChunkedArray)
    assert sum(seen) == 21   # 20 plain matches + the escaped one; 1980 info lines never left the scan


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=4), st.text(min_size=1, max_size=6),
       st.booleans())
def test_the_metadata_name_test_finds_every_name_the_row_has(metadata: dict[str, str], name: str, use_key: bool
                                                              ) -> None:
    """Over the `metadata_set` text as DuckDB writes it, the test is true wherever the row's metadata
    has the name (it may be true elsewhere too: the pipeline decides), escaped names included."""
    if use_key and metadata:
        name = next(iter(metadata))
    con = duckdb.connect()
    con.register("t", pa.table({"metadata": pa.array([list(metadata.items())], METADATA_TYPE)}))
    sql, params = metadata_has_sql([name])
    hit = con.sql(f"SELECT {sql} FROM (SELECT coalesce(to_json(metadata)::VARCHAR, '{{}}') AS {METADATA_SET_COLUMN} "
                  "FROM t)", params=params).fetchall()[0][0]
    if name in metadata:
        assert hit is True
    elif not any(name in text for text in (*metadata, *metadata.values())):
        assert hit is False
