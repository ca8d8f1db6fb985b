"""Loki's index endpoints over a real server: `index/stats`, `index/volume`, `index/volume_range`.

The data: two dense streams flushed together (their chunk file gets a per-minute rollup), a sparse
stream flushed alone (no rollup: volume buckets read its chunk), and head rows left unflushed.
Every expected number is computed here from the entries pushed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.server.pushing import BASE_NS, push

S = 10**9
MIN = 60 * S
MS = 10**6

WEB_A = {"service_name": "web", "env": "prod", "pod": "a"}
WEB_B = {"service_name": "web", "env": "dev", "pod": "b"}
DB = {"service_name": "db", "env": "prod"}
CACHE = {"service_name": "cache", "env": "prod"}


@dataclass(frozen=True)
class Entry:
    labels: dict[str, str]
    ts: int
    line: str
    flush: int  # 1 or 2: the flush that wrote it; 0: still in the head

    @property
    def size(self) -> int:
        return len(self.line.encode())


def _entries(labels: dict[str, str], minutes: range, per_minute: int, flush: int, tag: str) -> list[Entry]:
    # one entry in every minute falls exactly on the minute: buckets end inclusively
    return [Entry(labels, BASE_NS + m * MIN + j * (60 // per_minute) * S + (0 if j == 0 else 1234),
                  f"{tag} GET /item/{m}/{j} é {'x' * ((m * 7 + j) % 13)}", flush)
            for m in minutes for j in range(per_minute)]


ENTRIES = (_entries(WEB_A, range(30), 10, 1, "a") + _entries(WEB_B, range(30), 5, 1, "b")
           + _entries(DB, range(30), 1, 2, "db") + _entries(WEB_A, range(30, 41), 3, 0, "a2")
           + _entries(CACHE, range(32, 40), 6, 0, "c"))


@pytest.fixture(scope="module", autouse=True)
def data(server: Server, client: httpx.Client) -> None:
    for flush in (1, 2, 0):
        by_stream: dict[tuple[tuple[str, str], ...], list[Entry]] = defaultdict(list)
        for e in ENTRIES:
            if e.flush == flush:
                by_stream[tuple(sorted(e.labels.items()))].append(e)
        for key, entries in by_stream.items():
            push(client, dict(key), [[e.ts, e.line] for e in entries])
        if flush:
            assert client.post("/flush").status_code == 204
    rollups = list((server.data_dir / "fake" / "rollups").rglob("*.parquet"))
    assert len(rollups) == 1  # the dense flush has one, the sparse one has none


def selected(pred: Callable[[dict[str, str]], bool]) -> list[Entry]:
    return [e for e in ENTRIES if pred(e.labels)]


def in_range(entries: list[Entry], start: int, end: int) -> list[Entry]:
    return [e for e in entries if start <= e.ts < end]


# --- index/stats ------------------------------------------------------------------------------

def expected_stats(entries: list[Entry], start: int, end: int) -> dict[str, int]:
    """Loki's rules: a flushed chunk (stream, flush) overlapping the range counts the share of its
    span inside it, rounded down; head entries count exactly, a head being one chunk per stream."""
    streams: set[tuple[tuple[str, str], ...]] = set()
    chunks = n = size = 0
    groups: dict[tuple[Any, ...], list[Entry]] = defaultdict(list)
    for e in entries:
        groups[(tuple(sorted(e.labels.items())), e.flush)].append(e)
    for (key, flush), group in groups.items():
        if flush == 0:
            inside = in_range(group, start, end)
            if inside:
                streams.add(key)
                chunks += 1
                n += len(inside)
                size += sum(e.size for e in inside)
            continue
        lo, hi = min(e.ts for e in group), max(e.ts for e in group)
        if hi < start or lo >= end:
            continue
        share = 1.0 if hi == lo else (hi - lo - max(start - lo, 0) - max(hi - end, 0)) / (hi - lo)
        count = math.floor(len(group) * share)
        if count > 0:
            streams.add(key)
            chunks += 1
            n += count
            size += math.floor(sum(e.size for e in group) * share)
    return {"streams": len(streams), "chunks": chunks, "bytes": size, "entries": n}


def stats(client: httpx.Client, query: str, start: int, end: int) -> dict[str, int]:
    r = client.get("/loki/api/v1/index/stats", params={"query": query, "start": start, "end": end})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert set(doc) == {"streams", "chunks", "bytes", "entries"}  # no status/data wrapper, as Loki
    return doc  # type: ignore[no-any-return]


@pytest.mark.parametrize(("query", "pred"), [
    ('{env="prod"}', lambda ls: ls["env"] == "prod"),
    ('{service_name="web"}', lambda ls: ls["service_name"] == "web"),
    ('{service_name=~"web|db", pod!="b"}', lambda ls: ls["service_name"] in ("web", "db") and ls.get("pod") != "b"),
    ('{service_name="nothing"}', lambda ls: False),
])
@pytest.mark.parametrize(("start", "end"), [
    (BASE_NS - 3600 * S, BASE_NS + 7200 * S),          # everything, flushed and head
    (BASE_NS + 10 * MIN + 30 * S, BASE_NS + 20 * MIN),  # inside the flushed chunks: their share
    (BASE_NS + 29 * MIN + 30 * S, BASE_NS + 35 * MIN),  # the chunks' tail and part of the head
    (BASE_NS + 31 * MIN, BASE_NS + 7200 * S),          # head only
])
def test_index_stats_counts_index_rows_and_head(client: httpx.Client, query: str,
                                                pred: Callable[[dict[str, str]], bool], start: int, end: int) -> None:
    assert stats(client, query, start, end) == expected_stats(selected(pred), start, end)


def test_index_stats_whole_range_is_exact(client: httpx.Client) -> None:
    prod = selected(lambda ls: ls["env"] == "prod")
    doc = stats(client, '{env="prod"}', BASE_NS - 3600 * S, BASE_NS + 7200 * S)
    # web/a: its flushed chunk and its head; db: its chunk; cache: its head
    assert doc == {"streams": 3, "chunks": 4, "entries": len(prod), "bytes": sum(e.size for e in prod)}


def test_index_stats_post_form(client: httpx.Client) -> None:
    r = client.post("/loki/api/v1/index/stats", data={"query": '{service_name="db"}', "start": str(BASE_NS),
                                                     "end": str(BASE_NS + 3600 * S)})
    db = selected(lambda ls: ls["service_name"] == "db")
    assert r.status_code == 200
    assert r.json() == {"streams": 1, "chunks": 1, "bytes": sum(e.size for e in db), "entries": len(db)}


# --- index/volume -----------------------------------------------------------------------------

def name_of(labels: dict[str, str], names: set[str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if names is None or k in names))


def prom_name(key: tuple[tuple[str, str], ...]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in key) + "}"


def expected_series(entries: list[Entry], names: set[str] | None, limit: int) -> list[tuple[dict[str, str], int]]:
    """Whole-range volumes (every chunk wholly inside), named by the label subset, top `limit`."""
    found: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
    for e in entries:
        found[name_of(e.labels, names)] += e.size
    ranked = sorted(found.items(), key=lambda kv: (-kv[1], prom_name(kv[0])))[:limit]
    return [(dict(k), v) for k, v in ranked]


def volume(client: httpx.Client, **params: str) -> Any:
    r = client.get("/loki/api/v1/index/volume",
                   params={"start": BASE_NS - 3600 * S, "end": BASE_NS + 7200 * S + 123_456, **params})
    assert r.status_code == 200, r.text
    return r.json()


def vector(doc: dict[str, Any]) -> list[tuple[dict[str, str], int]]:
    assert doc["status"] == "success"
    assert doc["data"]["resultType"] == "vector"
    assert "summary" in doc["data"]["stats"]
    # the sample time is the end of the range, rounded up to the millisecond
    end_ms = -(-(BASE_NS + 7200 * S + 123_456) // MS)
    for sample in doc["data"]["result"]:
        assert sample["value"][0] == end_ms / 1000
        assert isinstance(sample["value"][1], str)
    return [(s["metric"], int(s["value"][1])) for s in doc["data"]["result"]]


ALL = lambda ls: True  # noqa: E731


@pytest.mark.parametrize(("params", "pred", "names"), [
    ({"query": '{env="prod"}'}, lambda ls: ls["env"] == "prod", {"env"}),
    ({"query": '{service_name=~".+"}'}, ALL, {"service_name"}),
    ({"query": '{service_name=~".+", pod!="x"}'}, ALL, {"service_name", "pod"}),
    ({"query": "{}"}, ALL, None),  # every label of each stream
    ({"query": "{}", "limit": "2"}, ALL, None),
    ({"query": '{env="prod"}', "targetLabels": "pod"}, lambda ls: ls["env"] == "prod" and "pod" in ls, {"pod"}),
    ({"query": '{env=~".+"}', "targetLabels": "service_name,env"}, ALL, {"service_name", "env"}),
    ({"query": '{service_name="nothing"}'}, lambda ls: False, set()),
])
def test_volume_by_series(client: httpx.Client, params: dict[str, str], pred: Callable[[dict[str, str]], bool],
                          names: set[str] | None) -> None:
    want = expected_series(selected(pred), names, int(params.get("limit", 100)))
    assert vector(volume(client, **params)) == want


def test_volume_by_labels(client: httpx.Client) -> None:
    web = selected(lambda ls: ls["service_name"] == "web")
    total = sum(e.size for e in web)
    got = vector(volume(client, query='{service_name="web"}', aggregateBy="labels"))
    # every label name of the streams, each with the bytes of the streams that have it; ties by name
    pod = sum(e.size for e in web if "pod" in e.labels)
    assert got == [({"env": ""}, total), ({"pod": ""}, pod), ({"service_name": ""}, total)]
    # with target labels, only those names
    got = vector(volume(client, query='{env="prod"}', aggregateBy="labels", targetLabels="pod"))
    assert got == [({"pod": ""}, sum(e.size for e in web if e.labels.get("pod") == "a"))]


def test_volume_of_a_partial_range_takes_the_chunk_share(client: httpx.Client) -> None:
    start, end = BASE_NS + 10 * MIN, BASE_NS + 33 * MIN
    doc = client.get("/loki/api/v1/index/volume", params={"query": '{service_name=~"web|cache"}', "start": start,
                                                          "end": end}).json()
    got = {s["metric"]["service_name"]: int(s["value"][1]) for s in doc["data"]["result"]}
    web = expected_stats(selected(lambda ls: ls["service_name"] == "web"), start, end)
    cache = expected_stats(selected(lambda ls: ls["service_name"] == "cache"), start, end)
    assert got == {"web": web["bytes"], "cache": cache["bytes"]}
    assert [s["metric"]["service_name"] for s in doc["data"]["result"]] == ["web", "cache"]


# --- index/volume_range -----------------------------------------------------------------------

def expected_range(entries: list[Entry], names: set[str], start: int, end: int, step: int,
                   limit: int = 100) -> list[tuple[dict[str, str], list[tuple[float, int]]]]:
    """Loki's buckets: aligned to the step, stamped 1 ms before their end (the last at the end);
    a bucket holds (its start, its end], the first also its start; top `limit` per bucket."""
    aligned = (start // MS) // (step // MS) * step
    end_ms = -(-end // MS)
    count = -(-(end_ms * MS - aligned) // step)
    stamps = [(aligned + (k + 1) * step) // MS - 1 for k in range(count - 1)] + [end_ms]
    buckets: dict[int, dict[tuple[tuple[str, str], ...], int]] = defaultdict(lambda: defaultdict(int))
    for e in in_range(entries, start, end):
        k = min(max(-(-(e.ts - aligned) // step) - 1, 0), count - 1)
        buckets[k][name_of(e.labels, names)] += e.size
    series: dict[tuple[tuple[str, str], ...], list[tuple[float, int]]] = defaultdict(list)
    for k in sorted(buckets):
        for key, size in sorted(buckets[k].items(), key=lambda kv: (-kv[1], prom_name(kv[0])))[:limit]:
            series[key].append((stamps[k] / 1000, size))
    ranked = sorted(series.items(), key=lambda kv: (-kv[1][0][1], prom_name(kv[0])))
    return [(dict(k), v) for k, v in ranked]


def matrix(doc: dict[str, Any]) -> list[tuple[dict[str, str], list[tuple[float, int]]]]:
    assert doc["status"] == "success" and doc["data"]["resultType"] == "matrix"
    return [(s["metric"], [(t, int(v)) for t, v in s["values"]]) for s in doc["data"]["result"]]


@pytest.mark.parametrize("step", [300 * S, 60 * S, 90 * S, 7 * MIN])
@pytest.mark.parametrize(("start", "end"), [
    (BASE_NS + 3 * MIN + 30 * S + 17 * MS, BASE_NS + 38 * MIN + 15 * S),  # partial minutes at both edges
    (BASE_NS, BASE_NS + 3600 * S),                                        # whole minutes
])
def test_volume_range_buckets(client: httpx.Client, step: int, start: int, end: int) -> None:
    r = client.get("/loki/api/v1/index/volume_range", params={
        "query": '{service_name=~".+"}', "start": start, "end": end, "step": f"{step / S:g}"})
    assert r.status_code == 200, r.text
    assert matrix(r.json()) == expected_range(ENTRIES, {"service_name"}, start, end, step)


def test_volume_range_limit_applies_per_bucket(client: httpx.Client) -> None:
    start, end, step = BASE_NS, BASE_NS + 45 * MIN, 600 * S
    r = client.post("/loki/api/v1/index/volume_range", data={
        "query": "{}", "start": str(start), "end": str(end), "step": "10m", "limit": "1"})
    want = expected_range(ENTRIES, {"service_name", "env", "pod"}, start, end, step, limit=1)
    assert matrix(r.json()) == want
    assert len(want) == 2  # cache leads (30m, 40m], web/a the others


def test_volume_range_of_one_bucket_is_a_vector(client: httpx.Client) -> None:
    start, end = BASE_NS + 30 * MIN, BASE_NS + 35 * MIN
    doc = client.get("/loki/api/v1/index/volume_range", params={
        "query": '{service_name="cache"}', "start": start, "end": end, "step": "1h"}).json()
    cache = in_range(selected(lambda ls: ls["service_name"] == "cache"), start, end)
    assert doc["data"]["resultType"] == "vector"
    assert doc["data"]["result"] == [{"metric": {"service_name": "cache"},
                                      "value": [end // MS / 1000, str(sum(e.size for e in cache))]}]


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "params", "text"), [
    ("stats", {}, "parse error : syntax error: unexpected $end"),
    ("stats", {"query": "{}"}, "queries require at least one regexp or equality matcher"),
    ("stats", {"query": '{env="prod"} |= "x"'}, "only label matchers are supported"),
    ("stats", {"query": '{env="prod"', "start": "1"}, "parse error at line 1, col 12"),
    ("stats", {"query": '{env="prod"}', "start": "yesterday"}, 'cannot parse "yesterday"'),
    ("stats", {"query": '{env="prod"}', "start": "20", "end": "10"}, "end timestamp must not be before"),
    ("volume", {}, "parse error : syntax error: unexpected $end"),
    ("volume", {"query": '{env=~".*"}'}, "queries require at least one regexp or equality matcher"),
    ("volume", {"query": '{env="prod"}', "aggregateBy": "pods"}, "invalid aggregation option"),
    ("volume", {"query": '{env="prod"}', "limit": "-1"}, "limit must be a positive value"),
    ("volume", {"query": '{env="prod"}', "limit": "many"}, 'strconv.Atoi: parsing "many": invalid syntax'),
    ("volume_range", {"query": '{env="prod"}', "step": "0"}, "zero or negative query resolution step"),
    ("volume_range", {"query": '{env="prod"}', "step": "soon"}, 'invalid parameter "step"'),
    ("volume_range", {"query": "rate({env=\"prod\"}[1m])"}, "only label matchers are supported"),
])
def test_bad_input_is_400(client: httpx.Client, path: str, params: dict[str, str], text: str) -> None:
    r = client.get(f"/loki/api/v1/index/{path}", params=params)
    assert r.status_code == 400, r.text
    assert text in r.text


def test_volume_limit_zero_means_the_default(client: httpx.Client) -> None:
    assert vector(volume(client, query="{}", limit="0")) == expected_series(ENTRIES, None, 100)
