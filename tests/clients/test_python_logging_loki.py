"""python-logging-loki 0.3.1: its default legacy format to `/api/prom/push` and its v1 JSON format.

What it sends (logging_loki/emitter.py): one request per record, synchronously in `emit`; labels are
the handler's `tags`, `severity` (the level name, lower-cased), `logger` (the logger name) and a
record's `extra={"tags": {...}}` with names cleaned (`-`, `.`, ` ` become `_`). Version "0" (the
default, with a DeprecationWarning) sends `{"streams": [{"labels": "{k=\"v\",...}", "entries":
[{"ts": "<RFC3339 with the local offset, microseconds>", "line": ...}]}]}`; version "1" sends
`{"streams": [{"stream": {...}, "values": [["<ns>", line]]}]}`. The v1 test reads back with
loki-reader-core instead of raw HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from logging_loki import LokiHandler
from loki_reader_core import LokiClient

from tests.clients.reading import by_labels, key, raise_on_error, read_back, run_id, streams
from tests.conftest import Server


class Remember(logging.Handler):
    """Keeps the records a logger handled, to know what the Loki handler was given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def loki_logger(run: str, handler: LokiHandler) -> Iterator[tuple[logging.Logger, Remember]]:
    raise_on_error(handler.emitter.session)
    logger = logging.getLogger(f"clients.{run}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    seen = Remember()
    logger.addHandler(handler)
    logger.addHandler(seen)
    try:
        yield logger, seen
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(seen)
        handler.close()
        handler.emitter.close()


@pytest.fixture
def half_past_three_west(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time at UTC-03:30 without DST, so the RFC3339 stamps carry a half-hour offset."""
    monkeypatch.setenv("TZ", "LOC+03:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def micros_ns(created: float) -> int:
    """A record's time as the client writes it (rfc3339, to the microsecond), in nanoseconds."""
    stamp = datetime.fromtimestamp(created, UTC)
    return int(stamp.replace(microsecond=0).timestamp()) * 10**9 + stamp.microsecond * 1000


def test_legacy_default_format_to_api_prom_push(server: Server, client: httpx.Client,
                                                half_past_three_west: None) -> None:
    run = run_id("pll0")
    since = time.time_ns()
    with pytest.warns(DeprecationWarning, match="api/prom/push"):
        handler = LokiHandler(url=f"{server.url}/api/prom/push", tags={"run": run, "app": "billing"})
    with loki_logger(run, handler) as (logger, seen):
        logger.info("payment accepted id=1")
        logger.warning('retrying "card" charge')
        logger.error("payment failed ✗", extra={"tags": {"error-kind": 'card "declined"'}})
        logger.debug("cache hit", extra={"tags": {"cache.tier": "l2"}})

    name = logger.name
    base = {"run": run, "app": "billing", "logger": name}
    answer = read_back(client, f'{{run="{run}"}}', since)
    assert streams(answer) == {
        key({**base, "severity": "info"}): ["payment accepted id=1"],
        key({**base, "severity": "warning"}): ['retrying "card" charge'],
        key({**base, "severity": "error", "error_kind": 'card "declined"'}): ["payment failed ✗"],
        key({**base, "severity": "debug", "cache_tier": "l2"}): ["cache hit"],
    }
    # The offset in "2026-…T07:15:50.495875-03:30" is honoured: each entry is at its record's instant.
    stamped = {line: int(ts) for s in answer["data"]["result"] for ts, line in s["values"]}
    assert stamped == {r.getMessage(): micros_ns(r.created) for r in seen.records}


def test_v1_json_format_read_with_loki_reader_core(server: Server) -> None:
    run = run_id("pll1")
    since = time.time_ns()
    handler = LokiHandler(url=f"{server.url}/loki/api/v1/push", tags={"run": run}, version="1")
    with loki_logger(run, handler) as (logger, seen):
        logger.info("user signed in", extra={"tags": {"request.id": "r-7"}})
        logger.warning("slow query: 2.5s")
        logger.error("tab\tand unicode: žluťoučký kůň")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("request failed")
    # Lines are the handler's default formatting: the message, then any traceback on more lines.
    formatter = logging.Formatter()
    errors = sorted(formatter.format(r) for r in seen.records if r.levelno == logging.ERROR)
    assert any("\nRuntimeError: boom" in line for line in errors)

    name = logger.name
    base = {"run": run, "logger": name}
    expected = {
        key({**base, "severity": "info", "request_id": "r-7"}): ["user signed in"],
        key({**base, "severity": "warning"}): ["slow query: 2.5s"],
        key({**base, "severity": "error"}): errors,
    }
    end = time.time_ns() + 60 * 10**9
    with LokiClient(base_url=server.url, timeout=30) as reader:
        result = reader.query_range(f'{{run="{run}"}}', start=since - 60 * 10**9, end=end, limit=1000)
        assert result.status == "success" and result.result_type == "streams"
        assert by_labels((s.labels, e.message) for s in result.streams for e in s.entries) == expected
        assert all(since <= e.timestamp < end for s in result.streams for e in s.entries)

        assert run in reader.get_label_values("run")
        assert {"run", "logger", "severity", "request_id"} <= set(reader.get_labels())
        series = reader.get_series([f'{{run="{run}"}}'], start=since - 60 * 10**9, end=end)
        assert sorted(key(s) for s in series) == sorted({
            key({**base, "severity": severity, **extra})
            for severity, extra in [("info", {"request_id": "r-7"}), ("warning", {}), ("error", {})]})

        # Its app search: finds the label holding the app (here `logger`), then the severity
        # label of that app's streams, and asks for warning and above as one merged stream.
        found = reader.query(app=name, severity="warning", since_minutes=10)
        [merged] = found.streams
        assert merged.labels == {"logger": name}
        assert sorted(e.message for e in merged.entries) == sorted(["slow query: 2.5s", *errors])


def test_loki_reader_core_metric_query_counts_the_lines(server: Server) -> None:
    run = run_id("pllm")
    handler = LokiHandler(url=f"{server.url}/loki/api/v1/push", tags={"run": run}, version="1")
    with loki_logger(run, handler) as (logger, _):
        for n in range(3):
            logger.info("tick %d", n)
        logger.error("tock")
    with LokiClient(base_url=server.url, timeout=30) as reader:
        # A metric query without `since_*` goes to the instant endpoint, evaluated now (the client
        # recognises it by its first word: `sum(`, not `sum by`).
        counted = reader.query(f'sum(count_over_time({{run="{run}"}}[10m])) by (severity)')
        assert counted.result_type == "vector"
        assert {s.labels["severity"]: [p.value for p in s.samples] for s in counted.metric_series} == {
            "info": [3.0], "error": [1.0]}
