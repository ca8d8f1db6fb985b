"""Parts merged into the unsplit answer (lokiarrow/frontend/merge.py, downstream.run_logs/run_metric),
checked against the engine itself: the parts are run by a real in-process querier over a real store,
and the merged answer must be the answer of the whole range, byte for byte (series of a matrix
compared in label order: the engine gives them in no fixed order)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.config import Ingester, Limits
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.frontend.downstream import run_logs, run_metric
from lokiarrow.frontend.merge import first_entries, label_text, merge_stats
from lokiarrow.frontend.split import Part, split_request
from lokiarrow.logql.parser import parse_expr
from lokiarrow.model import labels_string, stream_id
from lokiarrow.server.encodings import with_encoding_flags
from lokiarrow.store.schema import ENTRIES
from lokiarrow.store.store import Store

S = 10**9
MINUTE = 60 * S
H = 3600 * S
T0 = 1_768_860_000 * S   # 2026-01-19T22:00:00Z, on an hour
OPEN = Limits(max_entries_limit_per_query=0, max_query_series=0, query_timeout=0)

LOG_QUERIES = ['{app="fe"}', '{app=~"fe|be"} |= "level=info"', '{app="fe"} | logfmt | level!="warn"',
               '{app="fe"} | logfmt | line_format "{{.level}}"', '{app=~"fe|be"} | logfmt | drop msg, trace']
METRIC_QUERIES = ['count_over_time({app="fe"}[5m])', 'sum by (pod) (rate({app=~"fe|be"}[10m]))',
                  'topk(2, sum by (pod) (count_over_time({app="fe"} |= "info" [15m])))',
                  'sum by (level) (sum_over_time({app="fe"} | logfmt | unwrap n [20m] offset 7m))',
                  'bytes_over_time({app="be"}[1h])', 'sum(count_over_time({app="fe"}[3m])) * 2']


def rows() -> list[tuple[dict[str, str], int, str, dict[str, str] | None]]:
    """Four streams with lines sharing timestamps across streams (three at a time), more of them
    exactly at hour cuts, exact duplicates, and structured metadata on some lines."""
    out = []
    for i in range(900):
        labels = {"app": "fe", "pod": f"p{i % 4}"}
        meta = {"trace": f"t{i % 3}"} if i % 5 == 0 else None
        out.append((labels, T0 + (i // 3) * 47 * S, f"level={('info', 'warn', 'error')[i % 3]} n={i % 7} msg=m{i}",
                    meta))
    for cut in (H, 2 * H - 1, 2 * H, 3 * H):
        out += [({"app": "fe", "pod": f"p{p}"}, T0 + cut, f"level=info n=1 msg=cut{p}", None) for p in range(4)]
    dup = T0 + 30 * MINUTE
    out += [({"app": "fe", "pod": "p0"}, dup, line, None) for line in ("level=debug n=2 a", "level=debug n=2 b",
                                                                          "level=debug n=2 a")]
    out += [({"app": "be"}, T0 + i * 13 * MINUTE, f"level=info n={i} msg=be{i}", None) for i in range(20)]
    return out


def batch(data: list[tuple[dict[str, str], int, str, dict[str, str] | None]]) -> pa.RecordBatch:
    texts = [labels_string(labels) for labels, _, _, _ in data]
    return pa.RecordBatch.from_pydict({
        "labels": texts, "stream_id": [stream_id(t) for t in texts], "ts": [r[1] for r in data],
        "line": [r[2] for r in data], "metadata": [list(r[3].items()) if r[3] else None for r in data],
    }, schema=ENTRIES)


@pytest.fixture(scope="module", params=["head", "flushed"])
def querier(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Querier]:
    store = Store(str(tmp_path_factory.mktemp("merge")), Ingester())
    tenant = store.tenant("t")
    tenant.push(batch(rows()))
    if request.param == "flushed":
        tenant.flush()
    yield Querier(store, OPEN)


class Parts:
    """Parts answered by the in-process querier, as a downstream reader would; counts the asks."""

    def __init__(self, querier: Querier, req: RangeRequest, flags: bool = False) -> None:
        self.querier = querier
        self.req = req
        self.flags = flags
        self.asked: list[tuple[Part, int]] = []

    def whole(self) -> dict[str, Any]:
        return self.answer(self.req)

    def answer(self, req: RangeRequest) -> dict[str, Any]:
        data = self.querier.query_range("t", req)
        if self.flags:
            data = with_encoding_flags(data, ["categorize-labels"], parse_expr(req.query))
        return orjson.loads(orjson.dumps(data))   # as it travels

    async def fetch(self, part: Part, limit: int) -> dict[str, Any]:
        self.asked.append((part, limit))
        return self.answer(RangeRequest(self.req.query, part.start, part.end, limit, self.req.backward,
                                        self.req.step_ns))


def split_logs_answer(parts: Parts, interval: int) -> dict[str, Any]:
    split = split_request(parts.req, interval)
    return asyncio.run(run_logs(split.parts, parts.fetch, parts.req.limit, parts.req.backward))


def without_stats(data: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in data.items() if k != "stats"})


@settings(max_examples=40, deadline=None)
@given(query=st.sampled_from(LOG_QUERIES), start=st.integers(min_value=-10, max_value=240),
       minutes=st.integers(min_value=1, max_value=300), interval=st.sampled_from([H, 30 * MINUTE, 17 * MINUTE]),
       limit=st.integers(min_value=1, max_value=1000) | st.sampled_from([1, 2, 3, 4, 5, 100]),
       backward=st.booleans(), flags=st.booleans())
def test_a_split_log_query_answers_as_the_whole(querier: Querier, query: str, start: int, minutes: int,
                                                interval: int, limit: int, backward: bool, flags: bool) -> None:
    begin = T0 + start * MINUTE
    parts = Parts(querier, RangeRequest(query, begin, begin + minutes * MINUTE, limit, backward), flags)
    assert without_stats(split_logs_answer(parts, interval)) == without_stats(parts.whole())


def test_a_cut_inside_equal_timestamps_of_several_streams_asks_the_part_again(querier: Querier) -> None:
    whole = RangeRequest('{app="fe"}', T0, T0 + 4 * H, 10_000, backward=True)
    newest_hour = Parts(querier, RangeRequest('{app="fe"}', T0 + 3 * H, T0 + 4 * H, 10_000)).whole()
    held = sum(len(s["values"]) for s in newest_hour["result"])
    # the next hour's newest three lines share a timestamp, one stream each
    for extra, asked_again in ((2, True), (3, False)):
        parts = Parts(querier, RangeRequest(whole.query, whole.start, whole.end, held + extra))
        got = split_logs_answer(parts, H)
        assert without_stats(got) == without_stats(parts.whole())
        assert any(limit == extra for _, limit in parts.asked) == asked_again


@settings(max_examples=40, deadline=None)
@given(query=st.sampled_from(METRIC_QUERIES), start=st.integers(min_value=-600, max_value=14_000),
       seconds=st.integers(min_value=1, max_value=16_000), step=st.sampled_from([47, 60, 300, 420, 3700]),
       interval=st.sampled_from([H, 30 * MINUTE, 17 * MINUTE]))
def test_a_split_metric_query_answers_as_the_whole(querier: Querier, query: str, start: int, seconds: int,
                                                   step: int, interval: int) -> None:
    begin = T0 + start * S
    req = RangeRequest(query, begin, begin + seconds * S, step_ns=step * S)
    parts = Parts(querier, req)
    got = asyncio.run(run_metric(split_request(req, interval).parts, parts.fetch, req.limit))
    whole = parts.whole()
    assert got["resultType"] == whole["resultType"] == "matrix"
    assert [label_text(s["metric"]) for s in got["result"]] == sorted(label_text(s["metric"]) for s in got["result"])
    assert got["result"] == sorted(whole["result"], key=lambda s: label_text(s["metric"]))


def test_first_entries_needs_the_order_only_the_engine_knows() -> None:
    data: dict[str, Any] = {"resultType": "streams", "result": [
        {"stream": {"a": "1"}, "values": [["30", "x"], ["20", "y"], ["20", "z"]]},
        {"stream": {"a": "2"}, "values": [["25", "u"], ["10", "v"]]}]}
    assert first_entries(data, 2, backward=True) == {"resultType": "streams", "result": [
        {"stream": {"a": "1"}, "values": [["30", "x"]]}, {"stream": {"a": "2"}, "values": [["25", "u"]]}]}
    # equal timestamps within one stream keep that stream's order
    three = first_entries(data, 3, backward=True)
    assert three is not None and three["result"][0]["values"] == [["30", "x"], ["20", "y"]]
    assert first_entries(data, 5, backward=False) is data
    data["result"][1]["values"][0][0] = "20"
    assert first_entries(data, 3, backward=True) is None   # which of y, z, u comes second is not written


def test_stats_are_summed() -> None:
    one = {"summary": {"totalBytesProcessed": 10, "execTime": 0.5, "bytesProcessedPerSecond": 20, "splits": 0},
           "index": {"usedBloomFilters": False, "totalChunks": 2}}
    two = {"summary": {"totalBytesProcessed": 30, "execTime": 1.5, "bytesProcessedPerSecond": 20, "splits": 0},
           "index": {"usedBloomFilters": True, "totalChunks": 3}}
    merged = merge_stats([{"stats": one}, {"stats": two}])
    assert merged == {"summary": {"totalBytesProcessed": 40, "execTime": 2.0, "bytesProcessedPerSecond": 20,
                                  "splits": 2},
                      "index": {"usedBloomFilters": True, "totalChunks": 5}}


def test_the_store_holds_what_the_tests_expect(querier: Querier) -> None:
    answer = querier.query_range("t", RangeRequest('{app="fe"}', T0 + 2 * H, T0 + 2 * H + 1, 100))
    assert sorted(len(s["values"]) for s in answer["result"]) == [1, 1, 1, 1]   # a line per stream at the cut
