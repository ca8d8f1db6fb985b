"""Split queries over real HTTP: a frontend server splits by 1h and sends the parts to a reader
server; its answers must equal those of an unsplit server holding the same data.

- `reference`: an ordinary server with the test data (tenant `mine`).
- `reader`: the same data, plus Loki's conformance data set (tenant `conf`); it is itself a frontend
  whose downstream is down, so a part it were to split again would fail (502) instead of answering.
- `frontend`: `frontend.downstream_url` at the reader, split by 1h; it holds the same data too, as
  a frontend shares the readers' store: a query it does not split it answers in-process.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from lokiarrow.frontend.merge import label_text
from tests.conformance.harness import load_jsonl, push_dataset, run_case
from tests.conftest import PERMISSIVE, Server, free_port
from tests.server.pushing import BASE_NS, push

S = 10**9
MINUTE = 60 * S
H = 3600 * S
START, END = BASE_NS - 10 * MINUTE, BASE_NS + 4 * H + 10 * MINUTE   # 21:50 to 02:10, across midnight
AUTH = "auth_enabled: true\n"
SPLIT = "  split_queries_by_interval: 1h\n"   # appended to PERMISSIVE's limits_config
READER_OVERRIDES = """overrides:
  wide:
    split_queries_by_interval: 2h
"""
OVERRIDES = READER_OVERRIDES + """  fewseries:
    max_query_series: 2
"""   # the frontend's and the reference's: the reader answers each part of `fewseries`


@dataclass
class Cluster:
    reference: httpx.Client
    reader: httpx.Client
    frontend: httpx.Client
    frontend_conf: httpx.Client
    down_url: str


def push_data(client: httpx.Client) -> None:
    """Four streams sharing timestamps three at a time, lines at the hour cuts in every stream,
    exact duplicates, structured metadata on some lines; and a sparse fifth stream."""
    streams: dict[str, list[list[Any]]] = {f"p{p}": [] for p in range(4)}
    for i in range(900):
        entry: list[Any] = [BASE_NS + (i // 3) * 47 * S, f"level={('info', 'warn', 'error')[i % 3]} n={i % 7} msg=m{i}"]
        if i % 5 == 0:
            entry.append({"trace": f"t{i % 3}"})
        streams[f"p{i % 4}"].append(entry)
    for cut in (H, 2 * H - 1, 2 * H, 3 * H):
        for p in range(4):
            streams[f"p{p}"].append([BASE_NS + cut, f"level=info n=1 msg=cut{p}"])
    streams["p0"] += [[BASE_NS + 30 * MINUTE, line] for line in ("level=debug n=2 a", "level=debug n=2 b",
                                                                 "level=debug n=2 a")]
    for pod, values in streams.items():
        push(client, {"app": "fe", "pod": pod}, values)
    push(client, {"app": "be"}, [[BASE_NS + i * 13 * MINUTE, f"level=info n={i} msg=be{i}"] for i in range(20)])


def start(folder: Path, config: str) -> Server:
    folder.mkdir(parents=True)
    return Server(folder, config, []).start()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("frontend")
    down_url = f"http://127.0.0.1:{free_port()}"   # nothing listens there
    runtime = {}
    for name, text in (("all", OVERRIDES), ("reader", READER_OVERRIDES)):
        (root / f"{name}.yaml").write_text(text)
        runtime[name] = f"runtime_config:\n  file: {root / name}.yaml\n"
    servers = []
    try:
        servers.append(reference := start(root / "reference", AUTH + PERMISSIVE + runtime["all"]))
        servers.append(reader := start(root / "reader", AUTH + PERMISSIVE + SPLIT + runtime["reader"] +
                                       f"frontend:\n  downstream_url: {down_url}\n"))
        servers.append(frontend := start(root / "frontend", AUTH + PERMISSIVE + SPLIT + runtime["all"] +
                                         f"frontend:\n  downstream_url: {reader.url}/\n"))
        clients = [httpx.Client(base_url=s.url, timeout=120, headers={"X-Scope-OrgID": "mine"})
                   for s in (reference, reader, frontend)]
        conf = httpx.Client(base_url=frontend.url, timeout=120, headers={"X-Scope-OrgID": "conf"})
        for client in clients:
            push_data(client)
        for server in (reference, reader):
            with httpx.Client(base_url=server.url, timeout=120, headers={"X-Scope-OrgID": "fewseries"}) as loading:
                push_data(loading)
        for server in (reader, frontend):   # a query that is not split is answered by the frontend itself
            with httpx.Client(base_url=server.url, timeout=120, headers={"X-Scope-OrgID": "conf"}) as loading:
                assert push_dataset(loading) == 13420
        yield Cluster(clients[0], clients[1], clients[2], conf, down_url)
        for client in [*clients, conf]:
            client.close()
    finally:
        for server in servers:
            server.kill()


def get(client: httpx.Client, query: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    return client.get("/loki/api/v1/query_range", params={"query": query, "start": START, "end": END, **params},
                      headers=headers)


def data(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()["data"]
    return answer


def parts_of(r: httpx.Response) -> int:
    return int(data(r)["stats"]["summary"]["splits"])


LOG_CASES = [(q, limit, direction)
             for q in ('{app="fe"}', '{app=~"fe|be"} |= "level=info"', '{app="fe"} | logfmt | level!="warn"',
                       '{app=~"fe|be"} | logfmt | drop msg, trace')
             for limit in (1, 5, 100, 350, 1000, 5000) for direction in ("backward", "forward")]


@pytest.mark.parametrize(("query", "limit", "direction"), LOG_CASES)
def test_a_split_log_query_answers_as_the_unsplit_one(cluster: Cluster, query: str, limit: int,
                                                      direction: str) -> None:
    split = get(cluster.frontend, query, limit=limit, direction=direction)
    whole = get(cluster.reference, query, limit=limit, direction=direction)
    assert {k: v for k, v in data(split).items() if k != "stats"} == \
        {k: v for k, v in data(whole).items() if k != "stats"}
    assert split.content.split(b',"stats"')[0] == whole.content.split(b',"stats"')[0]   # stream and key order too
    assert parts_of(split) >= 1


@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_a_limit_cut_inside_equal_timestamps_across_streams(cluster: Cluster, direction: str) -> None:
    # the first hour read holds n lines; the next one opens with three lines at one timestamp
    first = (BASE_NS + 3 * H, END) if direction == "backward" else (START, BASE_NS + H)
    n = sum(len(s["values"]) for s in data(cluster.reference.get("/loki/api/v1/query_range", params={
        "query": '{app="fe"}', "start": first[0], "end": first[1], "limit": 5000, "direction": direction}))["result"])
    for extra in (1, 2, 3, 4):
        split = get(cluster.frontend, '{app="fe"}', limit=n + extra, direction=direction)
        whole = get(cluster.reference, '{app="fe"}', limit=n + extra, direction=direction)
        assert data(split)["result"] == data(whole)["result"]


def test_encoding_flags_reach_the_parts(cluster: Cluster) -> None:
    flags = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
    for query in ('{app="fe"} | logfmt', '{app="fe"}', '{app="none"}'):
        split = data(get(cluster.frontend, query, headers=flags, limit=700))
        whole = data(get(cluster.reference, query, headers=flags, limit=700))
        assert split["encodingFlags"] == ["categorize-labels"]
        assert {k: v for k, v in split.items() if k != "stats"} == {k: v for k, v in whole.items() if k != "stats"}


def test_a_parquet_answer_is_the_unsplit_file(cluster: Cluster) -> None:
    accept = {"Accept": "application/vnd.apache.parquet"}
    for query in ('{app="fe"}', 'sum by (pod) (count_over_time({app="fe"}[10m]))'):
        split = get(cluster.frontend, query, headers=accept, limit=500, step=300)
        whole = get(cluster.reference, query, headers=accept, limit=500, step=300)
        assert split.status_code == whole.status_code == 200
        table = pq.read_table(io.BytesIO(split.content))
        assert table.num_rows > 0
        if query.startswith("{"):
            assert split.content == whole.content
        else:   # series in label order, the engine's in none
            expected = pq.read_table(io.BytesIO(whole.content))
            assert table.num_rows == expected.num_rows
            assert table.column("timestamp").to_pylist() != [] and math.isclose(
                sum(table.column("value").to_pylist()), sum(expected.column("value").to_pylist()), rel_tol=1e-12)


METRIC_CASES = [
    ('count_over_time({app="fe"}[5m])', {"step": 60}),
    ('rate({app="fe"}[1m])', {"step": "5m"}),
    ('sum by (pod) (rate({app=~"fe|be"}[10m]))', {"step": 120}),
    ('topk(2, sum by (pod) (count_over_time({app="fe"}[15m])))', {"step": 300}),
    ('sum(count_over_time({app="fe"} |= "info" [5m]))', {"step": 420, "start": START + 13 * S}),   # 7m
    ('count_over_time({app="fe"}[30m])', {"step": 60}),                                            # range > step
    ('count_over_time({app="fe"}[10m] offset 30m)', {"step": 300}),
    ('sum by (level) (sum_over_time({app="fe"} | logfmt | unwrap n [20m]))', {"step": 600}),
    ('bytes_over_time({app="be"}[1h]) * 2', {"step": 3700}),                                        # step > 1h
    ('sum(rate({app="fe"}[2h]))', {"step": 900}),                                                  # parts of 2h
    ('count_over_time({app="fe"}[5m])', {}),                                                       # default step
]


@pytest.mark.parametrize(("query", "params"), METRIC_CASES, ids=[f"{q} {p}" for q, p in METRIC_CASES])
def test_a_split_metric_query_answers_as_the_unsplit_one(cluster: Cluster, query: str, params: dict[str, Any]) -> None:
    split = data(get(cluster.frontend, query, **params))
    whole = data(get(cluster.reference, query, **params))
    assert split["resultType"] == whole["resultType"] == "matrix"
    assert split["result"], "the case should have points"
    keys = [label_text(s["metric"]) for s in split["result"]]
    assert keys == sorted(keys)   # Loki's frontend order; the engine's own order is not fixed
    assert same_matrix(split["result"], sorted(whole["result"], key=lambda s: label_text(s["metric"])))
    assert split["stats"]["summary"]["splits"] > 1


def same_matrix(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """Equal series, steps and values; a value may differ in its last bits, where the engine adds
    up series in the order it met them (which depends on the range it read)."""
    def close(a: str, b: str) -> bool:
        return a == b or math.isclose(float(a), float(b), rel_tol=1e-12)

    return [s["metric"] for s in got] == [s["metric"] for s in expected] and all(
        [t for t, _ in g["values"]] == [t for t, _ in e["values"]] and
        all(close(a, b) for (_, a), (_, b) in zip(g["values"], e["values"], strict=True))
        for g, e in zip(got, expected, strict=True))


CONFORMANCE = [c for c in load_jsonl("cases.jsonl.gz") if c["endpoint"] == "query_range"]


@pytest.mark.parametrize("case", CONFORMANCE, ids=[c["id"] for c in CONFORMANCE])
def test_loki_conformance_through_the_frontend(cluster: Cluster, case: dict[str, Any]) -> None:
    assert run_case(cluster.frontend_conf, case) is None


def test_a_part_is_never_split_again(cluster: Cluster) -> None:
    # the reader splits a whole query, and its downstream is down ...
    r = get(cluster.reader, '{app="fe"}')
    assert r.status_code == 502
    assert r.text.startswith(f"cannot query the downstream querier {cluster.down_url}: ConnectError: ")
    # ... but it answers each part the frontend sends it in-process (the tests above pass through it)
    assert data(get(cluster.reader, '{app="fe"}', start=BASE_NS + H, end=BASE_NS + 2 * H))["result"]
    assert parts_of(get(cluster.frontend, '{app="fe"}', limit=5000)) == 6   # 21:50-22:00, four whole hours, 02:00-02:10


def test_a_part_answering_an_error_is_the_answer(cluster: Cluster) -> None:
    # the reader refuses each part (a limit above max_entries_limit_per_query): 400 with Loki's text
    split = get(cluster.frontend, '{app="fe"}', limit=200_000)
    whole = get(cluster.reference, '{app="fe"}', limit=200_000)
    assert split.status_code == whole.status_code == 400
    assert split.text == whole.text == \
        "max entries limit per query exceeded, limit > max_entries_limit (200000 > 100000)\n"


@pytest.mark.parametrize(("query", "params"), [
    ('sum(rate({app="fe"}[5m])', {}),
    ('{app="fe"}', {"step": "0"}),
    ('{app="fe"}', {"direction": "sideways"}),
    ('{}', {}),
])
def test_an_invalid_request_answers_as_before(cluster: Cluster, query: str, params: dict[str, Any]) -> None:
    split = get(cluster.frontend, query, **params)
    whole = get(cluster.reference, query, **params)
    assert split.status_code == whole.status_code == 400
    assert split.text == whole.text


def test_the_tenant_travels_with_the_parts(cluster: Cluster) -> None:
    other = get(cluster.frontend, '{app="fe"}', headers={"X-Scope-OrgID": "nobody"})
    assert data(other)["result"] == []
    assert get(cluster.frontend, '{app="fe"}', headers={"X-Scope-OrgID": ""}).status_code == 401


def test_the_interval_is_the_tenants(cluster: Cluster) -> None:
    wide = {"X-Scope-OrgID": "wide"}
    assert parts_of(get(cluster.frontend, '{app="fe"}', headers=wide)) == 4   # 20:00, 22:00, 00:00, 02:00 parts
    assert parts_of(get(cluster.frontend, 'count_over_time({app="fe"}[1m])', headers=wide, step=60)) == 4


def test_the_series_limit_holds_for_the_whole_query(cluster: Cluster) -> None:
    # each part is under the reader's limit; the frontend's limit for the tenant is 2
    few = {"X-Scope-OrgID": "fewseries"}
    split = get(cluster.frontend, 'count_over_time({app="fe"}[5m])', headers=few, step=300)
    whole = get(cluster.reference, 'count_over_time({app="fe"}[5m])', headers=few, step=300)
    assert split.status_code == whole.status_code == 400
    assert split.text == whole.text == ("maximum number of series (2) reached for a single query; "
                                        "consider reducing query cardinality by adding more filters\n")
