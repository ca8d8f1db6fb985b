"""winston-loki (npm, pinned in node/package-lock.json) driven by node/push_winston.js.

What it sends (winston-loki/src/batcher.js, proto/helpers.js): batches to `/loki/api/v1/push`,
by default protobuf compressed with snappy, labels as a `{k="v",...}` string, the winston
`level` as a label, and lines `<message> <JSON of the other meta>`; with `json: true`, JSON whose
values carry the meta (with `level`) as structured metadata, `[ "<ns>", line, {k: "v"} ]`. A
`labels` meta adds stream labels to one entry. Without categorize-labels, Loki answers with the
structured metadata merged into each stream's labels; a metadata name that is also a stream label
(`level`) is renamed with `_extracted`, as Loki's label builder does.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.clients.reading import key, read_back, run_id, streams
from tests.conftest import Server

NODE = Path(__file__).resolve().parent / "node"


def push_with_winston(server: Server, mode: str, run: str) -> None:
    if not (NODE / "node_modules" / "winston-loki").is_dir():
        pytest.fail("the npm packages are missing: run `npm ci` in tests/clients/node (./run.sh test does)")
    done = subprocess.run(["node", "push_winston.js", server.url, mode, run], cwd=NODE,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stderr}{done.stdout}"


def test_protobuf_snappy_default(server: Server, client: httpx.Client) -> None:
    run = run_id("winston")
    since = time.time_ns()
    push_with_winston(server, "proto", run)
    base = {"job": "winston", "run": run}
    assert streams(read_back(client, f'{{run="{run}"}}', since)) == {
        key({**base, "level": "info"}): [
            f'order placed {{"trace_id":"t-{run}-1","attempt":1,"level":"info"}}',
            f'order shipped {{"trace_id":"t-{run}-2","attempt":2,"level":"info"}}',
        ],
        key({**base, "level": "warn", "component": "disk"}): ['disk almost full: café ✓ {"level":"warn"}'],
        key({**base, "level": "error", "component": "billing"}): [
            f'payment failed {{"trace_id":"t-{run}-3","attempt":3,"level":"error"}}',
        ],
        key({**base, "level": "debug"}): ['cache warm {"level":"debug"}'],
    }


def test_json_with_structured_metadata(server: Server, client: httpx.Client) -> None:
    run = run_id("winstonj")
    since = time.time_ns()
    push_with_winston(server, "json", run)
    base = {"job": "winston", "run": run}

    def meta(level: str, n: int | None = None) -> dict[str, str]:
        ids = {"trace_id": f"t-{run}-{n}", "attempt": str(n)} if n else {}
        return {**base, "level": level, "level_extracted": level, **ids}

    assert streams(read_back(client, f'{{run="{run}"}}', since)) == {
        key(meta("info", 1)): ["order placed"],
        key(meta("info", 2)): ["order shipped"],
        key({**meta("warn"), "component": "disk"}): ["disk almost full: café ✓"],
        key({**meta("error", 3), "component": "billing"}): ["payment failed"],
        key(meta("debug")): ["cache warm"],
    }


def test_structured_metadata_filters_like_a_label(server: Server, client: httpx.Client) -> None:
    run = run_id("winstonf")
    since = time.time_ns()
    push_with_winston(server, "json", run)
    answer = read_back(client, f'{{run="{run}"}} | trace_id="t-{run}-3"', since)
    assert [line for lines in streams(answer).values() for line in lines] == ["payment failed"]
