"""The Python API (`lokiarrow.open`, `lokiarrow.connect`) beside a real running server: the same
answers as its HTTP API, as Polars frames, read from the files without stopping it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import lokiarrow
from lokiarrow.errors import BadRequest
from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS, push, query

HOUR = 3600 * 10**9
T0 = datetime.fromtimestamp(BASE_NS / 1e9, UTC)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("api") / "data", PERMISSIVE, []).start()
    with server.client() as http:
        for app in ("web", "db"):
            push(http, {"app": app, "env": "prod"},
                 [[BASE_NS + i * 10**9, f'{{"level":"{("info", "error")[i % 2]}","n":{i}}}'] for i in range(20)])
        assert http.post("/flush").status_code == 204
    yield server
    server.kill()


def test_log_queries_as_frames_equal_the_servers_answers(served: Server) -> None:
    store = lokiarrow.open(served.data_dir)
    df = store.query('{app="web"} | json | level="error"', start=T0, end=T0 + timedelta(hours=1), limit=100)
    assert df.columns == ["timestamp", "labels", "line", "metadata", "parsed"]
    assert df.schema["timestamp"] == pl.Datetime("ns", "UTC")
    with served.client() as http:
        answer = query(http, '{app="web"} | json | level="error"', start=BASE_NS, end=BASE_NS + HOUR, limit=100)
    expected = sorted((int(ts), line) for s in answer["data"]["result"] for ts, line in s["values"])
    got = sorted(zip(df["timestamp"].dt.epoch("ns").to_list(), df["line"].to_list(), strict=True))
    assert got == expected and len(got) == 10
    assert set(df["parsed"].struct.field("level").to_list()) == {"error"}            # from | json
    assert set(df["metadata"].struct.field("detected_level").to_list()) == {"error"}       # Loki 3 enrichment
    assert df["labels"].struct.fields == ["app", "env", "service_name"]             # the stream's own
    assert df["labels"].struct.field("app").to_list() == ["web"] * 10
    forward = store.query('{app="db"}', start=BASE_NS, end=BASE_NS + HOUR, limit=3, direction="forward")
    assert forward["line"].to_list() == [f'{{"level":"{lv}","n":{i}}}' for i, lv in enumerate(["info", "error", "info"])]
    assert forward.to_arrow().num_rows == 3


def test_metric_queries_labels_and_series(served: Server) -> None:
    store = lokiarrow.open(served.data_dir)
    counts = store.query('sum by (app) (count_over_time({env="prod"}[1h]))', start=T0 + timedelta(minutes=30),
                         end=T0 + timedelta(minutes=30), step="1m")
    assert counts.columns == ["timestamp", "labels", "value"]
    assert sorted(zip(counts["labels"].struct.field("app").to_list(), counts["value"].to_list(), strict=True)) == [
        ("db", 20.0), ("web", 20.0)]
    at = store.instant('sum(count_over_time({app="web"} |= "error" [1h]))', at=BASE_NS + HOUR // 2)
    assert at["value"].to_list() == [10.0]
    assert store.labels(start=T0, end=T0 + timedelta(hours=1)) == ["app", "env", "service_name"]
    assert store.label_values("app", start=T0, end=BASE_NS + HOUR) == ["db", "web"]
    series = store.series('{env="prod"}', start=T0, end=T0 + timedelta(hours=1))
    assert sorted(series["labels"].struct.field("app").to_list()) == ["db", "web"]


def test_sql_and_duckdb_over_the_same_files(served: Server) -> None:
    store = lokiarrow.open(served.data_dir)
    df = store.sql("SELECT labels, count(*) AS n FROM logs WHERE line LIKE ? GROUP BY ALL ORDER BY labels",
                   ['%"error"%'])
    assert df.rows() == [('{app="db", env="prod", service_name="db"}', 10),
                         ('{app="web", env="prod", service_name="web"}', 10)]
    con = store.duckdb()
    assert con.sql("SELECT count(*) FROM logs").fetchall() == [(40,)]
    con.close()


def test_the_server_goes_on_and_refresh_sees_new_files(served: Server) -> None:
    store = lokiarrow.open(served.data_dir)
    span = {"start": BASE_NS, "end": BASE_NS + 2 * HOUR}
    before = store.query('{app="late"}', limit=100, **span)
    with served.client() as http:
        push(http, {"app": "late"}, [[BASE_NS + HOUR, "after the API opened"]])   # not blocked by the reader
        assert http.post("/flush").status_code == 204
    assert before.height == 0 and store.query('{app="late"}', limit=100, **span).height == 0   # a snapshot
    store.refresh()
    assert store.query('{app="late"}', limit=100, **span)["line"].to_list() == ["after the API opened"]


def test_remote_answers_as_local(served: Server) -> None:
    local, remote = lokiarrow.open(served.data_dir), lokiarrow.connect(served.url)
    for q in ('{app="web"} |= "error"', 'sum by (app) (count_over_time({env="prod"}[10m]))'):
        a = local.query(q, start=T0, end=T0 + timedelta(hours=1), step="5m", limit=1000).sort(["timestamp", "line"]
                                                                                                 if "line" in q else
                                                                                                 ["timestamp"])
        b = remote.query(q, start=T0, end=T0 + timedelta(hours=1), step="5m", limit=1000).sort(a.columns[:1])
        assert a.height == b.height > 0
        assert sorted(map(str, a.rows())) == sorted(map(str, b.rows()))
    assert remote.labels(start=T0, end=T0 + timedelta(hours=1)) == local.labels(start=T0, end=T0 + timedelta(hours=1))
    remote.close()


def test_times_in_every_form_and_bad_ones() -> None:
    from lokiarrow.api import _ns, _span
    now = 2_000_000_000 * 10**9
    assert _ns("1h", 0, now) == now - HOUR
    assert _ns(timedelta(minutes=5), 0, now) == now - 5 * 60 * 10**9
    assert _ns("2026-01-19T22:00:00Z", 0, now) == BASE_NS
    assert _ns(datetime(2026, 1, 19, 22, 0, 0, 5), 0, now) == BASE_NS + 5000     # naive: UTC
    assert _ns(BASE_NS, 0, now) == BASE_NS
    lo, hi = _span(None, None)
    assert hi - lo == HOUR
    with pytest.raises(BadRequest, match="not a time"):
        _ns("yesterday-ish", 0, now)
    with pytest.raises(BadRequest, match="end must not be before start"):
        _span(BASE_NS, BASE_NS - 1)
