"""`| unpack`: Loki's parser tests' cases; the new line comes back in `Parsed.line`."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lokiarrow.exec.parsers import parse
from lokiarrow.logql import ast
from tests.exec.parsers.helpers import labels_of

NOT_OBJECT = {"__error__": "JSONParserErr", "__error_details__": "expecting json object(6), but it is not"}
PACKED = '{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}'
CASES = [
    ("only string members", PACKED, set(), {"app": "foo", "namespace": "prod"}, "some message"),
    ("not an object", '"app":"foo","_entry":"x"', set(), NOT_OBJECT, '"app":"foo","_entry":"x"'),
    ("array", '["foo","bar"]', set(), NOT_OBJECT, '["foo","bar"]'),
    ("empty line", "", set(), {}, ""),
    ("collision", PACKED, {"app"}, {"app_extracted": "foo", "namespace": "prod"}, "some message"),
    ("no packed entry: nothing", '{"bar":1,"app":"foo","namespace":"prod"}', set(), {},
     '{"bar":1,"app":"foo","namespace":"prod"}'),
    ("escaped quotes in the entry", '{"_entry":"a \\"quoted\\" b=\\"c\\""}', set(), {}, 'a "quoted" b="c"'),
    ("invalid key names", '{"foo.bar":"10ms","test-dash":"foo","_entry":"some message"}', {"foo"},
     {"foo_bar": "10ms", "test_dash": "foo"}, "some message"),
    ("suffix decided on the key as written", '{"a.b":"x","_entry":"m"}', {"a_b"}, {"a_b": "x"}, "m"),
    ("last of two equal keys wins", '{"a":"1","a":"2","_entry":"m1","_entry":"m2"}', set(), {"a": "2"}, "m2"),
    ("trailing text ignored", '{"a":"1","_entry":"m"} tail', set(), {"a": "1"}, "m"),
    ("broken json", '{"a":"1","_entry":"m"', set(),
     {"__error__": "JSONParserErr", "__error_details__": "Value is array, but can't find closing ']' symbol"},
     '{"a":"1","_entry":"m"'),
    ("bad escape in the entry", '{"_entry":"bad \\q"}', set(),
     {"__error__": "JSONParserErr", "__error_details__": "Encountered an invalid escape sequence in a string"},
     '{"_entry":"bad \\q"}'),
    ("U+FFFD: a space in labels, kept in the entry", '{"a":"\ufffd","_entry":"\ufffd"}', set(), {"a": " "}, "\ufffd"),
]


@pytest.mark.parametrize(("name", "line", "existing", "want", "new_line"), CASES, ids=[c[0] for c in CASES])
def test_unpack(name: str, line: str, existing: set[str], want: dict[str, str], new_line: str) -> None:
    parsed = parse(pa.array([line, None]), ast.UnpackParser(), existing)
    assert labels_of(parsed, 0) == want
    assert parsed.line is not None
    assert parsed.line.to_pylist() == [new_line, None]
    assert labels_of(parsed, 1) == {}
