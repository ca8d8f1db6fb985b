"""Two parser stages that extract the same name: which value a line ends with, as in Loki.

Parsers without parameters never overwrite a label an earlier parser stage set (Loki's
"already extracted" hint); `| json a="path"` and `| logfmt a` always set theirs, and `| json
a="path"` gives "" for a path it did not find only when the line has no label `a` yet.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lokiarrow.config import Ingester
from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.logql.ast import LogExpr
from lokiarrow.logql.parser import parse_expr
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.store.helpers import entries

LINES = ['{"a":"one","b":{"c":"two"}} a=three', '{"x":"1"}', "a=1 a=2"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TenantStore:
    tenant = TenantStore(Root(str(tmp_path_factory.mktemp("stages"))), "t", Ingester())
    tenant.push(entries([({"app": "x"}, ts, line) for ts, line in enumerate(LINES, 1)]))
    return tenant


def a_values(store: TenantStore, query: str) -> list[str | None]:
    expr = parse_expr(query)
    assert isinstance(expr, LogExpr)
    snapshot = store.snapshot()
    q = LogQuery(expr.matchers, (), 0, 100, 100, False, expr.stages)
    rows = select_logs(snapshot, snapshot.index.streams.match(expr.matchers), q, ScanStats())
    return [dict(labels).get("a") for labels in rows.column("labels").to_pylist()]


@pytest.mark.parametrize(("query", "expected"), [
    ('{app="x"} | json | logfmt', ["one", None, "1"]),               # the first parser's value stays
    ('{app="x"} | logfmt | logfmt', ["three", None, "1"]),            # logfmt keeps a name's first value
    ('{app="x"} | json | json a="b.c"', ["two", None, None]),        # parameters overwrite
    ('{app="x"} | json | json a="missing"', ["one", None, None]),    # ... but "" never replaces a label
    ('{app="x"} | logfmt | json a="b.c"', ["two", None, "1"]),       # not JSON: an error, nothing set
    ('{app="x"} | json | logfmt a', ["three", None, "2"]),           # logfmt's parameters: the last value
    ('{app="x"} | logfmt | logfmt a', ["three", None, "2"]),
])
def test_which_parser_stage_sets_a_name(store: TenantStore, query: str, expected: list[str | None]) -> None:
    assert a_values(store, query) == expected


def test_a_stream_label_is_never_overwritten(tmp_path: Path) -> None:
    tenant = TenantStore(Root(str(tmp_path)), "t", Ingester())
    tenant.push(entries([({"a": "stream"}, 1, '{"a":"line"}')]))
    assert a_values(tenant, '{a="stream"} | json a="a"') == ["stream"]
