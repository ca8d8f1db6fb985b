"""Push helpers for server tests: Loki's JSON push format."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

BASE_NS = 1_768_860_000_000_000_000  # 2026-01-19T22:00:00Z


def push(client: httpx.Client, labels: dict[str, str], values: list[list[Any]], expect: int = 204) -> httpx.Response:
    body = {"streams": [{"stream": labels, "values": [[str(v[0]), *v[1:]] for v in values]}]}
    r = client.post("/loki/api/v1/push", content=orjson.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code == expect, r.text
    return r


def query(client: httpx.Client, q: str, start: int = BASE_NS - 10**12, end: int = BASE_NS + 10**14,
          expect: int = 200, **params: Any) -> Any:
    r = client.get("/loki/api/v1/query_range", params={"query": q, "start": start, "end": end, **params})
    assert r.status_code == expect, r.text
    return r.json() if expect == 200 else r.text


def lines(answer: Any) -> list[str]:
    """All lines of a streams answer, newest first across streams (ties by line)."""
    rows = [(int(ts), line) for s in answer["data"]["result"] for ts, line in s["values"]]
    return [line for _, line in sorted(rows, key=lambda r: (-r[0], r[1]))]
