"""Label filters after parsers narrow the scan itself; the pipeline sees only candidate lines."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lokiarrow.compile.prefilter import Prefilter, prefilters
from lokiarrow.config import Ingester
from lokiarrow.exec import logs, pipeline
from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.logql.ast import LogExpr
from lokiarrow.logql.parser import parse_expr
from lokiarrow.store.fs import Root
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
