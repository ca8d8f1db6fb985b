"""Loki's simple scalable deployment: `-target=write` (two), `read` (two) and `backend` over one
bucket, each a real `lokiarrow serve` process. The conformance data set is pushed alternately to
the two writers; every conformance case asked of a reader must answer as Loki did, while the
entries sit in the writers' heads, after they flushed (the reader knows the files only from what
the writers tell it, or from its own refreshed index), and after the backend compacted them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from tests.conformance.harness import load_jsonl, run_case
from tests.conformance.test_conformance import PROMISED
from tests.conftest import PERMISSIVE, ROOT, Server
from tests.objects.conftest import S3, cache_downloads
from tests.server.pushing import BASE_NS, push, query


@dataclass
class Cluster:
    writers: list[Server]
    stale: Server      # a reader that never re-reads the index: it learns of flushed files from the writers
    fresh: Server      # a reader that re-reads it every second
    backend: Server


def _start(s3: S3, root: str, folder: Path, target: str, extra: str = "") -> Server:
    folder.mkdir(parents=True)
    config = PERMISSIVE + s3.config(root, f"  cache_location: {folder / 'cache'}\n"
                                          f"target: {target}\ningester: {{wal: {{dir: {folder / 'wal'}}}, "
                                          f"chunk_retain_period: 1h}}\n{extra}")
    return Server(folder, config, [f"-common.path-prefix={root}"]).start()


@pytest.fixture(scope="module")
def cluster(s3: S3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = s3.prefix()
    base = tmp_path_factory.mktemp("scalable")
    started: list[Server] = []
    try:
        writers = [_start(s3, root, base / f"write{i}", "write") for i in range(2)]
        started += writers
        addresses = ", ".join(w.url for w in writers)
        stale = _start(s3, root, base / "stale", "read",
                       f"querier: {{writers: [{addresses}], index_refresh_interval: 1h}}\n")
        fresh = _start(s3, root, base / "fresh", "read",
                       f"querier: {{writers: [{addresses}], index_refresh_interval: 1s}}\n")
        backend = _start(s3, root, base / "backend", "backend",
                         "querier: {index_refresh_interval: 1s}\n"
                         "compactor: {compaction_interval: 0s, retention_enabled: true}\n")
        started += [stale, fresh, backend]
        yield Cluster(writers, stale, fresh, backend)
    finally:
        for server in started:
            server.kill()


def _push_alternately(writers: list[Server]) -> int:
    total = 0
    clients = [w.client() for w in writers]
    for i, one in enumerate(load_jsonl("data.jsonl.gz")):
        body = {"streams": [{"stream": one["labels"], "values": one["entries"]}]}
        r = clients[i % 2].post("/loki/api/v1/push", content=orjson.dumps(body),
                                headers={"Content-Type": "application/json"})
        assert r.status_code == 204, r.text
        total += len(one["entries"])
    for c in clients:
        c.close()
    return total


def _failures(reader: Server) -> dict[str, Any]:
    with reader.client() as client:
        found = {case["id"]: run_case(client, case) for case in PROMISED}
    return {k: v for k, v in found.items() if v is not None}


def test_a_reader_answers_as_loki_through_every_stage_of_the_data(cluster: Cluster) -> None:
    assert _push_alternately(cluster.writers) == 13420
    # each writer holds part of the data, and answers no queries
    for w in cluster.writers:
        with w.client() as c:
            assert c.get("/loki/api/v1/labels").status_code == 404
    # 1. in the writers' heads only
    assert _failures(cluster.stale) == {}
    # 2. flushed: the stale reader knows the files only from the writers' answers
    for w in cluster.writers:
        with w.client() as c:
            assert c.post("/flush").status_code == 204
    assert _failures(cluster.stale) == {}
    _refreshed(cluster.fresh, before=0)   # on its own: it has the new index files, the writers name them too
    assert _failures(cluster.fresh) == {}
    # 3. compacted by the backend: readers that re-read the index see the merged files, and the
    # writers' lately flushed (now replaced) files are not counted again
    with cluster.backend.client() as c:
        assert c.get("/loki/api/v1/labels").status_code == 404
    before = cache_downloads(cluster.fresh.url)
    _compact(cluster.backend)
    _refreshed(cluster.fresh, before)
    assert _failures(cluster.fresh) == {}
    assert _failures(cluster.stale) == {}
    # on demand: the stale reader reads the compacted index now, and still answers the same
    before = cache_downloads(cluster.stale.url)
    with cluster.stale.client() as c:
        assert c.post("/refresh").status_code == 204
    assert cache_downloads(cluster.stale.url) > before     # the index files the compaction wrote
    assert _failures(cluster.stale) == {}


def _refreshed(reader: Server, before: float) -> None:
    """Wait until a reader's own refresh has fetched index files beyond `before` downloads."""
    deadline = time.monotonic() + 30
    while cache_downloads(reader.url) <= before:
        assert time.monotonic() < deadline, "the reader did not re-read the index"
        time.sleep(0.1)


def _compact(backend: Server) -> None:
    """A compaction run with the backend's settings (its own timer is off): `lokiarrow compact`."""
    done = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "compact", f"-config.file={backend.config_path}",
                           f"-common.path-prefix={backend.extra_args[0].split('=', 1)[1]}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "merged" in done.stdout and not done.stdout.startswith("fake: 0 chunk files merged")


def test_pushes_and_queries_go_only_where_their_target_serves_them(cluster: Cluster) -> None:
    with cluster.stale.client() as reader:
        push(reader, {"app": "x"}, [[BASE_NS, "no"]], expect=404)
    with cluster.backend.client() as backend:
        answer = backend.post("/loki/api/v1/delete", params={"query": "{app=\"x\"}", "start": "1768860000", "end": "1768860060"})
        assert answer.status_code == 204, answer.text


def test_a_killed_writer_loses_nothing_and_queries_go_on(cluster: Cluster) -> None:
    first, second = cluster.writers
    with first.client() as c:
        push(c, {"app": "crash"}, [[BASE_NS + i, f"first {i}"] for i in range(20)])
    with second.client() as c:
        push(c, {"app": "crash"}, [[BASE_NS + 100 + i, f"second {i}"] for i in range(20)])
    first.kill()
    with cluster.stale.client() as reader:
        lines = query(reader, '{app="crash"}', limit=100)["data"]["result"][0]["values"]
        assert sorted(v[1] for v in lines) == sorted(f"second {i}" for i in range(20))   # the other writer's
    first.start()   # its WAL replays
    with cluster.stale.client() as reader:
        lines = [v[1] for s in query(reader, '{app="crash"}', limit=100)["data"]["result"] for v in s["values"]]
        assert sorted(lines) == sorted([f"first {i}" for i in range(20)] + [f"second {i}" for i in range(20)])


def test_the_writers_answer_readers_only_in_their_wire_format(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.writers[1].url) as c:
        for body in (b"{", b'{"start": 1}', b'{"start": 1, "end": 2, "selectors": [[["a", "<>", "b"]]]}',
                     b'{"start": 1, "end": 2, "selectors": [[["a", "=~", "("]]]}'):
            answer = c.post("/lokiarrow/v1/unflushed", content=body)
            assert answer.status_code == 400 and answer.text.startswith("invalid request"), answer.text


def test_a_tail_on_a_reader_follows_every_writer(cluster: Cluster) -> None:
    first, second = cluster.writers
    now = time.time_ns()
    with first.client() as c:
        push(c, {"app": "live"}, [[now - 3 * 10**9 + i, f"before {i}"] for i in range(3)])
        assert c.post("/flush").status_code == 204
    params = urlencode({"query": '{app="live"}', "start": str(now - 60 * 10**9), "limit": "10"})
    url = cluster.stale.url.replace("http://", "ws://") + f"/loki/api/v1/tail?{params}"
    seen: list[str] = []
    with connect(url, open_timeout=10) as ws:
        for writer, name in ((first, "one"), (second, "two")):
            with writer.client() as c:
                push(c, {"app": "live"}, [[time.time_ns(), f"live from {name}"]])
        deadline = time.monotonic() + 20
        while len(seen) < 5 and time.monotonic() < deadline:
            frame = orjson.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            seen += [v[1] for s in frame["streams"] for v in s["values"]]
    assert seen[:3] == ["before 0", "before 1", "before 2"]      # the history, oldest first
    assert sorted(seen[3:]) == ["live from one", "live from two"]
