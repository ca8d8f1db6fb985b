"""No LogQL value reaches DuckDB as SQL text: every statement DuckDB receives while the querier
answers generated queries is recorded, and the query's marker (a unique word inside a hostile
value: quotes, backslashes, `--`, `;`, comment openers, unicode) must never be in one. Values may
reach DuckDB only as bound parameters.

The querier runs in-process over a store in a temp folder whose entries are flushed to chunk files
(the files are what DuckDB reads, small ones too here); every cursor of lokiarrow/exec/duck.py and every
`duckdb.connect()` connection is watched, and so are the relations they return."""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lokiarrow.exec.duck
import lokiarrow.exec.engine
import lokiarrow.exec.index_queries
import lokiarrow.exec.logs
import lokiarrow.exec.metrics.fielded
import lokiarrow.exec.metrics.ranges
import lokiarrow.exec.metrics.unwrapped
from lokiarrow.config import Ingester, Limits
from lokiarrow.errors import LokiError
from lokiarrow.exec import index_queries
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.exec.writers import Want
from lokiarrow.model import go_quote
from lokiarrow.store.store import Store
from tests.store.helpers import entries

S = 10**9
T0 = 1_768_860_000 * S
END = T0 + 3600 * S
WATCHED = [lokiarrow.exec.duck, lokiarrow.exec.engine, lokiarrow.exec.index_queries, lokiarrow.exec.logs,
           lokiarrow.exec.metrics.fielded, lokiarrow.exec.metrics.ranges, lokiarrow.exec.metrics.unwrapped]
HOSTILE = ["'", '"', "\\", "--", ";", "/*", "*/", "'); DROP TABLE x; --", "%", "_", "$1", "?", "\\'", "''",
           "ü", "日本", "✓", "\t", " ", "e'--", "\\\\\"", "{{", "$."]


@dataclass
class Recorder:
    texts: list[str] = field(default_factory=list)   # statement texts and other string arguments
    statements: int = 0                                # every call that took SQL text


class Watched:
    """A DuckDB connection, cursor or relation whose calls are recorded (their string arguments:
    statements, relation expressions, view names); parameters are not text and are left alone."""

    def __init__(self, real: Any, rec: Recorder) -> None:
        self._real, self._rec = real, rec

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            texts = [a for a in args if isinstance(a, str)] + [v for v in kw.values() if isinstance(v, str)]
            self._rec.texts.extend(texts)
            self._rec.statements += bool(texts)
            out = attr(*args, **kw)
            return Watched(out, self._rec) if isinstance(out, (duckdb.DuckDBPyConnection, duckdb.DuckDBPyRelation)) else out
        return call

    def __enter__(self) -> Watched:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    real_cursor, real_connect = lokiarrow.exec.duck.cursor, duckdb.connect
    with pytest.MonkeyPatch.context() as patch:
        for module in WATCHED:
            if hasattr(module, "cursor"):
                patch.setattr(module, "cursor", lambda: Watched(real_cursor(), rec))
        patch.setattr(duckdb, "connect", lambda *a, **kw: Watched(real_connect(*a, **kw), rec))
        patch.setattr(lokiarrow.exec.logs, "DIRECT_READ_ROWS", 0)   # small files too go through DuckDB
        yield rec


# values stored in the data, each around a marker word, so that queries naming them read files
DATA_WORDS = [f"zq{i:04d}{'abcdef'[i % 6]}data" for i in range(30)]
DATA_VALUES = {w: HOSTILE[i % len(HOSTILE)] + w + HOSTILE[(i + 7) % len(HOSTILE)] for i, w in enumerate(DATA_WORDS)}


def _logfmt(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(scope="module")
def querier(tmp_path_factory: pytest.TempPathFactory, recorder: Recorder) -> Querier:
    store = Store(str(tmp_path_factory.mktemp("sqltext")), Ingester(wal_enabled=False))
    tenant = store.tenant("fake")
    rows = []
    for i, (word, value) in enumerate(DATA_VALUES.items()):
        doc = {"msg": f"hello {value}", "latency": i, "level": "info", value: "odd key", f"n_{word}": value,
               "nested": {value: value}}
        rows.append(({"app": "fuzz", "env": value}, T0 + i * S, json.dumps(doc)))
        rows.append(({"app": "fuzz", "env": "logfmt"}, T0 + i * S + 1,
                     f"level=warn latency={i} n_{word}={_logfmt(value)} msg={_logfmt('x' + value)}"))
    tenant.push(entries(rows))
    tenant.flush()
    tenant.push(entries([({"app": "fuzz", "env": "head"}, T0 + 100 * S, '{"msg": "in the head", "latency": 7}')]))
    assert recorder.statements > 0   # flushing ran DuckDB through the watched connections
    return Querier(store, Limits(max_query_length=0, max_query_series=0, max_entries_limit_per_query=0))


def _regex(value: str) -> str:
    """An RE2 pattern matching `value` literally (ASCII punctuation escaped)."""
    return "".join("\\" + c if c in string.punctuation else c for c in value)


def _key(value: str) -> str:
    """A JSON path step naming the key `value`: `["..."]`."""
    return '["' + value.replace("\\", "\\\\").replace('"', '\\"') + '"]'


def _safe(value: str, banned: str) -> str:
    return "".join(c for c in value if c not in banned)


# each: (marker value, label name) -> LogQL text holding both
QUERIES: list[Callable[[str, str], str]] = [
    lambda v, n: f'{{app="fuzz", env={go_quote(v)}}}',
    lambda v, n: f'{{app="fuzz", env!={go_quote(v)}}}',
    lambda v, n: f'{{app="fuzz", env=~{go_quote(_regex(v))}}}',
    lambda v, n: f'{{app="fuzz", env!~{go_quote(_regex(v) + ".*")}}}',
    lambda v, n: f'{{app="fuzz", {n}=""}} |= {go_quote(v)}',
    lambda v, n: f'{{app="fuzz"}} |= {go_quote(v)}',
    lambda v, n: f'{{app="fuzz"}} != {go_quote(v)}',
    lambda v, n: f'{{app="fuzz"}} |~ {go_quote(_regex(v))}',
    lambda v, n: f'{{app="fuzz"}} !~ {go_quote("(?i)" + _regex(v))}',
    lambda v, n: f'{{app="fuzz"}} |= "hello" or {go_quote(v)}',
    lambda v, n: f'{{app="fuzz"}} |= ip({go_quote(v)})',
    lambda v, n: f'{{app="fuzz"}} | json | {n}={go_quote(v)}',
    lambda v, n: f'{{app="fuzz"}} | json | msg={go_quote(v)} or {n}!={go_quote(v)}',
    lambda v, n: f'{{app="fuzz"}} | logfmt | {n}=~{go_quote(_regex(v))}',
    lambda v, n: f'{{app="fuzz"}} | logfmt | msg!~{go_quote(_regex(v))}',
    lambda v, n: f'{{app="fuzz"}} | json {n}="msg", x={go_quote(_key(v))}',
    lambda v, n: f'{{app="fuzz"}} | json {n}={go_quote("nested" + _key(v))} | {n}!=""',
    lambda v, n: f'{{app="fuzz"}} | logfmt x={go_quote(n)}, msg | x={go_quote(v)}',
    lambda v, n: f'{{app="fuzz"}} | regexp {go_quote(f"(?P<{n}>[a-z]+) {_regex(v)}")}',
    lambda v, n: f'{{app="fuzz"}} | pattern {go_quote("<" + n + "> " + _safe(v, "<>") + "<_>")}',
    lambda v, n: f'{{app="fuzz"}} | line_format {go_quote("{{.app}} " + _safe(v, "{}"))}',
    lambda v, n: f'{{app="fuzz"}} | label_format {n}={go_quote(_safe(v, "{}"))}',
    lambda v, n: f'{{app="fuzz"}} | json | drop {n}={go_quote(v)}, msg',
    lambda v, n: f'{{app="fuzz"}} | json | keep app, {n}',
    lambda v, n: f'{{app="fuzz"}} | json | {n}={go_quote(v)} | line_format "{{{{.msg}}}}" |= {go_quote(v)}',
    lambda v, n: f'count_over_time({{app="fuzz"}} |= {go_quote(v)} [5m])',
    lambda v, n: f'sum by ({n}) (rate({{app="fuzz", env=~{go_quote(_regex(v) + "|.*")}}} [1m]))',
    lambda v, n: f'bytes_over_time({{app="fuzz"}} | json | msg!={go_quote(v)} [10m])',
    lambda v, n: f'sum_over_time({{app="fuzz"}} | logfmt | {n}!={go_quote(v)} | unwrap latency [1m])',
    lambda v, n: f'quantile_over_time(0.9, {{app="fuzz"}} |~ {go_quote(_regex(v) + "|.")} | json '
                 f'| unwrap latency | __error__="" [5m]) by ({n})',
    lambda v, n: f'max_over_time({{app="fuzz"}} | json {n}="latency" | {n}!={go_quote(v)} | unwrap {n} [5m])',
    lambda v, n: f'topk(2, sum by (env) (count_over_time({{app="fuzz"}} != {go_quote(v)} [5m])))',
    lambda v, n: f'label_replace(rate({{app="fuzz"}} |= {go_quote(v)} [1m]), "dst", {go_quote(v)}, "env", '
                 f'{go_quote(_regex(v))})',
    lambda v, n: f'sum(count_over_time({{app="fuzz"}} | logfmt | {n}={go_quote(v)} or level="warn" [5m])) by (level)',
]

marker_words = st.text(alphabet="0123456789abcdef", min_size=10, max_size=10).map(lambda h: "zq" + h)
hostile = st.lists(st.sampled_from(HOSTILE) | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=3),
                   max_size=3).map("".join)
COUNTS = {"queries": 0, "answered": 0, "refused": 0, "statements": 0}


@st.composite
def words(draw: st.DrawFn) -> tuple[str, str]:
    """A marker word and a hostile value around it: a new one, or one of the stored values."""
    if draw(st.booleans()):
        word = draw(st.sampled_from(DATA_WORDS))
        return word, DATA_VALUES[word]
    word = draw(marker_words)
    return word, draw(hostile) + word + draw(hostile)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, str]:
    word, value = draw(words())
    return word, value, draw(st.sampled_from(QUERIES))(value, "n_" + word)


def _run(querier: Querier, rec: Recorder, word: str, call: Callable[[], Any]) -> None:
    before = len(rec.texts)
    statements = rec.statements
    COUNTS["queries"] += 1
    try:
        call()
        COUNTS["answered"] += 1
    except LokiError:
        COUNTS["refused"] += 1   # a value LogQL refuses (a bad regex...): refused before any SQL
    COUNTS["statements"] += rec.statements - statements
    pasted = [t for t in rec.texts[before:] if word in t.lower()]
    del rec.texts[before:]
    assert not pasted, pasted[0][:2000]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(case=cases())
def test_query_values_are_never_sql_text(querier: Querier, recorder: Recorder, case: tuple[str, str, str]) -> None:
    word, _, query = case
    _run(querier, recorder, word, lambda: querier.query_range("fake", RangeRequest(query, T0 - S, END, 50, True, 60 * S)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(marked=words())
def test_index_calls_bind_their_values(querier: Querier, recorder: Recorder, marked: tuple[str, str]) -> None:
    word, value = marked
    name = "n_" + word
    selector = f'{{app="fuzz", env=~{go_quote(_regex(value) + "|.+")}}}'
    _run(querier, recorder, word, lambda: querier.label_values("fake", name, T0, END, selector))
    _run(querier, recorder, word, lambda: querier.labels("fake", T0, END, f'{{env!={go_quote(value)}}}'))
    _run(querier, recorder, word, lambda: querier.series("fake", [selector, f'{{{name}={go_quote(value)}}}'], T0, END))
    snapshot = querier.snapshot("fake", Want(T0, END))
    _run(querier, recorder, word, lambda: index_queries.index_stats(snapshot, selector, T0, END))
    _run(querier, recorder, word, lambda: index_queries.volume(snapshot, index_queries.VolumeRequest(
        selector, T0, END, step_ns=60 * S, target_labels=(name, "env"))))
    _run(querier, recorder, word, lambda: querier.query_instant("fake", f'sum by ({name}) (count_over_time('
                                                                        f'{selector} |= {go_quote(value)} [1h]))', END))


def test_the_recorder_sees_a_pasted_value(querier: Querier, recorder: Recorder) -> None:
    """The check can fail: a value pasted into a statement by hand is caught."""
    with pytest.raises(AssertionError):
        _run(querier, recorder, "zqpasted", lambda: lokiarrow.exec.duck.cursor().sql("SELECT 'zqPasted'").fetchall())


def test_the_queries_answered(querier: Querier) -> None:
    """Most generated queries ran to an answer (a refusal checks nothing): and print the counts."""
    assert COUNTS["queries"] >= 1000 and COUNTS["answered"] >= COUNTS["queries"] * 0.8, COUNTS
    assert COUNTS["statements"] > COUNTS["queries"], COUNTS
    print(COUNTS)
