"""The overload soak (tests/soak/overload.py), short: 25 s of pushes at twice the tenant's ingestion
rate from clients that back off on 429, beside a query client. Pushes answer 204 or 429 (some of
each), nothing times out or answers 5xx, every acknowledged line is stored once, every query answers,
and the server's RSS stays under its ceiling without climbing."""

from __future__ import annotations

from pathlib import Path

from tests.soak.overload import run


def test_twice_the_rate_answers_429_and_loses_nothing(tmp_path: Path) -> None:
    result = run(25, tmp_path)
    assert set(result.statuses) == {204, 429}, result.statuses
    assert result.timeouts == 0 and result.errors == [] and result.server_errors == 0
    assert result.acked_lines > 0
    assert (result.undelivered_batches, result.missing, result.duplicated) == (0, 0, 0)
    assert {key.split()[0] for key in result.queries} == {"log", "metric", "instant"}, result.queries
    assert result.query_failures == 0, result.queries
    assert result.rss_peak <= result.rss_ceiling, (result.rss_peak, result.rss_ceiling)
    assert not result.rss_climbs, result.thirds()
    assert result.problems() == []
