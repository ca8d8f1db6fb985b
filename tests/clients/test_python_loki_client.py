"""python-loki-client 0.1.2 (imports as `grafana_loki_client`): a client generated from an OpenAPI
description of Loki's `query_range` and `query`.

What it reads (grafana_loki_client/models): `status`, and `data` with `resultType` ("streams" or
"vector": its enum has no "matrix"), `result` (each item must hold `values`, so it reads streams,
not vectors) and `stats`, parsed strictly: `stats.querier.store` must hold `totalChunksRef`,
`totalChunksDownloaded` and `chunksDownloadTime`, its optional `chunk` the head-chunk and
decompressed counters, and `stats.ingester` `totalReached`, `totalChunksMatched`, `totalBatches`
and `totalLinesSent`; a missing key is a KeyError. So it is a client of log queries over
`query_range`, against Loki as here. Labels land in each result's extra keys (`result["stream"]`).

The stats test checks the whole shape Loki gives, every field of the JSON encoding of Loki's
`stats.Result` (pkg/logqlmodel/stats, whose tags carry no omitempty: Loki always sends them all).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from grafana_loki_client import Client
from grafana_loki_client.api.query import get_loki_api_v1_query
from grafana_loki_client.api.query_range import get_loki_api_v1_query_range
from grafana_loki_client.models import (
    Direction,
    QueryResponseBody,
    QueryResponseDataResultType,
    QueryStatisticsStoreChunk,
)

from tests.conftest import Server
from tests.server.pushing import BASE_NS, push

S = 10**9
START, END = BASE_NS - S, BASE_NS + 3600 * S
WINDOW = {"start": START, "end": END}

# The stats object's shape in Loki's answers: field -> INT (a count, bytes or nanoseconds), SECONDS
# (a float of seconds), BOOL, or a nested object.
INT, SECONDS, BOOL = "int", "seconds", "bool"
CHUNK = {name: INT for name in (
    "headChunkBytes", "headChunkLines", "decompressedBytes", "decompressedLines", "compressedBytes",
    "totalDuplicates", "postFilterLines", "headChunkStructuredMetadataBytes", "decompressedStructuredMetadataBytes")}
DATAOBJ = {name: INT for name in (
    "prePredicateDecompressedRows", "prePredicateDecompressedBytes", "prePredicateDecompressedStructuredMetadataBytes",
    "postPredicateRows", "postPredicateDecompressedBytes", "postPredicateStructuredMetadataBytes", "postFilterRows",
    "pagesScanned", "pagesDownloaded", "pagesDownloadedBytes", "pageBatches", "totalRowsAvailable",
    "totalPageDownloadTime", "wireBytesTransferred")}
STORE = {"totalChunksRef": INT, "totalChunksDownloaded": INT, "chunksDownloadTime": INT,
         "queryReferencedStructuredMetadata": BOOL, "queryUsedV2Engine": BOOL, "chunk": CHUNK,
         "chunkRefsFetchTime": INT, "congestionControlLatency": INT, "pipelineWrapperFilteredLines": INT,
         "dataobj": DATAOBJ}
CACHE = {name: INT for name in (
    "entriesFound", "entriesRequested", "entriesStored", "bytesReceived", "bytesSent", "requests", "downloadTime",
    "queryLengthServed")}
LOKI_STATS: dict[str, Any] = {
    "summary": {"bytesProcessedPerSecond": INT, "linesProcessedPerSecond": INT, "totalBytesProcessed": INT,
                "totalLinesProcessed": INT, "execTime": SECONDS, "queueTime": SECONDS, "subqueries": INT,
                "totalEntriesReturned": INT, "splits": INT, "shards": INT, "totalPostFilterLines": INT,
                "totalStructuredMetadataBytesProcessed": INT},
    "querier": {"store": STORE, "querierExecTime": SECONDS},
    "ingester": {"totalReached": INT, "totalChunksMatched": INT, "totalBatches": INT, "totalLinesSent": INT,
                 "store": STORE},
    "cache": {name: CACHE for name in ("chunk", "index", "result", "statsResult", "volumeResult", "seriesResult",
                                       "labelResult", "instantMetricResult", "logResult", "taskResult")},
    "index": {"totalChunks": INT, "postFilterChunks": INT, "shardsDuration": INT, "usedBloomFilters": BOOL,
              "totalStreams": INT, "chunkRefsLookupTime": INT, "bloomFilterTime": INT},
}
def shape_differences(expected: dict[str, Any], got: Any, path: str = "") -> list[str]:
    """Where `got` differs from a stats shape: missing, unexpected or mistyped fields, by dotted path."""
    if not isinstance(got, dict):
        return [f"{path or 'stats'}: not an object"]
    found = [f"{path}{name}: not in Loki's stats" for name in got.keys() - expected.keys()]
    for name, kind in expected.items():
        where = f"{path}{name}"
        if name not in got:
            found.append(f"{where}: missing")
        elif isinstance(kind, dict):
            found += shape_differences(kind, got[name], f"{where}.")
        elif not {INT: lambda v: type(v) is int, SECONDS: lambda v: type(v) in (int, float),
                  BOOL: lambda v: type(v) is bool}[kind](got[name]):
            found.append(f"{where}: {got[name]!r} is not {kind}")
    return found


@pytest.fixture(scope="module")
def pushed(client: httpx.Client) -> None:
    push(client, {"app": "shop", "level": "info"}, [[BASE_NS + i * S, f"order {i} placed"] for i in range(5)])
    push(client, {"app": "shop", "level": "error"}, [[BASE_NS + 10 * S + i * S, f"order {i} failed"] for i in range(2)])
    push(client, {"app": "mail"}, [[BASE_NS + 20 * S, "mail sent"]])


@pytest.fixture
def loki(server: Server, pushed: None) -> Client:
    return Client(base_url=server.url, timeout=30)


def read(loki: Client, query: str, **params: Any) -> QueryResponseBody:
    response = get_loki_api_v1_query_range.sync_detailed(client=loki, query=query, **{**WINDOW, **params})
    assert response.status_code == 200 and response.parsed is not None, response.content
    return response.parsed


def streams(body: QueryResponseBody) -> dict[str, list[Any]]:
    """{level label: [[ts, line], …]} of a streams answer read by the client."""
    assert body.status == "success" and body.data.result_type == QueryResponseDataResultType.STREAMS
    return {item["stream"].get("level", "-"): item.values for item in body.data.result}


def test_query_range_reads_streams_newest_first_by_default(loki: Client) -> None:
    body = read(loki, '{app="shop"}')
    assert streams(body) == {
        "info": [[str(BASE_NS + i * S), f"order {i} placed"] for i in reversed(range(5))],
        "error": [[str(BASE_NS + 10 * S + i * S), f"order {i} failed"] for i in reversed(range(2))],
    }
    [info] = [r for r in body.data.result if r["stream"]["level"] == "info"]
    assert info["stream"] == {"app": "shop", "level": "info", "service_name": "shop", "detected_level": "info"}


def test_limit_and_forward_direction(loki: Client) -> None:
    body = read(loki, '{app="shop"} != "order 1 "', limit=3, direction=Direction.FORWARD)
    assert streams(body) == {"info": [[str(BASE_NS + i * S), f"order {i} placed"] for i in (0, 2, 3)]}


def test_datetime_bounds_are_sent_as_rfc3339(loki: Client) -> None:
    start = datetime.fromtimestamp((BASE_NS + 2 * S) / S, UTC)
    end = datetime.fromtimestamp((BASE_NS + 4 * S) / S, UTC)
    assert start.isoformat() == "2026-01-19T22:00:02+00:00"
    body = read(loki, '{app="shop", level="info"}', start=start, end=end)
    assert streams(body) == {"info": [[str(BASE_NS + 3 * S), "order 3 placed"], [str(BASE_NS + 2 * S), "order 2 placed"]]}


def test_stats_parse_into_the_clients_model(loki: Client) -> None:
    stats = read(loki, '{app="shop"} |= "failed"').data.stats
    assert stats.summary.total_entries_returned == 2
    assert isinstance(stats.summary.total_lines_processed, int) and stats.summary.total_lines_processed >= 2
    assert isinstance(stats.summary.exec_time, float) and stats.summary.exec_time > 0
    assert isinstance(stats.querier.store.total_chunks_ref, int)
    assert isinstance(stats.ingester.total_lines_sent, int)
    chunk = stats.querier.store.chunk
    assert isinstance(chunk, QueryStatisticsStoreChunk)
    assert chunk.head_chunk_lines + chunk.decompressed_lines == stats.summary.total_lines_processed


METRIC = 'sum by (level) (count_over_time({app="shop"}[1m]))'


@pytest.mark.parametrize(("endpoint", "params"), [
    ("query_range", {"query": '{app="shop"}', **WINDOW}),
    ("query_range", {"query": METRIC, **WINDOW}),
    ("query", {"query": METRIC, "time": BASE_NS + 30 * S}),
], ids=["streams", "matrix", "vector"])
def test_stats_have_every_field_loki_gives(server: Server, pushed: None, endpoint: str, params: dict[str, Any]) -> None:
    r = httpx.get(f"{server.url}/loki/api/v1/{endpoint}", params=params, timeout=30)
    assert r.status_code == 200, r.text
    stats = orjson.loads(r.content)["data"]["stats"]
    assert shape_differences(LOKI_STATS, stats) == []
    # the lines processed are counted, and their bytes with them
    summary = stats["summary"]
    assert summary["totalLinesProcessed"] > 0 and summary["totalBytesProcessed"] >= summary["totalLinesProcessed"]


def test_shape_check_finds_what_differs() -> None:
    assert shape_differences({"a": INT, "b": {"c": BOOL}, "d": SECONDS}, {"a": 1.5, "b": {"c": 0}, "e": 1}) == [
        "e: not in Loki's stats", "a: 1.5 is not int", "b.c: 0 is not bool", "d: missing"]


def test_instant_log_query_is_refused_as_loki_refuses_it(loki: Client) -> None:
    at = datetime.fromtimestamp(BASE_NS / S + 60, UTC)
    response = get_loki_api_v1_query.sync_detailed(client=loki, query='{app="shop"}', time=at)
    assert response.status_code == 400 and response.parsed is None
    assert b"log queries are not supported as an instant query type" in response.content


def test_tenant_header(start_server: Any) -> None:
    server = start_server(args=["-auth.enabled=true"])
    with httpx.Client(base_url=server.url, headers={"X-Scope-OrgID": "team-a"}, timeout=30) as pusher:
        push(pusher, {"app": "shop"}, [[BASE_NS, "team a only"]])
    loki = Client(base_url=server.url, timeout=30)
    mine = get_loki_api_v1_query_range.sync(client=loki, query='{app="shop"}', x_scope_org_id="team-a", start=START,
                                               end=END)
    other = get_loki_api_v1_query_range.sync(client=loki, query='{app="shop"}', x_scope_org_id="team-b", start=START,
                                                end=END)
    assert mine is not None and [r.values for r in mine.data.result] == [[[str(BASE_NS), "team a only"]]]
    assert other is not None and other.data.result == []
    anonymous = get_loki_api_v1_query_range.sync_detailed(client=loki, query='{app="shop"}', start=START, end=END)
    assert anonymous.status_code == 401 and anonymous.parsed is None and b"no org id" in anonymous.content
