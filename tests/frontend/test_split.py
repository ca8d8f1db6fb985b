"""How a query_range request is cut into parts (lokiarrow/frontend/split.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.config import smallest_positive
from lokiarrow.errors import ParseError
from lokiarrow.exec.engine import RangeRequest
from lokiarrow.frontend.downstream import rfc3339, step_param
from lokiarrow.frontend.split import Part, split_logs, split_metric, split_request
from lokiarrow.server.params import parse_step, parse_time

S = 10**9
H = 3600 * S
DAY = 24 * H
T0 = 1_768_860_000 * S   # 2026-01-19T22:00:00Z

times = st.integers(min_value=-(2**40) * S, max_value=2**40 * S)
intervals = st.sampled_from([1, 7, 60 * S, 17 * 60 * S, H, DAY]) | st.integers(min_value=1, max_value=10**13)


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * S


def steps_of(part: Part, step: int) -> list[int]:
    return list(range(part.start, part.end + 1, step))


@settings(max_examples=300)
@given(start=times, spans=st.integers(min_value=0, max_value=60), extra=st.integers(min_value=0, max_value=10**13),
       interval=intervals)
def test_log_parts_cover_the_range_once_cut_at_multiples_of_the_interval(start: int, spans: int, extra: int,
                                                                         interval: int) -> None:
    length = spans * interval + extra % interval
    end = start + length
    parts = split_logs(start, end, interval)
    assert parts[0].start == start and parts[-1].end == end
    for before, after in zip(parts, parts[1:], strict=False):
        assert before.end == after.start and after.start % interval == 0   # contiguous, aligned to the epoch
    if len(parts) > 1:
        for part in parts:
            assert part.start < part.end
            assert part.start // interval == (part.end - 1) // interval   # within one interval
            assert split_logs(part.start, part.end, interval) == [part]    # never split again
    else:
        assert length == 0 or start // interval == (end - 1) // interval


@settings(max_examples=300)
@given(start=times, steps=st.integers(min_value=0, max_value=400), step=st.integers(min_value=1, max_value=10**12),
       extra=st.integers(min_value=0, max_value=10**12), interval=intervals)
def test_every_metric_step_falls_in_exactly_one_part_on_the_grid(start: int, steps: int, step: int, extra: int,
                                                                 interval: int) -> None:
    end = start + steps * step + extra % step
    wanted = list(range(start, end + 1, step))
    parts = split_metric(start, end, step, interval)
    got = [t for part in parts for t in steps_of(part, step)]
    assert got == wanted   # each step once, parts in time order
    for part in parts:
        assert (part.start - start) % step == 0   # a part starts on the request's step grid
    if len(parts) > 1:
        for part in parts:
            assert part.start // interval == part.end // interval   # all its steps in one interval
            assert split_metric(part.start, part.end, step, interval) == [part]   # never split again
    else:
        assert parts == [Part(start, end)]


def test_a_day_splits_at_utc_midnight() -> None:
    start, end = ns("2026-01-19T22:00:00"), ns("2026-01-21T02:00:00")
    assert split_logs(start, end, DAY) == [Part(start, ns("2026-01-20T00:00:00")),
                                           Part(ns("2026-01-20T00:00:00"), ns("2026-01-21T00:00:00")),
                                           Part(ns("2026-01-21T00:00:00"), end)]
    step = 5 * 60 * S
    assert split_metric(start, end, step, DAY) == [Part(start, ns("2026-01-19T23:55:00")),
                                                   Part(ns("2026-01-20T00:00:00"), ns("2026-01-20T23:55:00")),
                                                   Part(ns("2026-01-21T00:00:00"), end)]


def test_a_step_that_does_not_divide_the_interval_keeps_the_request_grid() -> None:
    start = T0 + 13 * S
    parts = split_metric(start, start + 3 * H, 7 * 60 * S, H)
    # steps at 22:00:13 + k * 7m; the hours begin at 23:00 and 00:00 and 01:00
    assert parts[0] == Part(start, start + 8 * 7 * 60 * S)            # 22:56:13, the last before 23:00
    assert parts[1].start == start + 9 * 7 * 60 * S                   # 23:03:13
    assert [p.start // H for p in parts] == [T0 // H + i for i in range(3)]   # the last step is 00:55:13


@pytest.mark.parametrize(("start", "end", "interval"), [
    (T0, T0 + H, H),               # log range [start, end) fits the hour
    (T0 + 5 * S, T0 + 50 * S, H),
    (T0, T0 + 10 * H, 0),          # interval 0: no split
    (T0, T0, H),
])
def test_no_split(start: int, end: int, interval: int) -> None:
    assert split_logs(start, end, interval) == [Part(start, end)]
    assert len(split_request(RangeRequest('{a="b"}', start, end), interval).parts) == 1


def test_a_metric_range_that_fits_one_interval_is_one_part() -> None:
    assert split_metric(T0, T0 + H - S, 60 * S, H) == [Part(T0, T0 + H - S)]
    # the step at T0 + 1h lies in the next hour
    assert split_metric(T0, T0 + H, 60 * S, H) == [Part(T0, T0 + H - 60 * S), Part(T0 + H, T0 + H)]


def test_the_interval_widens_to_the_longest_range_of_the_query() -> None:
    req = RangeRequest('sum(rate({a="b"}[2h])) / sum(count_over_time({a="b"}[5m]))', T0, T0 + 6 * H, step_ns=60 * S)
    split = split_request(req, H)
    assert not split.logs
    assert [p.start for p in split.parts] == [T0, T0 + 2 * H, T0 + 4 * H, T0 + 6 * H]
    assert split_request(RangeRequest('{a="b"} |= "x"', T0, T0 + 6 * H), H).logs


def test_an_invalid_query_fails_before_splitting() -> None:
    with pytest.raises(ParseError):
        split_request(RangeRequest('sum(rate({a="b"}[5m])', T0, T0 + 6 * H), H)


def test_the_strictest_tenant_sets_the_interval() -> None:
    assert smallest_positive([0, 3 * H, H]) == H
    assert smallest_positive([0, 0]) == 0


@settings(max_examples=300)
@given(st.integers(min_value=-(2**63) + 10**9, max_value=2**63 - 1))
def test_part_bounds_travel_exactly(t: int) -> None:
    assert parse_time(rfc3339(t), 0) == t


@given(st.integers(min_value=1, max_value=10**7))
def test_a_part_step_is_read_back_as_the_request_step(ms: int) -> None:
    assert parse_step({"step": step_param(ms * 10**6, "")}, 0, ms * 10**6) == ms * 10**6


def test_a_step_of_a_fraction_of_a_millisecond_is_passed_as_given() -> None:
    step = parse_step({"step": "0.0000015"}, 0, 1)
    assert step == 1500
    assert step_param(step, "0.0000015") == "0.0000015"
