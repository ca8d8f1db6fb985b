"""loki-logger-handler 1.1.2: gzip JSON whose stream objects carry keys of the client's own.

What it sends (loki_logger_handler/stream.py, loki_request.py): records queue up and a background
thread posts them every `timeout` seconds as `{"streams": [{"stream": {...}, "values": [["<ns>",
"<the record as a JSON object>"(, {metadata})]], "message_in_json_format": true, "loki_metadata":
...}]}`, gzip-compressed by default. The two extra keys of each stream object must be ignored.
Tests set a long `timeout` so the thread never sends on its own, and flush with the handler's
`_send`, the method it registers with atexit for its final flush: synchronous, one request.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import pytest
from loki_logger_handler.formatters.logger_formatter import LoggerFormatter
from loki_logger_handler.loki_logger_handler import LokiLoggerHandler

from tests.clients.reading import key, raise_on_error, read_back, run_id, streams
from tests.conftest import Server


class Recording(LoggerFormatter):
    """The client's default formatter, keeping each record's object to know the lines it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []

    def format(self, record: logging.LogRecord) -> tuple[dict[str, Any], dict[str, Any]]:
        formatted, metadata = super().format(record)
        self.sent.append(formatted)
        return formatted, metadata


def handler_for(server: Server, formatter: Recording, **options: Any) -> LokiLoggerHandler:
    handler = LokiLoggerHandler(url=f"{server.url}/loki/api/v1/push", timeout=3600,
                                default_formatter=formatter, enable_self_errors=True, **options)
    raise_on_error(handler.request.session)
    return handler


def log_through(handler: LokiLoggerHandler, run: str, emit: Any) -> None:
    logger = logging.getLogger(f"clients.{run}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        emit(logger)
        handler._send()
    finally:
        logger.removeHandler(handler)
    assert not handler.error


def line(sent: dict[str, Any]) -> str:
    """The line the client makes of a record's object (`json.dumps(value, ensure_ascii=False)`)."""
    return json.dumps(sent, ensure_ascii=False)


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "plain"])
def test_default_json_lines_and_extra_stream_keys(server: Server, client: httpx.Client, compressed: bool) -> None:
    run = run_id("llh")
    since = time.time_ns()
    formatter = Recording()
    handler = handler_for(server, formatter, labels={"run": run, "app": "checkout"}, label_keys=["region"],
                          compressed=compressed)

    def emit(logger: logging.Logger) -> None:
        logger.info("cart updated: café ✓", extra={"region": "eu", "items": 3})
        logger.info("cart emptied", extra={"region": "eu"})
        logger.warning("stock low", extra={"region": "us"})
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logger.exception("charge failed")

    log_through(handler, run, emit)
    base = {"run": run, "app": "checkout"}
    assert "Traceback" in formatter.sent[3]["stacktrace"]
    assert streams(read_back(client, f'{{run="{run}"}}', since)) == {
        key({**base, "region": "eu"}): sorted(line(s) for s in formatter.sent[:2]),
        key({**base, "region": "us"}): [line(formatter.sent[2])],
        key(base): [line(formatter.sent[3])],
    }


def test_structured_metadata_from_defaults_keys_and_records(server: Server, client: httpx.Client) -> None:
    run = run_id("llhm")
    since = time.time_ns()
    formatter = Recording()
    handler = handler_for(server, formatter, labels={"run": run}, enable_structured_loki_metadata=True,
                          loki_metadata={"env": "ci"}, loki_metadata_keys=["user_id"])

    def emit(logger: logging.Logger) -> None:
        logger.info("signed in", extra={"user_id": 7})
        logger.info("viewed page", extra={"loki_metadata": {"trace_id": "abc", "env": "canary"}})
        logger.error("quota exceeded")

    log_through(handler, run, emit)
    assert [("user_id" in s) for s in formatter.sent] == [False, False, False]  # moved to metadata
    assert streams(read_back(client, f'{{run="{run}"}}', since)) == {
        key({"run": run, "env": "ci", "user_id": "7"}): [line(formatter.sent[0])],
        key({"run": run, "env": "canary", "trace_id": "abc"}): [line(formatter.sent[1])],
        key({"run": run, "env": "ci"}): [line(formatter.sent[2])],
    }
