"""Counts from the index: the same answers as scanning, and no scan where windows hold whole rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lokiarrow.config import Ingester, Limits
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.exec.metrics import index_counts, ranges
from lokiarrow.logql.ast import RangeAggregation
from lokiarrow.logql.parser import parse_expr
from lokiarrow.store.chunks import MAX_METADATA_SETS
from lokiarrow.store.store import Store
from tests.store.helpers import entries

S = 10**9
H = 3600 * S
H0 = 1_699_999_200 * S  # an hour boundary
OPS = ["count_over_time", "rate", "bytes_over_time", "bytes_rate"]


@pytest.fixture(scope="module")
def querier(tmp_path_factory: pytest.TempPathFactory) -> Querier:
    """Three flushed hours and a head in the fourth; metadata sets per line (one stream with more
    sets than the index counts apart); one line exactly on an hour boundary."""
    store = Store(str(tmp_path_factory.mktemp("index_counts")), Ingester())
    tenant = store.tenant("t")
    for hour in range(4):
        rows, metadata = [], []
        for i in range(240):
            app = ("a", "b", "c")[i % 3]
            ts = H0 + hour * H + i * 15 * S + 1 + (i % 7)
            if hour == 1 and i == 0:
                ts = H0 + hour * H  # on the boundary: a window starting here must not count it
            rows.append(({"app": app}, ts, "x" * (i % 11) + f" line {i}"))
            if app == "c":
                metadata.append({"trace": str(i % (MAX_METADATA_SETS + 4))})
            else:
                metadata.append({"level": ("warn", "error")[i % 2]} if i % 5 else None)
        tenant.push(entries(rows, metadata))
        if hour < 3:
            tenant.flush()
    return Querier(store, Limits(max_query_series=10_000))


def _series(answer: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], Any]:
    if answer["resultType"] == "vector":
        return {tuple(sorted(s["metric"].items())): s["value"] for s in answer["result"]}
    return {tuple(sorted(s["metric"].items())): s["values"] for s in answer["result"]}


def _ask(q: Querier, query: str, instant: int | None, start: int = 0, end: int = 0, step: int = 0
         ) -> dict[tuple[tuple[str, str], ...], Any]:
    if instant is not None:
        return _series(q.query_instant("t", query, instant))
    return _series(q.query_range("t", RangeRequest(query, start, end, step_ns=step)))


CASES = [  # (selector and range, instant time | None, start, end, step)
    ('{app=~".+"}[1h]', H0 + 3 * H, 0, 0, 0),                   # whole hours: the index answers
    ('{app=~".+"}[1h]', H0 + 2 * H + 17 * S, 0, 0, 0),          # windows cut the files: scanned
    ('{app=~"a|b"}[1h] offset 1h', H0 + 4 * H, 0, 0, 0),
    ('{app="a"}[1h]', None, H0 + H, H0 + 4 * H, H),
    ('{app=~".+"}[2h]', None, H0 + H, H0 + 4 * H, H // 2),     # rows in several windows
    ('{app=~"b|c"}[30m]', None, H0, H0 + 4 * H, 30 * 60 * S),  # windows smaller than the files
]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(("selector", "instant", "start", "end", "step"), CASES)
def test_index_counts_equal_scanned_counts(querier: Querier, monkeypatch: pytest.MonkeyPatch, op: str,
                                           selector: str, instant: int | None, start: int, end: int,
                                           step: int) -> None:
    query = f"{op}({selector})"
    answer = _ask(querier, query, instant, start, end, step)
    through_pipeline = _ask(querier, query.replace("[", "| drop nothing ["), instant, start, end, step)
    monkeypatch.setattr(ranges, "whole_rows", lambda *a: index_counts.IndexCounts(
        index_counts.COUNTS_SCHEMA.empty_table(), set()))
    scanned = _ask(querier, query, instant, start, end, step)
    assert answer == scanned == through_pipeline
    assert len(answer) >= 3


def test_whole_hours_are_answered_without_opening_their_files(querier: Querier) -> None:
    """[1h] at an hour's end holds the files of that hour whole, except the stream whose metadata
    sets are too many to count apart (its file is scanned) and the one whose first line sits on
    the window's open start."""
    snapshot = querier.store.tenant("t").snapshot()

    def answered(query: str, at: int) -> int:
        node = parse_expr(query)
        assert isinstance(node, RangeAggregation)
        ids = sorted(snapshot.index.streams.match(node.range.selector.matchers))
        return len(index_counts.whole_rows(snapshot, ids, node.range, np.array([at], dtype=np.int64), 0).answered)

    assert answered('count_over_time({app="a"}[1h])', H0 + 3 * H) == 1      # the third hour's file
    assert answered('count_over_time({app="c"}[1h])', H0 + 3 * H) == 0      # metadata sets unknown
    assert answered('count_over_time({app="a"}[1h])', H0 + 2 * H) == 0      # a line at the window's start
    assert answered('count_over_time({app="a"}[1h])', H0 + 2 * H + 5 * S) == 0  # the window cuts the file


@pytest.mark.parametrize("op", OPS)
def test_files_without_metadata_sets_are_grouped_by_their_maps(querier: Querier, monkeypatch: pytest.MonkeyPatch,
                                                               op: str) -> None:
    """Chunk files written before the `metadata_set` column (here: every other file, then all)
    group by the metadata map itself, with the same answer."""
    query = f'{op}({{app=~".+"}} |= "line" [20m])'
    want = _ask(querier, query, None, H0, H0 + 4 * H, 20 * 60 * S)
    assert len(want) > 3
    real = ranges.has_columns
    for keep in (lambda path: hash(path) % 2 == 0, lambda path: False):
        monkeypatch.setattr(ranges, "has_columns", lambda path, names, keep=keep: keep(path) and real(path, names))
        assert _ask(querier, query, None, H0, H0 + 4 * H, 20 * 60 * S) == want


@pytest.mark.parametrize("op", ["count_over_time", "bytes_rate"])
@pytest.mark.parametrize(("selector", "instant", "start", "end", "step"), CASES)
def test_few_points_are_labelled_as_many_are(querier: Querier, monkeypatch: pytest.MonkeyPatch, op: str,
                                             selector: str, instant: int | None, start: int, end: int,
                                             step: int) -> None:
    """Series labels and summed points come out alike whether built row by row (few points) or
    in Polars (many): metadata sets, `_extracted` names and two spellings of one set included."""
    query = f"{op}({selector})"
    answers = []
    for rows in (0, 10**9):
        monkeypatch.setattr(ranges, "PYTHON_ROWS", rows)
        answers.append(_ask(querier, query, instant, start, end, step))
    assert answers[0] == answers[1]
    assert len(answers[0]) >= 3
