"""Hostile label values and filter strings reach DuckDB only as parameters: exact answers."""

from __future__ import annotations

import httpx
import pytest

from lokiarrow.model import go_quote
from tests.server.pushing import BASE_NS, lines, push, query

NASTY = [
    "it's",
    'say "hi"',
    "back\\slash",
    "'); DROP TABLE logs; --",
    "line\nbreak",
    "zoë ✓ 日本",
    "%_*?[]",
]


@pytest.fixture(scope="module", autouse=True)
def data(client: httpx.Client) -> None:
    for i, value in enumerate(NASTY):
        push(client, {"app": "nasty", "value": value}, [[BASE_NS + i, f"payload {value} end"]])
    push(client, {"app": "nasty", "value": "plain"}, [[BASE_NS + 100, "nothing special"]])


@pytest.mark.parametrize("value", NASTY)
def test_label_values_match_exactly(client: httpx.Client, value: str) -> None:
    doc = query(client, f'{{app="nasty", value={go_quote(value)}}}')
    [stream] = doc["data"]["result"]
    assert stream["stream"]["value"] == value
    assert [v[1] for v in stream["values"]] == [f"payload {value} end"]


@pytest.mark.parametrize("value", NASTY)
def test_line_filters_match_exactly(client: httpx.Client, value: str) -> None:
    assert lines(query(client, f'{{app="nasty"}} |= {go_quote(value)}')) == [f"payload {value} end"]
    assert len(lines(query(client, f'{{app="nasty"}} != {go_quote(value)}'))) == len(NASTY)


def test_backtick_raw_strings(client: httpx.Client) -> None:
    assert lines(query(client, '{app="nasty"} |= `back\\slash`')) == ["payload back\\slash end"]
    assert lines(query(client, '{app="nasty"} |~ `DROP\\s+TABLE`')) == ["payload '); DROP TABLE logs; -- end"]
