"""loki-reader-core 0.2.5: `LokiClient`, a reader of Loki's query API (queries, labels, label values, series).

What it asks and reads (loki_reader_core/client.py, models/): `query_range` with nanosecond
`start`/`end`, `limit` and `direction`, parsing `streams` into entries, `matrix` and `vector` into
samples (`[<seconds>, "<value>"]`) and `stats.summary` into bytes, lines and exec time; `labels`,
`label/<name>/values` and `series` (`match[]` repeated) with a 30-day window when none is given;
`query(app=…, severity=…)`: finds the label holding the app among its list of names (values over
30 days), the severity label from that app's `series`, then asks for that severity and above as one
merged stream; metric queries without a `since_*` go to the instant endpoint. Any non-200 answer
is a LokiQueryError carrying the status and body; 401 and 403 are LokiAuthError.
tests/clients/test_python_logging_loki.py reads back what a logging client pushed with it; this
file reads a fixed data set and a fresh one stamped now.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from loki_reader_core import LokiClient
from loki_reader_core.exceptions import LokiAuthError, LokiQueryError

from tests.clients.reading import key, run_id
from tests.conftest import Server
from tests.server.pushing import BASE_NS, push

S = 10**9
START, END = BASE_NS - S, BASE_NS + 3600 * S


@pytest.fixture(scope="module")
def pushed(client: httpx.Client) -> None:
    """Fixed data: app shop (5 info lines, 2 error lines, one with metadata) and app mail."""
    push(client, {"app": "shop", "level": "info"}, [[BASE_NS + i * S, f"order {i} placed"] for i in range(5)])
    push(client, {"app": "shop", "level": "error"},
         [[BASE_NS + 10 * S, "order 0 failed"], [BASE_NS + 11 * S, "order 1 failed", {"trace_id": "t1"}]])
    push(client, {"app": "mail", "env": "prod"}, [[BASE_NS + 20 * S, "mail sent"]])


@pytest.fixture
def reader(server: Server, pushed: None) -> Iterator[LokiClient]:
    with LokiClient(base_url=server.url, timeout=30) as reader:
        yield reader


def test_query_range_streams_and_stats(reader: LokiClient) -> None:
    result = reader.query_range('{app="shop"}', start=START, end=END)
    assert result.status == "success" and result.result_type == "streams" and result.total_entries == 7
    assert {key(s.labels): [(e.timestamp, e.message) for e in s.entries] for s in result.streams} == {
        key({"app": "shop", "level": "info"}): [(BASE_NS + i * S, f"order {i} placed") for i in reversed(range(5))],
        key({"app": "shop", "level": "error"}): [(BASE_NS + 10 * S, "order 0 failed")],
        key({"app": "shop", "level": "error", "trace_id": "t1"}): [(BASE_NS + 11 * S, "order 1 failed")],
    }
    assert result.stats is not None
    assert result.stats.lines_processed >= 7 and result.stats.exec_time_seconds > 0


def test_limit_and_direction(reader: LokiClient) -> None:
    def first(direction: str) -> list[str]:
        result = reader.query_range('{app=~"shop|mail"}', start=START, end=END, limit=3, direction=direction)
        return [e.message for s in result.streams for e in s.entries]

    assert sorted(first("forward")) == ["order 0 placed", "order 1 placed", "order 2 placed"]
    assert sorted(first("backward")) == ["mail sent", "order 0 failed", "order 1 failed"]


def test_metric_query_range_reads_a_matrix(reader: LokiClient) -> None:
    result = reader.query_range('sum by (level) (count_over_time({app="shop"}[1m]))', start=START, end=END)
    assert result.result_type == "matrix" and result.streams == []
    peaks = {s.labels["level"]: max(p.value for p in s.samples) for s in result.metric_series}
    assert peaks == {"info": 5.0, "error": 2.0}
    # No step given: Loki's default, the range over 250 points in whole seconds, here 14 s.
    stamps = [p.timestamp for s in result.metric_series for p in s.samples]
    assert stamps and all((t - START) % (14 * S) == 0 and START <= t <= END for t in stamps)


def test_labels_values_and_series(reader: LokiClient) -> None:
    assert set(reader.get_labels(start=START, end=END)) == {"app", "level", "env", "service_name"}
    assert reader.get_label_values("app", start=START, end=END) == ["mail", "shop"]
    assert reader.get_label_values("level", start=START, end=END) == ["error", "info"]
    assert reader.get_label_values("nope", start=START, end=END) == []
    series = reader.get_series(['{app="shop", level="error"}', '{env="prod"}'], start=START, end=END)
    assert sorted(key(s) for s in series) == sorted([key({"app": "shop", "level": "error"}),
                                                     key({"app": "mail", "env": "prod"})])
    # Outside the data's time nothing matches.
    assert reader.get_series(['{app="shop"}'], start=END + S, end=END + 60 * S) == []


def test_errors_carry_lokis_status_and_text(reader: LokiClient) -> None:
    with pytest.raises(LokiQueryError, match=r"status 400: parse error at line 1, col 12: syntax error: unexpected \$end"):
        reader.query_range('{app="shop"', start=START, end=END)
    with pytest.raises(LokiQueryError, match="status 400: .*max entries limit per query exceeded"):
        reader.query_range('{app="shop"}', start=START, end=END, limit=100_001)


def test_tenant_from_org_id(start_server: Callable[..., Server]) -> None:
    server = start_server(args=["-auth.enabled=true"])
    with httpx.Client(base_url=server.url, headers={"X-Scope-OrgID": "team-a"}, timeout=30) as pusher:
        push(pusher, {"app": "shop"}, [[BASE_NS, "team a only"]])
    with LokiClient(base_url=server.url, org_id="team-a") as mine, LokiClient(base_url=server.url, org_id="b") as other:
        assert [e.message for s in mine.query_range('{app="shop"}', START, END).streams for e in s.entries] == [
            "team a only"]
        assert other.query_range('{app="shop"}', START, END).streams == []
        assert mine.get_label_values("app", START, END) == ["shop"] and other.get_label_values("app", START, END) == []
    with LokiClient(base_url=server.url) as anonymous, pytest.raises(LokiAuthError):
        anonymous.get_labels()


def test_app_and_severity_search_over_data_stamped_now(server: Server, client: httpx.Client) -> None:
    run = run_id("lrc")
    app = f"shop-{run}"
    now = time.time_ns() - 60 * S
    for n, level in enumerate(["debug", "info", "warning", "error", "critical"]):
        push(client, {"app": app, "severity": level}, [[now + n * S, f"{level} line"]])
    with LokiClient(base_url=server.url, timeout=30) as reader:
        found = reader.query(app=app, severity="warn", since_minutes=10)
        [merged] = found.streams
        assert merged.labels == {"app": app}
        assert [e.message for e in merged.entries] == ["critical line", "error line", "warning line"]
        everything = reader.query(app=app, since_hours=1, limit=2)
        assert sorted(e.message for s in everything.streams for e in s.entries) == ["critical line", "error line"]
        # A metric query without since_* is evaluated now at the instant endpoint: a vector (the
        # client knows it by its opening `sum(`; `sum by (…) (…)` would go to query_range).
        counted = reader.query(f'sum(count_over_time({{app="{app}"}}[10m])) by (severity)')
        assert counted.result_type == "vector"
        assert {s.labels["severity"]: [p.value for p in s.samples] for s in counted.metric_series} == {
            level: [1.0] for level in ["debug", "info", "warning", "error", "critical"]}
