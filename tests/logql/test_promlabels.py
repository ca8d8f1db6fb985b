"""Push label text, parsed as Loki's ParseLabels (Prometheus' metric syntax and error texts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lokiarrow.errors import ParseError
from lokiarrow.logql.parser import parse_label_pairs, parse_labels
from lokiarrow.model import go_quote, labels_string


@pytest.mark.parametrize(("text", "labels"), [
    ('{a="b", c="d"}', {"a": "b", "c": "d"}),
    ('{ a = "b" ,c="d", }', {"a": "b", "c": "d"}),
    ("{a='b', c=`d\\n`}", {"a": "b", "c": "d\\n"}),
    ('{a="tab\\t \\"q\\" \\u00e9"}', {"a": 'tab\t "q" é'}),
    ('{a="b", empty=""}', {"a": "b"}),
    ("{}", {}),
    ("", {}),
    ('metric{a="b"}', {"__name__": "metric", "a": "b"}),
    ('{"utf8.name"="x", "quoted_metric"}', {"utf8.name": "x", "__name__": "quoted_metric"}),
    ('{sum="x", by="y", json="z"}', {"sum": "x", "by": "y", "json": "z"}),
    ('{a="b"} # trailing comment', {"a": "b"}),
])
def test_labels(text: str, labels: dict[str, str]) -> None:
    assert parse_labels(text) == labels


@pytest.mark.parametrize(("text", "message"), [
    ('{ab"', "1:4: parse error: unterminated quoted string"),
    ('{a="b"', "1:7: parse error: unexpected end of input inside braces"),
    ("{a=}", '1:4: parse error: unexpected "}" in label set, expected string'),
    ("{a}", '1:3: parse error: unexpected "}" in label set, expected "="'),
    ('{a=~"b"}', '1:3: parse error: unexpected <op:=~> in label set, expected "="'),
    ('{a="b" c="d"}', '1:8: parse error: unexpected identifier "c" in label set, expected "," or "}"'),
    ('{a="b",,}', '1:8: parse error: unexpected "," in label set, expected identifier or "}"'),
    ('{a="b"} x', '1:9: parse error: unexpected identifier "x"'),
    ('{a="b"}}', "1:8: parse error: unexpected character: '}'"),
    ('a="b"', '1:2: parse error: unexpected "="'),
    ('{a="\\q"}', "1:4: parse error: unknown escape sequence U+0071 'q'"),
    ('{a="b",\n c=}', '2:4: parse error: unexpected "}" in label set, expected string'),
    ('{é="b"}', "1:2: parse error: unexpected character inside braces: 'é'"),
    ('{a="é", b=}', '1:12: parse error: unexpected "}" in label set, expected string'),  # columns count bytes
])
def test_label_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_labels(text)
    assert info.value.message == message
    assert info.value.status == 400


def test_pairs_keep_duplicates_sorted() -> None:
    assert parse_label_pairs('{b="1", a="2", b="3"}') == [("a", "2"), ("b", "1"), ("b", "3")]


names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
values = st.text(min_size=1).filter(lambda v: "\ufffd" not in v)  # Prometheus refuses U+FFFD in strings


@given(st.dictionaries(names, values, max_size=5))
def test_canonical_label_text_round_trips(labels: dict[str, str]) -> None:
    assert parse_labels(labels_string(labels)) == labels
    assert parse_labels("{" + ",".join(f"{k}={go_quote(v)}" for k, v in labels.items()) + "}") == labels
