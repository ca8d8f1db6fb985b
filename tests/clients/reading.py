"""Reading back what a third-party client pushed: a window around now, lines grouped by label set.

The clients stamp entries with the current time and send labels of their own making, so a test
picks a unique `run` label value, lets the client push, then compares `{label set: sorted lines}`
with what it expects. Loki 3 adds `service_name` to the stream and `detected_level` as structured
metadata on ingest; these tests check what the clients sent (the conformance tests check the
enrichment), so both are left out of the label sets compared.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import httpx
import requests

from tests.server.pushing import query

ENRICHMENT = frozenset({"service_name", "detected_level"})

Labels = tuple[tuple[str, str], ...]


def run_id(client_name: str) -> str:
    """A label value no other test uses."""
    return f"{client_name}-{uuid.uuid4().hex[:12]}"


def key(labels: dict[str, str]) -> Labels:
    """A label set as a sorted tuple, without Loki's ingest enrichment."""
    return tuple(sorted((k, v) for k, v in labels.items() if k not in ENRICHMENT))


def by_labels(pairs: Iterable[tuple[dict[str, str], str]]) -> dict[Labels, list[str]]:
    """Group (labels, line) pairs into {label set: sorted lines}."""
    grouped: dict[Labels, list[str]] = defaultdict(list)
    for labels, line in pairs:
        grouped[key(labels)].append(line)
    return {labels: sorted(lines) for labels, lines in grouped.items()}


def read_back(client: httpx.Client, selector: str, since_ns: int) -> Any:
    """`query_range` over [since - 10 min, now + 1 min], the window a client stamping "now" writes in."""
    return query(client, selector, start=since_ns - 600 * 10**9, end=time.time_ns() + 60 * 10**9, limit=10_000)


def streams(answer: Any) -> dict[Labels, list[str]]:
    """{label set: sorted lines} of a streams answer."""
    return by_labels((s["stream"], line) for s in answer["data"]["result"] for _, line in s["values"])


def raise_on_error(session: requests.Session) -> None:
    """Make a client's requests session fail the test with the server's answer on any non-2xx.

    The Python clients swallow push errors (a logging handler must not raise), which would leave a
    failing push visible only as missing lines; this puts the request and answer in the failure.
    """

    def check(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        assert response.ok, (f"{request.method} {request.url} {dict(request.headers)} "
                             f"body={request.body!r:.2000} -> {response.status_code}: {response.text}")

    session.hooks["response"].append(check)
