from __future__ import annotations

import pytest

from lokiarrow.errors import BadRequest
from lokiarrow.server.params import parse_bounds, parse_time

NS = 1_768_860_000_123_000_000


@pytest.mark.parametrize(("text", "expected"), [
    ("1768860000123000000", NS),                  # nanoseconds
    ("1768860000", NS - 123_000_000),             # ten digits or fewer: seconds
    ("1768860000.123", NS),                       # float seconds, millisecond precision
    ("2026-01-19T22:00:00.123Z", NS),
    ("2026-01-19T23:00:00.123+01:00", NS),
    ("2026-01-19T22:00:00.123000001Z", NS + 1),
])
def test_times_in_lokis_formats(text: str, expected: int) -> None:
    assert parse_time(text, 0) == expected


def test_bad_time_and_bounds() -> None:
    with pytest.raises(BadRequest, match='cannot parse "soon"'):
        parse_time("soon", 0)
    with pytest.raises(BadRequest, match="end timestamp must not be before"):
        parse_bounds({"start": "20", "end": "10"})
    start, end = parse_bounds({"end": "100", "since": "1m"})
    assert (start, end) == (40 * 10**9, 100 * 10**9)
