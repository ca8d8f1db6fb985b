"""Loki conformance: load the recorded data set into a server, replay the recorded requests, compare.

The data and the answers a real Loki gave are in this folder (see README.md for how they were
made and how answers are normalised). `compare` returns None when an answer matches, else a
short description of the first difference.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import httpx
import orjson

HERE = Path(__file__).resolve().parent


def load_jsonl(name: str) -> list[dict[str, Any]]:
    with gzip.open(HERE / name, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def push_dataset(client: httpx.Client) -> int:
    """Push every recorded request (one stream each) with the JSON push API; returns entries."""
    total = 0
    for push in load_jsonl("data.jsonl.gz"):
        body = {"streams": [{"stream": push["labels"], "values": push["entries"]}]}
        r = client.post("/loki/api/v1/push", content=orjson.dumps(body),
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 204, r.text
        total += len(push["entries"])
    return total


def _key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True)


def normalise(endpoint: str, params: dict[str, str], status: int, body: bytes) -> dict[str, Any]:
    """An HTTP answer in the shape of a case's `expected`."""
    if status != 200:
        return {"status": status, "error": body.decode("utf-8", "replace").strip()}
    doc = orjson.loads(body)
    data = doc["data"]
    if endpoint in ("query_range", "query"):
        kind = data["resultType"]
        result = data["result"]
        if kind == "streams":
            result = sorted(({"stream": s["stream"], "values": [v[:2] for v in s["values"]]} for s in result),
                            key=lambda s: _key(s["stream"]))
        elif kind == "matrix":
            result = sorted(({"metric": s["metric"], "values": [[v[0], float(v[1])] for v in s["values"]]}
                             for s in result), key=lambda s: _key(s["metric"]))
        elif kind == "vector":
            result = [{"metric": s["metric"], "value": [s["value"][0], float(s["value"][1])]} for s in result]
            query = params.get("query", "").lstrip()
            if not query.startswith(("sort(", "sort_desc(")):
                result.sort(key=lambda s: _key(s["metric"]))
        return {"status": 200, "resultType": kind, "result": result}
    if endpoint == "series":
        return {"status": 200, "data": sorted(data, key=_key)}
    return {"status": 200, "data": sorted(data)}


def _numbers_equal(a: Any, b: Any) -> bool:
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9)


def compare(expected: dict[str, Any], got: dict[str, Any]) -> str | None:
    if expected["status"] != got["status"]:
        return f"status {got['status']} != {expected['status']}: {got.get('error', '')[:200]}"
    if "error" in expected:
        return None if expected["error"] == got["error"] else f"error text {got['error']!r} != {expected['error']!r}"
    if "data" in expected:
        exp, act = expected["data"], got["data"]
        if endpoint_kind(expected) == "series":
            exp, act = sorted(exp, key=_key), act
        return None if exp == act else f"data differs: got {str(act)[:300]} expected {str(exp)[:300]}"
    if expected["resultType"] != got["resultType"]:
        return f"resultType {got['resultType']} != {expected['resultType']}"
    exp_r, got_r = expected["result"], got["result"]
    if expected["resultType"] == "streams":
        if [s["stream"] for s in exp_r] != [s["stream"] for s in got_r]:
            missing = [s["stream"] for s in exp_r if s not in got_r][:2]
            return f"streams differ ({len(got_r)} vs {len(exp_r)}), e.g. expected {missing}"
        for e, g in zip(exp_r, got_r, strict=True):
            if e["values"] != g["values"]:
                return f"values of {e['stream']} differ: got {g['values'][:3]} expected {e['values'][:3]}"
        return None
    series_key = "metric"
    if [s[series_key] for s in exp_r] != [s[series_key] for s in got_r]:
        return f"series differ ({len(got_r)} vs {len(exp_r)})"
    for e, g in zip(exp_r, got_r, strict=True):
        pairs = [(e["value"], g["value"])] if "value" in e else list(zip(e["values"], g["values"], strict=False))
        if "values" in e and len(e["values"]) != len(g["values"]):
            return f"points of {e[series_key]}: {len(g['values'])} != {len(e['values'])}"
        for pe, pg in pairs:
            if float(pe[0]) != float(pg[0]) or not _numbers_equal(pe[1], pg[1]):
                return f"point of {e[series_key]}: got {pg} expected {pe}"
    return None


def endpoint_kind(expected: dict[str, Any]) -> str:
    data = expected.get("data")
    return "series" if data and isinstance(data[0], dict) else "list"


def run_case(client: httpx.Client, case: dict[str, Any]) -> str | None:
    r = client.get(f"/loki/api/v1/{case['endpoint']}", params=case["params"])
    got = normalise(case["endpoint"], case["params"], r.status_code, r.content)
    return compare(case["expected"], got)
