"""The simple scalable deployment behind the real NGINX gateway: two writers, two readers and a
backend over one bucket. Pushes spread over the writers; every conformance case asked through the
gateway answers as Loki did, while the readers split long queries by the hour and send the parts
back through the gateway to the reader pool; a writer killed with SIGKILL loses nothing it
acknowledged, and pushes and queries go on meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lokiarrow.wire.heads import decode
from tests.conformance.harness import push_dataset, run_case
from tests.conformance.test_conformance import PROMISED
from tests.conftest import PERMISSIVE, Server
from tests.gateway.gateway import Gateway
from tests.objects.conftest import S3
from tests.server.pushing import BASE_NS, push, query

USERS = {"alice": "alice-pw"}
TENANT = "team-a"


@dataclass
class Deployment:
    writers: list[Server]
    readers: list[Server]
    backend: Server
    gateway: Gateway

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.gateway.url, auth=("alice", USERS["alice"]), timeout=120)


def _server(s3: S3, root: str, folder: Path, target: str, extra: str = "") -> Server:
    folder.mkdir(parents=True)
    config = PERMISSIVE + s3.config(root, f"  cache_location: {folder / 'cache'}\ntarget: {target}\n"
                                          f"auth_enabled: true\ningester: {{wal: {{dir: {folder / 'wal'}}}}}\n{extra}")
    return Server(folder, config, [f"-common.path-prefix={root}"])


@pytest.fixture(scope="module")
def deployment(s3: S3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = s3.prefix()
    base = tmp_path_factory.mktemp("scalable-gateway")
    writers = [_server(s3, root, base / f"write{i}", "write") for i in range(2)]
    readers = [_server(s3, root, base / f"read{i}", "read") for i in range(2)]
    backend = _server(s3, root, base / "backend", "backend", "compactor: {retention_enabled: true}\n")
    gateway = Gateway(base / "gateway", backend.url, USERS, {"alice": TENANT},
                      writers=[w.url for w in writers], readers=[r.url for r in readers], backend=[backend.url])
    addresses = ", ".join(w.url for w in writers)
    for reader in readers:   # the parts of a split query go back through the gateway, to any reader
        text = reader.config_path.read_text().replace("limits_config:\n", "limits_config:\n  split_queries_by_interval: 1h\n", 1)
        reader.config_path.write_text(text + f"querier: {{writers: [{addresses}]}}\n"
                                             f"frontend: {{downstream_url: {gateway.url}}}\n")
    started: list[Server] = []
    try:
        for server in (*writers, *readers, backend):
            started.append(server.start())
        gateway.start()
        yield Deployment(writers, readers, backend, gateway)
    finally:
        gateway.stop()
        for server in started:
            server.kill()


def _lines_on(server: Server) -> int:
    """How many entries a writer holds (it answers readers only: ask as one does)."""
    answer = httpx.post(f"{server.url}/lokiarrow/v1/unflushed", headers={"X-Scope-OrgID": TENANT},
                        content=b'{"start": 0, "end": 9223372036854775807, "selectors": null}')
    return decode(answer.content)[0].num_rows


def test_every_conformance_case_through_the_gateway(deployment: Deployment) -> None:
    with deployment.client() as client:
        assert push_dataset(client) == 13420
        held = [_lines_on(w) for w in deployment.writers]
        assert sum(held) >= 13420 - 200 and min(held) > 0     # spread over both (exact duplicates dropped)
        failures = {case["id"]: run_case(client, case) for case in PROMISED}
    assert {k: v for k, v in failures.items() if v is not None} == {}
    # the readers split the long queries: both answered parts
    for reader in deployment.readers:
        metrics = httpx.get(f"{reader.url}/metrics").text
        served = [line for line in metrics.splitlines()
                  if line.startswith('loki_request_duration_seconds_count{method="GET",route="/loki/api/v1/query_range"')]
        assert served, "a reader answered no query_range"


def _count(client: httpx.Client) -> dict[str, Any]:
    answer = client.get("/loki/api/v1/query", params={"query": 'sum(count_over_time({app="kill"}[1h]))',
                                                      "time": str(BASE_NS + 1800 * 10**9)})
    assert answer.status_code == 200, answer.text
    result = answer.json()["data"]["result"]
    return {"n": int(float(result[0]["value"][1])) if result else 0}


def test_a_writer_killed_loses_nothing_acknowledged(deployment: Deployment) -> None:
    first, second = deployment.writers
    acknowledged = 0
    with deployment.client() as client:
        for i in range(40):
            push(client, {"app": "kill", "batch": str(i % 4)}, [[BASE_NS + i * 1000 + j, f"line {i} {j}"] for j in range(25)])
            acknowledged += 25
            if i == 19:
                first.kill()     # SIGKILL: what it acknowledged is only in its WAL
                # queries keep working from the other replicas meanwhile
                assert query(client, '{app="kill"}', limit=10)["data"]["result"]
        assert _count(client)["n"] < acknowledged     # the killed writer's lines are in its WAL only
        first.start()   # the WAL replays
        assert _count(client) == {"n": acknowledged}
