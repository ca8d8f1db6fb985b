"""A store on object storage: a real S3 API (s3rver), reached the way users configure it.

The server keeps its WAL on local disk and its chunk, rollup and index files in the bucket;
queries read local copies from the disk cache, so a repeated query downloads nothing; answers
equal a local store's on the same data; compaction and restarts work there as on a disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import lokiarrow
from lokiarrow.config import Storage
from lokiarrow.errors import BadRequest
from lokiarrow.store.objects import polars_options
from tests.conftest import PERMISSIVE, ROOT, Server, free_port
from tests.objects.conftest import KEY, REGION, S3, SECRET, cache_downloads, start_s3_server
from tests.server.pushing import BASE_NS, push, query

HOUR = 3600 * 10**9
QUERIES = ['{app=~".+"}', '{app="web"} |= "error"', '{app=~".+"} | json | level="error"',
           'sum by (app) (count_over_time({app=~".+"}[10m]))', 'sum(bytes_over_time({app="db"}[1h]))',
           'sum by (level) (count_over_time({app=~".+"} | json [1h]))', 'rate({app="web"} |= "info" [5m])']


def _fill(server: Server, flushes: int = 4) -> None:
    with server.client() as http:
        for f in range(flushes):
            for app in ("web", "db"):
                push(http, {"app": app}, [[BASE_NS + (f * 40 + i) * 30 * 10**9,
                                            json.dumps({"level": ("info", "error")[i % 2], "n": i, "f": f})]
                                           for i in range(40)])
            assert http.post("/flush").status_code == 204


def _answers(server: Server) -> list[Any]:
    out = []
    with server.client() as http:
        for q in QUERIES:
            answer = query(http, q, start=BASE_NS - HOUR, end=BASE_NS + 6 * HOUR, limit=5000, step="60s")
            # series sorted by label set, as the conformance comparison does (Loki fixes no order)
            out.append(sorted(answer["data"]["result"], key=lambda s: json.dumps(s.get("metric", s.get("stream")),
                                                                               sort_keys=True)))
    return out


def _s3_server(start_server: Callable[..., Server], s3: S3, root: str, tmp_path: Path, extra: str = "") -> Server:
    config = PERMISSIVE + s3.config(root, f"  cache_location: {tmp_path / 'cache'}\n"
                                          f"ingester: {{wal: {{dir: {tmp_path / 'wal'}}}}}\n{extra}")
    return start_server(config, args=[f"-common.path-prefix={root}"])


def test_files_go_to_the_bucket_and_answers_equal_a_local_store(start_server: Callable[..., Server], s3: S3,
                                                                 tmp_path: Path) -> None:
    root = s3.prefix()
    remote = _s3_server(start_server, s3, root, tmp_path)
    local = start_server()
    _fill(remote)
    _fill(local)
    keys = s3.keys(root)
    assert {"chunks", "index"} <= {k.split("/")[1] for k in keys} <= {"chunks", "index", "rollups"}
    assert all(k.startswith("fake/") and "/day=2026-01-" in k and k.endswith(".parquet") for k in keys)
    assert not list(remote.data_dir.rglob("*.parquet"))   # nothing but the WAL and cache on local disk
    assert (tmp_path / "wal" / "fake").is_dir()
    assert _answers(remote) == _answers(local)


def test_a_repeated_query_reads_the_disk_cache(start_server: Callable[..., Server], s3: S3, tmp_path: Path) -> None:
    root = s3.prefix()
    server = _s3_server(start_server, s3, root, tmp_path)
    _fill(server, flushes=2)
    server.kill()     # a fresh process: nothing read yet
    server.start()
    before = cache_downloads(server.url)   # the index files, read at start
    first = _answers(server)
    fetched = cache_downloads(server.url) - before
    assert fetched > 0
    assert _answers(server) == first
    assert cache_downloads(server.url) - before == fetched      # the second time: no download
    copies = {str(p.relative_to(p.parents[3])) for p in (tmp_path / "cache").rglob("*.parquet")}
    assert copies and copies <= set(s3.keys(root))


def test_a_killed_writer_replays_its_local_wal_into_the_bucket(start_server: Callable[..., Server], s3: S3,
                                                               tmp_path: Path) -> None:
    root = s3.prefix()
    server = _s3_server(start_server, s3, root, tmp_path)
    with server.client() as http:
        push(http, {"app": "web"}, [[BASE_NS + i, f"line {i}"] for i in range(50)])
    assert s3.keys(root) == []    # in the head and the WAL only
    server.kill()
    server.start()
    with server.client() as http:
        assert http.post("/flush").status_code == 204    # the tenant is known from its WAL alone
    assert any("/chunks/" in k for k in s3.keys(root))
    server.kill()
    server.start()
    with server.client() as http:
        assert len(query(http, '{app="web"}', limit=1000)["data"]["result"][0]["values"]) == 50


def test_credentials_and_endpoint_from_the_environment(s3: S3, tmp_path: Path) -> None:
    root = s3.prefix()
    config = tmp_path / "config.yaml"
    config.write_text(PERMISSIVE + f"common: {{path_prefix: {root}}}\n"
                      f"storage_config: {{cache_location: {tmp_path / 'cache'}}}\n")
    server = Server(tmp_path / "unused", config.read_text(), [f"-common.path-prefix={root}",
                                                               f"-ingester.wal-dir={tmp_path / 'wal'}"])
    (tmp_path / "unused").mkdir()
    env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ENDPOINT_URL": s3.endpoint,
           "AWS_REGION": REGION}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        server.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    try:
        with server.client() as http:
            push(http, {"app": "env"}, [[BASE_NS, "from the environment"]])
            assert http.post("/flush").status_code == 204
            assert query(http, '{app="env"}')["data"]["result"][0]["values"][0][1] == "from the environment"
        assert any(k.startswith("fake/chunks/") for k in s3.keys(root))
    finally:
        server.kill()


def test_an_object_storage_outage_keeps_pushed_data_until_it_returns(start_server: Callable[..., Server],
                                                                    tmp_path: Path) -> None:
    port = free_port()
    s3 = S3(f"http://127.0.0.1:{port}")
    proc = start_s3_server(port, tmp_path / "moto.log")
    try:
        s3.create_bucket()
        root = s3.prefix()
        server = _s3_server(start_server, s3, root, tmp_path)
        with server.client() as http:
            push(http, {"app": "web"}, [[BASE_NS, "kept"]])
            proc.terminate()
            proc.wait(10)
            answer = http.post("/flush")
            assert answer.status_code == 500 and "cannot flush" in answer.text
            push(http, {"app": "web"}, [[BASE_NS + 1, "pushed during the outage"]])
            assert len(query(http, '{app="web"}')["data"]["result"][0]["values"]) == 2
            proc = start_s3_server(port, tmp_path / "moto.log")   # back, empty (moto keeps no objects)
            s3.create_bucket()
            assert http.post("/flush").status_code == 204
        assert any("/chunks/" in k for k in s3.keys(root))
        server.kill()
        shutil.rmtree(tmp_path / "wal")        # the bucket alone holds both lines now
        server.start()
        with server.client() as http:
            assert len(query(http, '{app="web"}')["data"]["result"][0]["values"]) == 2
    finally:
        proc.terminate()
        proc.wait(10)


def test_compaction_on_object_storage(start_server: Callable[..., Server], s3: S3, tmp_path: Path) -> None:
    root = s3.prefix()
    server = _s3_server(start_server, s3, root, tmp_path)
    _fill(server)
    before = _answers(server)
    chunks_before = [k for k in s3.keys(root) if "/chunks/" in k]
    server.stop()
    config = tmp_path / "compact.yaml"
    config.write_text(PERMISSIVE + s3.config(root, f"  cache_location: {tmp_path / 'cache'}\n"
                                                   "compactor: {retention_delete_delay: 0s}\n"))
    for _ in range(2):      # the second run deletes what the first replaced
        done = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "compact", f"-config.file={config}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("fake: ")
    chunks_after = [k for k in s3.keys(root) if "/chunks/" in k]
    assert len(chunks_after) < len(chunks_before)
    hour22 = {k for k in chunks_before if k.endswith("-h22.parquet")}
    assert len(hour22) > 1 and not hour22 & set(chunks_after)   # merged, then deleted from the bucket
    server.start()
    assert _answers(server) == before


@pytest.mark.parametrize("url", ["s3://", "nosuchprotocol://x/y", "s3://no-such-bucket/x"])
def test_a_root_that_cannot_be_opened_stops_the_start_with_a_message(url: str, s3: S3, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(s3.config(url))
    done = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "serve", f"-config.file={config}",
                           "-server.http-listen-port=0", "-server.grpc-listen-port=0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "cannot open the store" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_python_api_sql_and_polars_read_the_bucket(start_server: Callable[..., Server], s3: S3,
                                                       tmp_path: Path) -> None:
    root = s3.prefix()
    server = _s3_server(start_server, s3, root, tmp_path)
    _fill(server, flushes=2)
    settings = {"endpoint": s3.endpoint, "region": REGION, "access_key_id": KEY, "secret_access_key": SECRET,
                "cache_location": str(tmp_path / "api-cache")}
    store = lokiarrow.open(root, **settings)
    start, end = BASE_NS - HOUR, BASE_NS + 6 * HOUR
    found = store.query('{app="web"} |= "error"', start=start, end=end, limit=1000)
    with server.client() as http:
        served = query(http, '{app="web"} |= "error"', start=start, end=end, limit=1000)
    assert found["line"].to_list() == [v[1] for v in served["data"]["result"][0]["values"]]
    assert store.labels(start=start, end=end) == ["app", "service_name"]
    # the SQL views read the bucket through DuckDB
    assert store.sql("SELECT labels, count(*) AS n FROM logs GROUP BY ALL ORDER BY labels").rows() == [
        ('{app="db", service_name="db"}', 80), ('{app="web", service_name="web"}', 80)]
    # Polars reads the same files straight from the bucket (the recipe in README.md)
    chunks = pl.scan_parquet(f"{root}/fake/chunks/day=*/*.parquet", hive_partitioning=True,
                             storage_options=polars_options(Storage(**settings)))
    assert chunks.select(pl.len()).collect().item() == 160
    with pytest.raises(BadRequest, match="unknown storage settings"):
        lokiarrow.open(root, endpoints="x")


def test_the_sql_console_reads_a_bucket_url(start_server: Callable[..., Server], s3: S3, tmp_path: Path) -> None:
    root = s3.prefix()
    _fill(_s3_server(start_server, s3, root, tmp_path), flushes=1)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ENDPOINT_URL": s3.endpoint,
           "AWS_REGION": REGION}
    done = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "sql", root, "--format", "csv", "-c",
                           "SELECT day, count(*) AS n FROM logs GROUP BY ALL"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["day,n", "2026-01-19,80"]
    missing = subprocess.run([sys.executable, "-m", "lokiarrow.cli", "sql", "s3://no-such-bucket/x", "-c", "SELECT 1"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "the bucket does not exist" in missing.stderr


def test_a_damaged_cached_copy_is_fetched_again_and_a_damaged_object_quarantined(
        start_server: Callable[..., Server], s3: S3, tmp_path: Path) -> None:
    root = s3.prefix()
    server = _s3_server(start_server, s3, root, tmp_path)
    _fill(server, flushes=2)
    whole = _answers(server)                              # every chunk file now has a cached copy
    chunks = sorted(k for k in s3.keys(root) if "/chunks/" in k)
    cached = {str(p.relative_to(p.parents[3])): p for p in (tmp_path / "cache").rglob("*.parquet")}
    damaged = cached[chunks[0]]
    damaged.write_bytes(damaged.read_bytes()[:100])        # the local copy, not the object
    assert _answers(server) == whole
    assert not [k for k in s3.keys(root) if "/quarantine/" in k]
    # now the object itself (and its copy gone from the cache, as after an eviction)
    with s3.client().open_output_stream(f"{root.removeprefix('s3://')}/{chunks[0]}") as out:
        out.write(b"PAR1" + b"\0" * 100)
    cached[chunks[0]].unlink()
    with server.client() as http:
        left = query(http, '{app=~".+"}', start=BASE_NS - HOUR, end=BASE_NS + 6 * HOUR, limit=5000)
        lines = sum(len(s["values"]) for s in left["data"]["result"])
        assert 0 < lines < 160                           # the damaged file's entries are gone, the rest answer
        assert "lokiarrow_quarantined_files_total{kind=\"chunk\"} 1.0" in http.get("/metrics").text
    keys = s3.keys(root)
    assert chunks[0] not in keys and f"fake/quarantine/{chunks[0].removeprefix('fake/')}" in keys
