"""Promtail's `timestamp` stage: Go layouts, named and Unix formats, fallbacks, zones, failures."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.agent import stages
from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.agent.stages import timestamps
from lokiarrow.agent.stages.timestamps import parser_for

T0 = 1_700_000_000_000_000_000


def pipeline(stage: str) -> stages.Pipeline:
    items = [{"regex": {"expression": "^(?P<ts>.*)$"}}, {"timestamp": yaml.safe_load(stage)}]
    return stages.build(Section({"pipeline_stages": items}, "").sections("pipeline_stages"))


def parse(stage: str, value: str, labels: dict[str, str] | None = None) -> int:
    [out] = pipeline(stage).process(Entry(labels=labels or {"job": "x"}, ts=T0, line=value))
    return out.ts


def utc(*parts: int, ns: int = 0) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * 10**9 + ns  # type: ignore[misc]


@pytest.mark.parametrize(("fmt", "value", "expected"), [
    ("RFC3339", "2019-01-01T01:00:00+01:00", utc(2019, 1, 1, 0)),
    ("RFC3339Nano", "2019-01-01T01:00:00.123456789Z", utc(2019, 1, 1, 1, ns=123456789)),
    ("RFC3339Nano", "2019-01-01T01:00:00Z", utc(2019, 1, 1, 1)),
    ("ANSIC", "Mon Jan  7 15:04:05 2019", utc(2019, 1, 7, 15, 4, 5)),
    ("UnixDate", "Mon Jan  7 15:04:05 UTC 2019", utc(2019, 1, 7, 15, 4, 5)),
    ("RFC1123Z", "Mon, 07 Jan 2019 15:04:05 -0700", utc(2019, 1, 7, 22, 4, 5)),
    ("RFC822Z", "07 Jan 19 15:04 +0000", utc(2019, 1, 7, 15, 4)),
    ("Unix", "1562708916", 1562708916 * 10**9),
    ("Unix", "1562708916.414123", 1562708916_414123000),
    ("Unix", "-1", -(10**9)),
    ("UnixMs", "1562708916414", 1562708916_414000000),
    ("UnixUs", "1562708916414123", 1562708916_414123000),
    ("UnixNs", "1562708916000000123", 1562708916_000000123),
    ("2006-01-02 15:04:05.000", "2021-03-04 05:06:07.089", utc(2021, 3, 4, 5, 6, 7, ns=89_000_000)),
    ("02/Jan/2006:15:04:05 -0700", "25/Jan/2000:14:00:01 -0500", utc(2000, 1, 25, 19, 0, 1)),
])
def test_formats(fmt: str, value: str, expected: int) -> None:
    assert parse(f"{{source: ts, format: '{fmt}'}}", value) == expected


def test_location_applies_to_layouts_without_zone() -> None:
    stage = "{source: ts, format: '2006-01-02 15:04:05', location: America/New_York}"
    assert parse(stage, "2021-07-01 12:00:00") == utc(2021, 7, 1, 16)
    assert parse(stage, "2021-01-01 12:00:00") == utc(2021, 1, 1, 17)


def test_layout_without_year_gets_the_current_year() -> None:
    now = datetime.now(UTC)
    year = now.year + (1 if now.month == 12 else 0)  # a January time read in December: next year
    assert parse("{source: ts, format: 'Jan _2 15:04:05'}", "Jan  4 05:06:07") == utc(year, 1, 4, 5, 6, 7)
    assert parse("{source: ts, format: 'Jan _2 15:04:05', action_on_failure: skip}", "Stamp") == T0


def test_named_layouts_ignore_location() -> None:
    stage = "{source: ts, format: ANSIC, location: Asia/Tokyo}"
    assert parse(stage, "Mon Jan  7 15:04:05 2019") == utc(2019, 1, 7, 15, 4, 5)
    custom = "{source: ts, format: 'Mon Jan _2 15:04:05 2006', location: Asia/Tokyo}"
    assert parse(custom, "Mon Jan  7 15:04:05 2019") == utc(2019, 1, 7, 6, 4, 5)


def test_fallback_formats() -> None:
    stage = "{source: ts, format: RFC3339, fallback_formats: [UnixMs, '2006-01-02']}"
    assert parse(stage, "1562708916414") == 1562708916_414000000
    assert parse(stage, "2020-02-03") == utc(2020, 2, 3)


def test_failure_fudges_from_the_last_time_of_the_stream_or_skips() -> None:
    p = pipeline("{source: ts, format: RFC3339}")
    a, b = {"pod": "a"}, {"pod": "b"}
    [good] = p.process(Entry(labels=a, ts=T0, line="2020-01-01T00:00:00Z"))
    [fudged] = p.process(Entry(labels=a, ts=T0, line="garbage"))
    [again] = p.process(Entry(labels=a, ts=T0, line="garbage"))
    [other] = p.process(Entry(labels=b, ts=T0, line="garbage"))
    assert good.ts == utc(2020, 1, 1)
    assert (fudged.ts, again.ts) == (utc(2020, 1, 1) + 1, utc(2020, 1, 1) + 2)
    assert other.ts == T0  # nothing known for this stream: kept
    q = pipeline("{source: ts, format: RFC3339, action_on_failure: skip}")
    q.process(Entry(labels=a, ts=T0, line="2020-01-01T00:00:00Z"))
    [skipped] = q.process(Entry(labels=a, ts=T0, line="garbage"))
    assert skipped.ts == T0


def test_missing_source_leaves_time_or_fudges() -> None:
    items = [{"regex": {"expression": "^(?P<ts>2.*)$"}}, {"timestamp": {"source": "ts", "format": "RFC3339"}}]
    p = stages.build(Section({"s": items}, "").sections("s"))
    [first] = p.process(Entry(labels={}, ts=T0, line="no time"))
    assert first.ts == T0
    p.process(Entry(labels={}, ts=T0, line="2020-01-01T00:00:00Z"))
    [later] = p.process(Entry(labels={}, ts=T0, line="no time"))
    assert later.ts == utc(2020, 1, 1) + 1


@pytest.mark.parametrize(("stage", "message"), [
    ("{format: RFC3339}", r"timestamp.source: timestamp source value is required"),
    ("{source: ts}", r"timestamp.format: timestamp format is required"),
    ("{source: ts, format: RFC3339, location: Mars/Olympus}", r"timestamp.location: invalid location specified: unknown time zone Mars/Olympus"),
    ("{source: ts, format: RFC3339, action_on_failure: panic}", r"timestamp.action_on_failure: invalid action"),
    ("{source: ts, format: RFC3339, fallback_formats: RFC3339}", r"timestamp.fallback_formats: must be a list"),
    ("{source: ts, format: RFC3339, fromat: x}", r"timestamp.fromat: unknown field"),
])
def test_bad_config(stage: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"pipeline_stages\[0\]\." + message):
        stages.build(Section({"pipeline_stages": [{"timestamp": yaml.safe_load(stage)}]}, "")
                     .sections("pipeline_stages"), "pipeline_stages")


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 12, 31)),
       digits=st.integers(0, 9), fraction=st.integers(0, 999_999_999),
       offset=st.sampled_from(["Z", "+00:00", "+05:30", "-08:00", "+14:00"]),
       odd=st.sampled_from(["", "13-", "T25", "z", " "]))
def test_the_fast_rfc3339_path_agrees_with_the_layout_parser(moment: dt.datetime, digits: int, fraction: int,
                                                             offset: str, odd: str) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction:09d}"[:digits + 1] if digits else "") + offset
    if odd == "13-":
        text = text[:5] + "13" + text[7:]      # no month 13
    elif odd == "T25":
        text = text[:11] + "25" + text[13:]    # no hour 25
    elif odd:
        text = text.replace("Z", odd) if "Z" in text else text + odd
    general = timestamps._layout(timestamps.NAMED_LAYOUTS["RFC3339Nano"], UTC)  # noqa: SLF001
    assert parser_for("RFC3339Nano", UTC)(text) == general(text)
    assert parser_for("RFC3339", UTC)(text) == timestamps._layout(timestamps.NAMED_LAYOUTS["RFC3339"], UTC)(text)
