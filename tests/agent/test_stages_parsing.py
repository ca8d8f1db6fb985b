"""Promtail's parsing stages, built from YAML as in a scrape config, run on entries."""

from __future__ import annotations

import hashlib
import time

import jmespath
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.agent import stages
from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.agent.stages.parsing import CRI_PATTERN, _jmespath_search, cri_fields
from lokiarrow.logql.template import TemplateSyntaxError, compile_template

T0 = 1_700_000_000_000_000_000


def pipeline(text: str) -> stages.Pipeline:
    return stages.build(Section({"pipeline_stages": yaml.safe_load(text)}, "").sections("pipeline_stages"))


def entry(line: str, labels: dict[str, str] | None = None, ts: int = T0) -> Entry:
    return Entry(labels=dict(labels or {"job": "x"}), ts=ts, line=line)


def one(p: stages.Pipeline, line: str, labels: dict[str, str] | None = None) -> Entry:
    [out] = p.process(entry(line, labels))
    return out


# --- cri -------------------------------------------------------------------------------------------

_CRI_PIECES = st.sampled_from(["2019-05-07T18:57:50Z", "stdout", "stderr", "F", "P", " ", "  ", "\t", "\n", "\r",
                               "\f", "\v", "\xa0", "x", "é", "stdoutx", ""])


@settings(max_examples=400, deadline=None)
@given(st.lists(_CRI_PIECES, max_size=9).map("".join) | st.text(max_size=40))
def test_cri_split_reads_as_the_pattern(line: str) -> None:
    m = CRI_PATTERN.search(line)
    expected = None if m is None else (m.group("time"), m.group("stream"), m.group("flags"), m.group("content"))
    assert cri_fields(line) == expected


def test_cri_full_line_sets_line_stream_label_time_and_extracted() -> None:
    out = one(pipeline("- cri: {}"), "2019-05-07T18:57:50.904275087+00:00 stderr F some full line")
    assert out.line == "some full line"
    assert out.labels == {"job": "x", "stream": "stderr"}
    assert out.ts == 1557255470_904275087
    assert out.extracted == {"time": "2019-05-07T18:57:50.904275087+00:00", "stream": "stderr",
                             "flags": "F", "content": "some full line"}


def test_cri_partial_lines_joined_per_stream_until_full() -> None:
    p = pipeline("- cri: {}")
    a, b = {"pod": "a"}, {"pod": "b"}
    assert p.process(entry("2019-05-07T18:57:50.1Z stdout P partial line 1 ", a)) == []
    assert p.process(entry("2019-05-07T18:57:50.2Z stdout P other ", b)) == []
    assert p.process(entry("2019-05-07T18:57:50.3Z stdout P partial line 2 ", a)) == []
    [full_a] = p.process(entry("2019-05-07T18:57:51Z stdout F log finished", a))
    [full_b] = p.process(entry("2019-05-07T18:57:52Z stdout F end", b))
    assert full_a.line == "partial line 1 partial line 2 log finished"
    assert full_a.ts == 1557255471 * 10**9  # the full line's time
    assert full_a.labels == {"pod": "a", "stream": "stdout"}
    assert full_b.line == "other end"
    # stdout and stderr of one container are separate streams
    assert p.process(entry("2019-05-07T18:57:53Z stdout P out-", a)) == []
    [err] = p.process(entry("2019-05-07T18:57:53Z stderr F err", a))
    assert err.line == "err"


def test_cri_max_partial_lines_releases_held_lines() -> None:
    p = pipeline("- cri: {max_partial_lines: 2}")
    assert p.process(entry("2019-05-07T18:57:50Z stdout P one", {"pod": "a"})) == []
    assert p.process(entry("2019-05-07T18:57:50Z stdout P two", {"pod": "b"})) == []
    released = p.process(entry("2019-05-07T18:57:50Z stdout P three", {"pod": "c"}))
    assert sorted(e.line for e in released) == ["one", "two"]
    [last] = p.process(entry("2019-05-07T18:57:51Z stdout F !", {"pod": "c"}))
    assert last.line == "three!"


def test_cri_truncates_joined_lines() -> None:
    p = pipeline("- cri: {max_partial_line_size: 11, max_partial_line_size_truncate: true}")
    assert p.process(entry("2019-05-07T18:57:50Z stdout P partial line 1 ", {"foo": "bar"})) == []
    assert p.process(entry("2019-05-07T18:57:50Z stdout P partial", {"foo": "bar2"})) == []
    [a] = p.process(entry("2019-05-07T18:57:51Z stdout F log finished", {"foo": "bar"}))
    [b] = p.process(entry("2019-05-07T18:57:51Z stdout F full", {"foo": "bar2"}))
    assert (a.line, b.line) == ("partial lin", "partialfull")


def test_cri_keeps_a_line_that_is_not_cri() -> None:
    out = one(pipeline("- cri: {}"), "plain text")
    assert (out.line, out.ts, out.labels) == ("plain text", T0, {"job": "x"})


def test_cri_refuses_bad_settings() -> None:
    with pytest.raises(ConfigError, match=r"pipeline_stages\[0\].cri.max_partial_line_size: .*greater than 0"):
        pipeline("- cri: {max_partial_line_size_truncate: true}")
    with pytest.raises(ConfigError, match=r"pipeline_stages\[0\].cri.max_lines: unknown field"):
        pipeline("- cri: {max_lines: 3}")


# --- docker ----------------------------------------------------------------------------------------

def test_docker_line_stream_and_time() -> None:
    line = '{"log":"11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500]\\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}'
    out = one(pipeline("- docker: {}"), line)
    assert out.line == "11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500]\n"
    assert out.labels["stream"] == "stderr"
    assert out.ts == 1556590361_844351500


def test_docker_keeps_a_line_that_is_not_json() -> None:
    out = one(pipeline("- docker: {}"), "not json")
    assert (out.line, out.ts, out.labels) == ("not json", T0, {"job": "x"})


# --- json ------------------------------------------------------------------------------------------

def test_json_expressions_and_types() -> None:
    p = pipeline("""
- json:
    expressions:
      level:
      user: user.name
      first: items[0]
      obj: user
      n: count
      ok: ok
      gone: nope
      "dash": '"app-name"'
""")
    out = one(p, '{"level":"info","user":{"name":"ann","id":1},"items":["a","b"],"count":3,'
                 '"ok":true,"app-name":"web"}')
    assert out.extracted == {"level": "info", "user": "ann", "first": "a", "obj": '{"id":1,"name":"ann"}',
                             "n": 3, "ok": True, "gone": None, "dash": "web"}


def test_json_source_and_missing_source() -> None:
    p = pipeline("""
- json: {expressions: {inner: ""}}
- json: {expressions: {x: a}, source: inner}
- json: {expressions: {y: a}, source: absent}
""")
    out = one(p, '{"inner":"{\\"a\\":\\"b\\"}"}')
    assert out.extracted["x"] == "b"
    assert "y" not in out.extracted


def test_json_malformed_kept_or_dropped() -> None:
    keep = pipeline("- json: {expressions: {a: a}}")
    assert one(keep, "{broken").extracted == {}
    assert one(keep, "[1, 2]").extracted == {}
    assert one(keep, "null").extracted == {"a": None}  # Go reads null into an empty map
    drop = pipeline("- json: {expressions: {a: a}, drop_malformed: true}")
    assert drop.process(entry("{broken")) == []
    assert len(drop.process(entry('{"a":1}'))) == 1


def test_json_refuses_bad_config() -> None:
    with pytest.raises(ConfigError, match=r"pipeline_stages\[0\].json.expressions: JMES expression is required"):
        pipeline("- json: {source: x}")
    with pytest.raises(ConfigError, match=r"json.source: empty source"):
        pipeline("- json: {expressions: {a: a}, source: ''}")
    with pytest.raises(ConfigError, match=r"json.expressions.a: could not compile JMES expression"):
        pipeline("- json: {expressions: {a: 'foo[?'}}")


# --- logfmt ----------------------------------------------------------------------------------------

def test_logfmt_mapping_and_source() -> None:
    p = pipeline("""
- logfmt: {mapping: {level: "", user: username, flag: ""}}
- regex: {expression: '^(?P<rest>.*)$'}
- logfmt: {mapping: {app: ""}, source: nested}
""")
    out = one(p, 'level=warn username="ann b" flag other=1')
    assert out.extracted["level"] == "warn"
    assert out.extracted["user"] == "ann b"
    assert out.extracted["flag"] == ""
    assert "other" not in out.extracted and "app" not in out.extracted


def test_logfmt_requires_mapping() -> None:
    with pytest.raises(ConfigError, match=r"logfmt.mapping: logfmt mapping is required"):
        pipeline("- logfmt: {}")


# --- regex -----------------------------------------------------------------------------------------

def test_regex_named_groups_unanchored_and_source() -> None:
    p = pipeline("""
- regex: {expression: 'user=(?P<user>\\w+)( id=(?P<id>\\d+))?'}
- regex: {expression: '^(?P<initial>.)', source: user}
""")
    out = one(p, "GET / user=bob done")
    assert out.extracted == {"user": "bob", "id": "", "initial": "b"}
    assert one(p, "no match here").extracted == {}


def test_regex_source_number_and_missing() -> None:
    p = pipeline("""
- json: {expressions: {n: n}}
- regex: {expression: '^(?P<int>\\d+)', source: n}
- regex: {expression: '(?P<z>.)', source: missing}
""")
    out = one(p, '{"n": 42}')
    assert out.extracted["int"] == "42"
    assert "z" not in out.extracted


def test_regex_uses_re2_and_refuses_bad_config() -> None:
    with pytest.raises(ConfigError, match=r"regex.expression: could not compile regular expression"):
        pipeline("- regex: {expression: '(?P<a>x)(?=y)'}")  # lookahead: not RE2
    assert one(pipeline("- regex: {expression: '(x)'}"), "x").extracted == {}  # no named group: accepted
    with pytest.raises(ConfigError, match=r"regex.source: empty source"):
        pipeline("- regex: {expression: '(?P<a>x)', source: ''}")
    with pytest.raises(ConfigError, match=r"regex.expression: expression is required"):
        pipeline("- regex: {}")


# --- replace ---------------------------------------------------------------------------------------

def test_replace_groups_in_line_with_template() -> None:
    p = pipeline("""
- replace:
    expression: '(\\d{2}\\.\\d{2}\\.\\d{2}\\.\\d{2}) - (?P<user>\\S+)'
    replace: '{{ .Value | ToUpper }}'
""")
    out = one(p, "11.11.11.11 - frank 12.12.12.12 - joe")
    assert out.line == "11.11.11.11 - FRANK 12.12.12.12 - JOE"
    assert out.extracted["user"] == "FRANK"  # the replacement of the first match's group


def test_replace_leaves_a_group_adjacent_to_the_previous_one() -> None:
    p = pipeline("- replace: {expression: '(a)(b)(c)', replace: 'X'}")
    assert one(p, "abc abc").line == "XbX XbX"


def test_replace_empty_replacement_and_source() -> None:
    p = pipeline("""
- regex: {expression: 'pw=(?P<pw>\\S+)'}
- replace: {expression: '(secret)', source: pw}
- replace: {expression: 'pw=(\\S+)', replace: '****'}
""")
    out = one(p, "login pw=mysecret ok")
    assert out.extracted["pw"] == "my"
    assert out.line == "login pw=**** ok"
    unchanged = one(p, "nothing to hide")
    assert unchanged.line == "nothing to hide"


def test_replace_refuses_empty_source() -> None:
    with pytest.raises(ConfigError, match=r"replace.source: empty source in replace stage"):
        pipeline("- replace: {expression: '(a)', source: ''}")


def test_replace_template_sees_extracted_values() -> None:
    p = pipeline("""
- regex: {expression: 'user=(?P<user>\\w+)'}
- replace: {expression: 'id=(\\d+)', replace: '{{ .user }}-{{ .Value }}'}
""")
    assert one(p, "user=ann id=7").line == "user=ann id=ann-7"


# --- template --------------------------------------------------------------------------------------

def test_template_sets_removes_and_creates() -> None:
    p = pipeline("""
- regex: {expression: 'level=(?P<level>\\w+)'}
- template: {source: level, template: '{{ ToUpper .Value }}'}
- template: {source: new, template: '{{ .level }}/{{ .Entry }}'}
- template: {source: level2, template: '{{ .level }}'}
- template: {source: level2, template: '{{ if eq .Value "x" }}x{{ end }}'}
- template: {source: empty}
""")
    out = one(p, "level=warn")
    assert out.extracted["level"] == "WARN"
    assert out.extracted["new"] == "WARN/level=warn"
    assert "level2" not in out.extracted  # an empty output removes the value
    assert "empty" not in out.extracted


def test_template_refuses_bad_config() -> None:
    with pytest.raises(ConfigError, match=r"template.source: template source value is required"):
        pipeline("- template: {template: x}")
    with pytest.raises(ConfigError, match=r"template.template: could not compile template"):
        pipeline("- template: {source: a, template: '{{ nosuchfunc .Value }}'}")


def test_template_missing_keys_and_promtails_own_functions() -> None:
    p = pipeline("""
- regex: {expression: 'user=(?P<user>\\w+)'}
- template: {source: shown, template: '[{{ .nothing }}]'}
- template: {source: upper, template: '{{ ToUpper .nothing }}'}
- template: {source: hashed, template: '{{ Hash "salt" .user }}'}
- template: {source: sha2, template: '{{ Sha2Hash "salt" .user }}'}
""")
    out = one(p, "user=alice")
    assert out.extracted["shown"] == "[<no value>]"    # Go's default for a missing map key
    assert "upper" not in out.extracted                # an invalid value for ToUpper: left alone
    assert out.extracted["hashed"] == hashlib.sha3_256(b"saltalice").hexdigest()
    assert out.extracted["sha2"] == hashlib.sha256(b"saltalice").hexdigest()
    with pytest.raises(ConfigError, match='function "__line__" not defined'):
        pipeline("- template: {source: a, template: '{{ __line__ }}'}")
    with pytest.raises(TemplateSyntaxError, match='function "Hash" not defined'):   # not in LogQL's line_format
        compile_template('{{ Hash "s" .a }}')


# --- output, decolorize ----------------------------------------------------------------------------

def test_output_replaces_line_or_leaves_it() -> None:
    p = pipeline("""
- json: {expressions: {msg: message, n: n}}
- output: {source: msg}
""")
    assert one(p, '{"message":"hello"}').line == "hello"
    assert one(p, '{"other":1}').line == '{"other":1}'  # msg is null: not a string
    q = pipeline("- json: {expressions: {n: n}}\n- output: {source: n}")
    assert one(q, '{"n": 1.5}').line == "1.5"
    with pytest.raises(ConfigError, match=r"output.source: output source value is required"):
        pipeline("- output: {}")


def test_decolorize() -> None:
    p = pipeline("- decolorize:")
    assert one(p, "\x1b[31mred\x1b[0m and \x1b[1;32mgreen\x1b[0m").line == "red and green"


# --- multiline -------------------------------------------------------------------------------------

def test_multiline_blocks_per_stream() -> None:
    p = pipeline("- multiline: {firstline: '^\\[\\d+\\]', max_wait_time: 3s}")
    a, b = {"pod": "a"}, {"pod": "b"}
    assert p.process(entry("[1] start", a, ts=T0)) == []
    assert p.process(entry("  at one", a, ts=T0 + 1)) == []
    assert p.process(entry("[9] other", b, ts=T0 + 2)) == []
    assert p.process(entry("  at two", a, ts=T0 + 3)) == []
    [block] = p.process(entry("[2] next", a, ts=T0 + 4))
    assert block.line == "[1] start\n  at one\n  at two"
    assert block.ts == T0 and block.labels == a
    assert p.flush(time.time_ns()) == []
    late = p.flush(time.time_ns() + 4 * 10**9)
    assert sorted(e.line for e in late) == ["[2] next", "[9] other"]
    assert p.flush(time.time_ns() + 10 * 10**9) == []


def test_multiline_passes_lines_before_the_first_start_and_caps_blocks() -> None:
    p = pipeline("- multiline: {firstline: '^START', max_lines: 3}")
    [orphan] = p.process(entry("orphan"))  # no block seen yet in this stream: passes through
    assert orphan.line == "orphan"
    assert p.process(entry("START 1", ts=T0 + 1)) == []
    assert p.process(entry("a")) == []
    [full] = p.process(entry("b"))
    assert full.line == "START 1\na\nb" and full.ts == T0 + 1
    # once the stream has a block, continuation lines open a new block with the last start's time
    assert p.process(entry("c", ts=T0 + 9)) == []
    [rest] = p.flush(time.time_ns() + 4 * 10**9)
    assert (rest.line, rest.ts) == ("c", T0 + 1)


def test_multiline_through_later_stages() -> None:
    p = pipeline("""
- multiline: {firstline: '^START'}
- regex: {expression: '(?s)^START (?P<id>\\d+).*end$'}
""")
    p.process(entry("START 5"))
    p.process(entry("end"))
    [out] = p.flush(time.time_ns() + 5 * 10**9)
    assert out.extracted == {"id": "5"}


def test_multiline_refuses_bad_config() -> None:
    with pytest.raises(ConfigError, match=r"multiline.firstline: multiline stage config must define `firstline`"):
        pipeline("- multiline: {max_lines: 2}")
    with pytest.raises(ConfigError, match=r"multiline.max_wait_time: multiline stage `max_wait_time` parse error"):
        pipeline("- multiline: {firstline: x, max_wait_time: soon}")
    with pytest.raises(ConfigError, match=r"multiline.max_line: unknown field"):
        pipeline("- multiline: {firstline: x, max_line: 2}")


def test_stage_names_are_registered() -> None:
    names = set(stages.builders())
    assert {"cri", "docker", "json", "logfmt", "regex", "replace", "template", "timestamp", "output",
            "decolorize", "multiline"} <= names


_JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                            lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(st.sampled_from(["a", "b", "c_1"]), inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES, st.sampled_from(["a", "b", "a.b", "a.b.c_1", "c_1.a", "a.a.a"]))
def test_dotted_json_expressions_walk_as_jmespath(data: object, expr: str) -> None:
    assert _jmespath_search(expr)(data) == jmespath.search(expr, data)


# --- what is held, and where its lines came from ---------------------------------------------------

def _from(origin: str, line: str, labels: dict[str, str] | None = None) -> Entry:
    e = entry(line, labels)
    e.origins = [origin]
    return e


def test_held_lines_name_their_origins_until_released() -> None:
    p = pipeline("- cri: {}\n- match: {selector: '{job=\"x\"}', stages: [{multiline: {firstline: '^\\[', max_wait_time: 1s}}]}")
    assert p.process(_from("r1", "2019-05-07T18:57:50Z stdout P [1] a")) == []      # a CRI partial
    assert p.held_origins() == ["r1"]
    assert p.process(_from("r2", "2019-05-07T18:57:51Z stdout F b")) == []          # opens a block (nested)
    assert p.held_origins() == ["r1", "r2"]
    assert p.process(_from("r3", "2019-05-07T18:57:52Z stdout F  c")) == []
    [block] = p.process(_from("r4", "2019-05-07T18:57:53Z stdout F [2] d"))        # releases the block
    assert block.line == "[1] ab\n c" and block.origins == ["r1", "r2", "r3"]
    assert p.held_origins() == ["r4"]
    [last] = p.flush(time.time_ns() + 2 * 10**9)
    assert last.origins == ["r4"] and p.held_origins() == []


def test_joining_never_changes_a_shared_origins_list() -> None:
    shared = ["r1"]
    p = pipeline("- cri: {}")
    first, second = entry("2019-05-07T18:57:50Z stdout P x"), entry("2019-05-07T18:57:51Z stdout F y")
    first.origins = second.origins = shared
    p.process(first)
    [joined] = p.process(second)
    assert joined.origins == ["r1", "r1"] and shared == ["r1"]
