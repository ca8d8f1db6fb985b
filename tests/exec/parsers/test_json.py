"""`| json`: Loki's parser tests' cases and the scanner's edge cases, each line run on its own and
all in one batch (the fast path and the scanner must agree with each other and with Loki)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lokiarrow.errors import ParseError
from lokiarrow.exec.parsers.json import _fields_scanned, decode_members, parse_path
from lokiarrow.logql import ast
from tests.exec.parsers.helpers import run, run_one

JSON = ast.JsonParser()
OBJ = "Value looks like object, but can't find closing '}' symbol"

ALL_FIELDS = [
    ("multi depth", '{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}}}', set(),
     {"app": "foo", "namespace": "prod", "pod_uuid": "foo", "pod_deployment_ref": "foobar"}),
    ("collisions", '{"app":"bar","namespace":"prod","pod":{"uuid":"bar","deployment":{"ref":"foobar"}}}',
     {"app", "pod_uuid"},
     {"app_extracted": "bar", "namespace": "prod", "pod_uuid_extracted": "bar", "pod_deployment_ref": "foobar"}),
    ("numbers as written", '{"counter":1, "price": {"_net_":5.56909}, "f": 1.50, "e": 1e3, "z": -0, "big": 123456789012345678901234}',
     set(), {"counter": "1", "price__net_": "5.56909", "f": "1.50", "e": "1e3", "z": "-0",
             "big": "123456789012345678901234"}),
    ("booleans, null, arrays", '{"t":true,"f":false,"n":null,"a":[1,{"x":1}],"o":{}}', set(),
     {"t": "true", "f": "false"}),
    ("blank key prefix", '{" ": {"foo":"bar"}}', set(), {"foo": "bar"}),
    ("blank nested key", '{" ": {" ":"bar"}}', set(), {"": "bar"}),
    ("blank top-level key skipped", '{" ":"bar","":"x"}', set(), {}),
    ("escapes", r'{"counter":1,"foo":"foo\\\"bar","u":"\u00e9\ud83d\ude00","t":"a\tb\/"}', set(),
     {"counter": "1", "foo": 'foo\\"bar', "u": "é😀", "t": "a\tb/"}),
    ("U+FFFD becomes a space", '{"foo":"\ufffd","bar":"\\ufffd"}', set(), {"foo": " ", "bar": " "}),
    ("lone surrogate gives empty", r'{"a":"\ud800","b":"x\udc00y","c":1}', set(), {"a": "", "b": "", "c": "1"}),
    ("bad key replaced", '{"cou-nter":1,"a.b-c":2,"1st":3}', set(), {"cou_nter": "1", "a_b_c": "2", "_1st": "3"}),
    ("nested bad key, trailing text ignored", '{"foo":{"cou-nter":1}}"', set(), {"foo_cou_nter": "1"}),
    ("first of two equal keys wins", '{"a":1,"a":2,"b":{"c":1},"b_c":2}', set(), {"a": "1", "b_c": "1"}),
    ("sanitised alike: first wins", '{"a.b":"x","a_b":"y"}', set(), {"a_b": "x"}),
    ("collision then its suffixed name", '{"app":"x","app_extracted":"y"}', {"app"}, {"app_extracted": "x"}),
    ("raw control character accepted", '{"a":"x\ty\u0001"}', set(), {"a": "x\ty\u0001"}),
    ("lenient number", '{"a":01,"b":-x}', set(), {"a": "01", "b": "-x"}),
    ("unicode keys and values", '{"ключ":"значение","msg":"ünïcode ✓"}', set(), {"____": "значение", "msg": "ünïcode ✓"}),
    ("whitespace around", ' \n{ "a" : "b" } ', set(), {"a": "b"}),
    ("empty object", "{}", set(), {}),
    # faults: labels read before the fault stay
    ("not json", "not json: {broken", set(), {"__error__": "JSONParserErr", "__error_details__": OBJ}),
    ("empty line", "", set(), {"__error__": "JSONParserErr", "__error_details__": OBJ}),
    ("array line", "[1,2]", set(), {"__error__": "JSONParserErr", "__error_details__": OBJ}),
    ("unclosed", '{"a":1,"b":"x"', set(), {"a": "1", "b": "x", "__error__": "JSONParserErr",
                                             "__error_details__": "Value is array, but can't find closing ']' symbol"}),
    ("bad literal", '{"a":1, "b":tru}', set(), {"a": "1", "__error__": "JSONParserErr", "__error_details__": "Unknown value type"}),
    ("NaN", '{"a":NaN}', set(), {"__error__": "JSONParserErr", "__error_details__": "Unknown value type"}),
    ("object without quotes", "{n}", set(), {"__error__": "JSONParserErr", "__error_details__": OBJ}),
    ("missing value", '{"a":', set(), {"__error__": "JSONParserErr", "__error_details__": "Malformed JSON error"}),
    ("unterminated string", '{"a":"x', set(), {"__error__": "JSONParserErr",
                                                "__error_details__": "Value is string, but can't find closing '\"' symbol"}),
    ("broken nested object", '{"a":1,"b":{"c":2,"d":x}}', set(),
     {"a": "1", "b_c": "2", "__error__": "JSONParserErr", "__error_details__": "Unknown value type"}),
    ("bad escape in key", r'{"a\q":1}', set(), {"__error__": "JSONParserErr",
                                                 "__error_details__": "Encountered an invalid escape sequence in a string"}),
    ("missing colon", '{"a" 1}', set(), {"__error__": "JSONParserErr", "__error_details__": "Malformed JSON error"}),
]


@pytest.mark.parametrize(("name", "line", "existing", "want"), ALL_FIELDS, ids=[c[0] for c in ALL_FIELDS])
def test_all_fields(name: str, line: str, existing: set[str], want: dict[str, str]) -> None:
    assert run_one(JSON, line, existing) == want


def test_batch_matches_single_lines() -> None:
    lines = [c[1] for c in ALL_FIELDS if not c[2]]
    got = run(JSON, [*lines, None])
    assert got == [run_one(JSON, line) for line in lines] + [{}]


TEST_LINE = ('{"app":"foo","field with space":"value","field with ÜFT8👌":"value","null_field":null,'
             '"bool_field":false,"namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar", '
             '"params": [1,2,3,"string_value"]}}}')

SELECTED = [
    ("single field", {"app": "app"}, set(), {"app": "foo"}),
    ("alternate syntax", {"test": '["field with space"]'}, set(), {"test": "value"}),
    ("utf8", {"utf8": '["field with ÜFT8👌"]'}, set(), {"utf8": "value"}),
    ("nested field", {"uuid": "pod.uuid"}, set(), {"uuid": "foo"}),
    ("nested alternate 1", {"uuid": 'pod["uuid"]'}, set(), {"uuid": "foo"}),
    ("nested alternate 2", {"uuid": '["pod"]["uuid"]'}, set(), {"uuid": "foo"}),
    ("nested alternate 3", {"uuid": '["pod"].uuid'}, set(), {"uuid": "foo"}),
    ("array element", {"param": "pod.deployment.params[0]"}, set(), {"param": "1"}),
    ("array string element", {"param": "pod.deployment.params[3]"}, set(), {"param": "string_value"}),
    ("array index out of range", {"param": "pod.deployment.params[9]"}, set(), {"param": ""}),
    ("empty key", {"undefined": 'pod[""]'}, set(), {"undefined": ""}),
    ("key on an array", {"param": 'pod.deployment.params[""]'}, set(), {"param": ""}),
    ("full array as written", {"params": "pod.deployment.params"}, set(), {"params": '[1,2,3,"string_value"]'}),
    ("full object as written", {"deployment": "pod.deployment"}, set(),
     {"deployment": '{"ref":"foobar", "params": [1,2,3,"string_value"]}'}),
    ("matching nothing", {"nope": "pod.nope"}, set(), {"nope": ""}),
    ("null is empty", {"nf": "null_field"}, set(), {"nf": ""}),
    ("boolean", {"bool": "bool_field"}, set(), {"bool": "false"}),
    ("label override", {"uuid": "pod.uuid"}, {"uuid"}, {"uuid_extracted": "foo"}),
    ("not found and shadowing: nothing", {"uuid": "will.not.work"}, {"uuid"}, {}),
]


@pytest.mark.parametrize(("name", "exprs", "existing", "want"), SELECTED, ids=[c[0] for c in SELECTED])
def test_selected_fields(name: str, exprs: dict[str, str], existing: set[str], want: dict[str, str]) -> None:
    node = ast.JsonParser(tuple(ast.LabelExtraction(k, v) for k, v in exprs.items()))
    assert run_one(node, TEST_LINE, existing) == want


@pytest.mark.parametrize(("line", "want"), [
    ("{}", {"uuid": ""}),
    ("invalid json", {"__error__": "JSONParserErr"}),  # no details, as in Loki
    ("", {}),  # Loki leaves an empty line alone
    ('{"pod":{"uuid":1.50}}', {"uuid": "1.50"}),
    ('{"pod":{"uuid":"a"},"pod":{"uuid":"b"}}', {"uuid": "a"}),
    ('{"pod":{"uuid":"a"} trailing', {"uuid": "a"}),
    ('{"pod":{"uuid":"a\\ud800"}}', {"uuid": ""}),
    ('{"pod":{"uuid":tru}}', {"uuid": "", "__error__": "JSONParserErr", "__error_details__": "Unknown value type"}),
])
def test_selected_edge_lines(line: str, want: dict[str, str]) -> None:
    assert run_one(ast.JsonParser((ast.LabelExtraction("uuid", "pod.uuid"),)), line) == want


@pytest.mark.parametrize(("expression", "path"), [
    ("a", ("a",)), ("a.b_c", ("a", "b_c")), ("a[0]", ("a", 0)), ('["a b"]', ("a b",)),
    ('a["b"][2].c', ("a", "b", 2, "c")), (" a . b ", ("a", "b")),
])
def test_parse_path(expression: str, path: tuple[str | int, ...]) -> None:
    assert parse_path(expression) == path


@pytest.mark.parametrize("expression", ["field with space", '"pod"]', '["pod"', '["pod""uuid"]', "pod..uuid",
                                        "0", "a.[0]", ".a", "a."])
def test_parse_path_errors(expression: str) -> None:
    with pytest.raises(ParseError, match=r"cannot parse expression \["):
        parse_path(expression)


# Random valid JSON objects: the fast decoder and the scanner must give the same labels.
_keys = st.text(alphabet=st.sampled_from("ab_.- 1é"), max_size=4)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**25, 10**25),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(st.tuples(_keys, inner), max_size=4)), max_leaves=12)


def _dump(value: object) -> str:
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dump(v) for k, v in value) + "}"  # type: ignore[misc]
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_keys, _values), max_size=6), st.sets(st.sampled_from(["a", "b", "a_b", "_1"])))
def test_fast_path_agrees_with_scanner(members: list[tuple[str, object]], existing: set[str]) -> None:
    line = "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dump(v) for k, v in members) + "}"
    assert decode_members(line) is not None
    scanned: dict[str, str] = {}
    assert _fields_scanned(line.encode(), scanned, existing) is None
    assert run_one(JSON, line, existing) == scanned


_shape_keys = st.sampled_from(["a", "b", "a_b", "a-b", "a.b", "", "_1"])  # few names: repeats, collisions
_shape_values = st.one_of(st.integers(-99, 99).map(str), st.text(max_size=3), _values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_shape_keys, max_size=5), min_size=1, max_size=3),
       st.lists(st.tuples(st.integers(0, 2), st.lists(_shape_values, min_size=5, max_size=5)), max_size=8),
       st.sets(st.sampled_from(["a", "b", "a_b", "_1"])))
def test_batches_of_shared_shapes_agree_with_the_scanner(shapes: list[list[str]],
                                                         rows: list[tuple[int, list[object]]],
                                                         existing: set[str]) -> None:
    """Lines with the same keys in the same order are filled a key at a time: values of mixed
    kinds in one key, repeated keys and names that collide once sanitised must come out as the
    scanner reads each line alone."""
    lines = []
    for shape, values in rows:
        keys = shapes[shape % len(shapes)]
        lines.append("{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dump(v)
                                    for k, v in zip(keys, values, strict=False)) + "}")
    want = []
    for line in lines:
        scanned: dict[str, str] = {}
        assert _fields_scanned(line.encode(), scanned, existing) is None
        want.append(scanned)
    assert run(JSON, lines, existing) == want
