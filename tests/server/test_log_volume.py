"""Grafana's logs volume histogram over a real server: the query it sends groups lines by the
`detected_level` derived at ingest, per minute, from flushed files and the head alike."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.server.pushing import push

MINUTE = 60 * 10**9
START = 1_768_860_000_000_000_000  # a whole minute
VOLUME = 'sum by (level, detected_level) (count_over_time({app="vol"} | drop __error__ [1m]))'


def _line(i: int) -> tuple[str, str]:
    """A line and the level Loki 3 detects for it."""
    kind = i % 4
    if kind == 0:
        return f'{{"level":"error","msg":"failed {i}"}}', "error"
    if kind == 1:
        return f"level=WARNING msg=slow{i}", "warn"
    if kind == 2:
        return f"plain info line {i}", "info"
    return f"no level word here {i}", "unknown"


@pytest.fixture(scope="module")
def expected(client: httpx.Client) -> Counter[tuple[int, str]]:
    """600 lines over 10 minutes; the first 400 flushed to Parquet, the rest in the head."""
    want: Counter[tuple[int, str]] = Counter()
    values = []
    for i in range(600):
        ts = START + i * 10**9 + 1
        line, level = _line(i)
        values.append([ts, line])
        want[(-(-(ts - START) // MINUTE), level)] += 1  # the step whose window (t - 1m, t] holds ts
    push(client, {"app": "vol", "env": "prod"}, values[:400])
    assert client.post("/flush").status_code == 204
    push(client, {"app": "vol", "env": "prod"}, values[400:])
    return want


def test_volume_query_as_grafana_sends_it(client: httpx.Client, expected: Counter[tuple[int, str]]) -> None:
    r = client.get("/loki/api/v1/query_range", params={
        "query": VOLUME, "start": START, "end": START + 12 * MINUTE, "step": "60000ms", "limit": 1000,
        "direction": "backward"}, headers={"X-Query-Tags": "Source=logvolhist", "X-Grafana-Org-Id": "1"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    got: Counter[tuple[int, str]] = Counter()
    for series in data["result"]:
        assert set(series["metric"]) == {"detected_level"}  # no `level` label: none of the lines has one
        for t, v in series["values"]:
            got[((t * 10**9 - START) // MINUTE, series["metric"]["detected_level"])] += int(v)
    assert got == expected
