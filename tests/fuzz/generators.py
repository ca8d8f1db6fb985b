"""Hostile inputs for every decoder and parser that takes user text, and the contract each must keep.

Each target is a pair: `make(rnd)` builds one input from a `random.Random` (near-valid: a valid
input assembled from grammar pieces, then maybe mutated: characters swapped, cut, repeated, or
random bytes spliced in) and `check(input)` runs the code under test and raises `Crash` when it
breaks its contract (an exception outside the documented ones). The hypothesis tests in this
folder drive `make` with hypothesis' `randoms()`; `bench/fuzz.py` drives it with plain seeds.
"""

from __future__ import annotations

import atexit
import gzip
import json
import random
import shutil
import string
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import cramjam
import yaml

from lokiarrow.agent import stages
from lokiarrow.agent.config import parse as parse_agent_config
from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.config import Ingester, Limits
from lokiarrow.errors import LokiError
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.ingest.distributor import prepare_push
from lokiarrow.logql.parser import parse_expr
from lokiarrow.logql.template import TemplateExecError, compile_template
from lokiarrow.store.store import Store
from lokiarrow.wire import logproto
from lokiarrow.wire.otlp import decode_otlp
from tests.store.helpers import entries

S = 10**9
T0 = 1_700_000_000 * S


class Crash(AssertionError):
    """An input broke its target's contract."""


@dataclass(frozen=True)
class Target:
    name: str
    make: Callable[[random.Random], Any]
    check: Callable[[Any], None]


# ---- mutations --------------------------------------------------------------------------------------
_NOISE = ["\x00", "\\", '"', "`", "'", "{", "}", "(", ")", "[", "]", "|", "=", "~", "!", ",", "\n", "é", "\ud7ff",
          "\U0001f600", "\xff", "$", ".", "-", "+", "0", "9" * 30, "1e309", "-0", "NaN", "Inf", " "]


def mutate_text(rnd: random.Random, text: str, rate: float = 0.5) -> str:
    """`text` unchanged half the time, else with a few random edits."""
    if rnd.random() > rate:
        return text
    chars = list(text)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(5)
        at = rnd.randint(0, len(chars))
        if op == 0 and chars:
            del chars[min(at, len(chars) - 1)]
        elif op == 1:
            chars.insert(at, rnd.choice(_NOISE))
        elif op == 2:
            chars = chars[:at]
        elif op == 3 and chars:
            piece = chars[at:at + rnd.randint(1, 8)]
            chars[at:at] = piece * rnd.randint(1, 20)
        else:
            chars.insert(at, chr(rnd.randint(0, 0x2FF)))
    return "".join(chars)


def mutate_bytes(rnd: random.Random, data: bytes, rate: float = 0.5) -> bytes:
    if rnd.random() > rate:
        return data
    out = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(4)
        at = rnd.randint(0, len(out))
        if op == 0 and out:
            out[min(at, len(out) - 1)] = rnd.randrange(256)
        elif op == 1:
            out[at:at] = rnd.randbytes(rnd.randint(1, 8))
        elif op == 2:
            del out[at:]
        elif out:
            del out[min(at, len(out) - 1)]
    return bytes(out)


def _word(rnd: random.Random, alphabet: str = string.ascii_letters + "_") -> str:
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 6)))


def _text(rnd: random.Random) -> str:
    return rnd.choice(["", "a", "aaaa", "error", "x=1 y=2", '{"a":1}', "é\u2028", "\x00", "a" * 50,
                       _word(rnd), "".join(chr(rnd.randint(0, 0x3FF)) for _ in range(rnd.randint(0, 8)))])


# ---- LogQL ------------------------------------------------------------------------------------------
_LABELS = ["app", "level", "env", "__name__", "x", "job", "foo_bar"]
_STRINGS = ['"a"', '"error"', '""', '`x.*`', '"a|b"', '"(a+)+$"', '"[a-"', '"\\\\"', '"\\x41"', '"\\x99"', '"a\\xff"', '"é"', '"\\u00e9"']


def _selector(rnd: random.Random) -> str:
    parts = [f"{rnd.choice(_LABELS)}{rnd.choice(['=', '!=', '=~', '!~'])}{rnd.choice(_STRINGS)}"
             for _ in range(rnd.randint(1, 3))]
    if rnd.random() < 0.7:
        parts[0] = rnd.choice(['app="a"', 'app=~"a|b"', 'level!=""'])
    return "{" + ", ".join(parts) + "}"


def _stage(rnd: random.Random) -> str:
    return rnd.choice([
        f'|= {rnd.choice(_STRINGS)}', f'!= {rnd.choice(_STRINGS)}', f'|~ {rnd.choice(_STRINGS)}',
        f'!~ {rnd.choice(_STRINGS)}', '|> "<_> <x>"', f'|= ip({rnd.choice(_STRINGS)})', "| json", "| logfmt",
        "| logfmt --strict", '| json a="b.c", d="e[0]"', '| regexp "(?P<a>\\\\w+)"', '| pattern "<a> <_>"',
        "| unpack", "| line_format \"{{.app}} {{ __line__ | upper }}\"", '| label_format a=app, b="{{.x}}"',
        f"| {rnd.choice(_LABELS)} {rnd.choice(['=', '!=', '>', '<=', '=~'])} {rnd.choice(['1', '1.5', '10ms', '2KB', *_STRINGS])}",
        "| drop a, b", "| keep app", "| decolorize", "| __error__=\"\"", "| a > 1 or b < 2 and c = \"x\"",
        f"| line_format {rnd.choice(_STRINGS)}",
    ])


def _log_expr(rnd: random.Random) -> str:
    return _selector(rnd) + "".join(" " + _stage(rnd) for _ in range(rnd.randint(0, 4)))


def _metric_expr(rnd: random.Random, depth: int = 0) -> str:
    rng = rnd.choice(["1m", "5s", "0s", "1h30m", "1y", "99999999999h"])
    op = rnd.randrange(6 if depth < 3 else 2)
    if op == 0:
        fn = rnd.choice(["count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time"])
        return f"{fn}({_log_expr(rnd)} [{rng}])"
    if op == 1:
        fn = rnd.choice(["sum_over_time", "avg_over_time", "max_over_time", "quantile_over_time(0.9,",
                         "rate_counter", "stddev_over_time", "first_over_time", "last_over_time"])
        head = fn if fn.endswith(",") else fn + "("
        unwrap = rnd.choice(["x", "bytes(x)", "duration(x)", "duration_seconds(app)"])
        return f"{head}{_log_expr(rnd)} | unwrap {unwrap} [{rng}]){rnd.choice(['', ' by (app)', ' without (x)'])}"
    if op == 2:
        agg = rnd.choice(["sum", "avg", "min", "max", "count", "topk(2,", "bottomk(1,", "stddev", "sort"])
        head = agg if agg.endswith(",") else agg + "("
        return f"{head}{_metric_expr(rnd, depth + 1)}){rnd.choice(['', ' by (app)', ' without (level)'])}"
    if op == 3:
        bin_op = rnd.choice(["+", "-", "*", "/", "%", "^", "==", "> bool", "and", "or", "unless", "< on(app)",
                             "* ignoring(x) group_left(y)"])
        return f"{_metric_expr(rnd, depth + 1)} {bin_op} {_metric_expr(rnd, depth + 1)}"
    if op == 4:
        return rnd.choice(["1", "-2.5", "vector(1)", "0x10", "1e308 * 10", "NaN"])
    return f"label_replace({_metric_expr(rnd, depth + 1)}, \"dst\", \"$1\", \"app\", {rnd.choice(_STRINGS)})"


def make_logql(rnd: random.Random) -> str:
    text = _log_expr(rnd) if rnd.random() < 0.5 else _metric_expr(rnd)
    if rnd.random() < 0.05:   # deep nesting
        text = "sum(" * rnd.randint(50, 3000) + text + ")" * rnd.randint(0, 3000)
    return mutate_text(rnd, text)


def check_logql(text: str) -> None:
    try:
        parse_expr(text)
    except LokiError:
        pass
    except Exception as exc:
        raise Crash(f"parse_expr({text!r}) raised {type(exc).__name__}: {exc}") from exc


@cache
def _querier() -> Querier:
    folder = tempfile.mkdtemp(prefix="lokiarrow-fuzz-")
    atexit.register(shutil.rmtree, folder, True)
    store = Store(folder, Ingester())
    rows = [({"app": rnd_app, "level": lvl}, T0 + i * S, line)
            for i, (rnd_app, lvl, line) in enumerate(
                [("a", "info", "a" * 40), ("b", "error", 'x=1 y=2 level=warn'), ("a", "warn", '{"a":{"b":[1,2]},"x":"1.5"}'),
                 ("c", "", "é \x00 10ms 2KB"), ("b", "info", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab")] * 4)]
    store.tenant("t").push(entries(rows))
    return Querier(store, Limits())


def check_query(text: str) -> None:
    """Parse, compile and run against a small store: only LokiError may escape."""
    try:
        _querier().query_range("t", RangeRequest(text, T0 - 60 * S, T0 + 120 * S, limit=50, step_ns=15 * S))
    except LokiError:
        pass
    except Exception as exc:
        raise Crash(f"query_range({text!r}) raised {type(exc).__name__}: {exc}") from exc


# ---- push bodies ------------------------------------------------------------------------------------
def _label_json(rnd: random.Random) -> Any:
    return rnd.choice([{"app": "a"}, {"app": _text(rnd)}, {_text(rnd): "x"}, {}, {"a": 1}, {"a": None}, [], "x",
                       {"app": "a", "service_name": "s", "level": _text(rnd)}])


def _json_value(rnd: random.Random) -> Any:
    ts = rnd.choice([str(T0), str(T0 + rnd.randint(0, 10**12)), "0", "-1", "9" * 30, "1.5", "", T0, None, "x"])
    line = rnd.choice([_text(rnd), 5, None, ["x"]])
    value: list[Any] = [ts, line]
    if rnd.random() < 0.3:
        value.append(rnd.choice([{"k": "v"}, {"k": 1}, {"": ""}, [], "x", {"trace_id": _text(rnd)}]))
    if rnd.random() < 0.1:
        value = value[:rnd.randint(0, 3)] + ([1] if rnd.random() < 0.5 else [])
    return value


def make_push_json(rnd: random.Random) -> tuple[bytes, str, str | None]:
    doc: Any = {"streams": [{"stream": _label_json(rnd), "values": [_json_value(rnd) for _ in range(rnd.randint(0, 4))]}
                            for _ in range(rnd.randint(0, 3))]}
    if rnd.random() < 0.1:
        doc = rnd.choice([[], None, {"streams": None}, {"streams": {}}, {"streams": [1]}, "x", 1e309])
    body = mutate_bytes(rnd, json.dumps(doc, allow_nan=True).encode())
    return _encode(rnd, body, "application/json")


def make_push_protobuf(rnd: random.Random) -> tuple[bytes, str, str | None]:
    request = logproto.PushRequest()
    for _ in range(rnd.randint(0, 3)):
        stream = request.streams.add()
        stream.labels = rnd.choice(['{app="a"}', '{app="a", level="x"}', "", "{", '{a="\\x"}', "{app=a}",
                                    '{app="' + _text(rnd).replace('"', "") + '"}', _text(rnd)])
        for _ in range(rnd.randint(0, 4)):
            entry = stream.entries.add()
            entry.timestamp.seconds = rnd.choice([T0 // S, 0, -1, 2**62, -(2**62), rnd.randint(0, 2**40)])
            entry.timestamp.nanos = rnd.choice([0, 1, 999_999_999, -5])
            entry.line = _text(rnd)
            if rnd.random() < 0.3:
                pair = entry.structuredMetadata.add()
                pair.name, pair.value = rnd.choice([("trace_id", "abc"), ("", ""), ("a b", _text(rnd))])
    raw = mutate_bytes(rnd, request.SerializeToString(), 0.3)
    body = mutate_bytes(rnd, bytes(cramjam.snappy.compress_raw(raw)), 0.3)
    return _encode(rnd, body, rnd.choice(["application/x-protobuf", "", "text/plain"]))


def _encode(rnd: random.Random, body: bytes, content_type: str) -> tuple[bytes, str, str | None]:
    choice = rnd.randrange(6)
    if choice == 0:
        return mutate_bytes(rnd, gzip.compress(body, 1), 0.3), content_type, "gzip"
    if choice == 1:
        return zlib.compress(body)[2:-4], content_type, "deflate"
    if choice == 2:
        return body, content_type, rnd.choice(["snappy", "br", " gzip", "GZIP", "identity"])
    return body, content_type, None


def check_push(item: tuple[bytes, str, str | None]) -> None:
    body, content_type, encoding = item
    try:
        prepare_push("t", body, content_type, encoding, Limits(reject_old_samples=False), T0, legacy=False)
        prepare_push("t", body, content_type, encoding, Limits(), T0, legacy=True)
    except LokiError:
        pass
    except Exception as exc:
        raise Crash(f"prepare_push({item!r}) raised {type(exc).__name__}: {exc}") from exc


def make_otlp(rnd: random.Random) -> tuple[bytes, str, str | None]:
    record: dict[str, Any] = {"timeUnixNano": rnd.choice([str(T0), "x", -1, 2**70, None]),
                              "body": rnd.choice([{"stringValue": _text(rnd)}, {"intValue": "12"}, {"kvlistValue": {}},
                                                  {"arrayValue": {"values": [{"boolValue": True}]}}, {"doubleValue": 1e309}, 1]),
                              "attributes": [{"key": _text(rnd), "value": {"stringValue": "v"}}]}
    if rnd.random() < 0.3:
        record["traceId"] = rnd.choice(["00" * 16, "zz", "", "0" * 31])
    doc = {"resourceLogs": [{"resource": {"attributes": [{"key": rnd.choice(["service.name", "k8s.pod.name", _text(rnd)]),
                                                          "value": {"stringValue": _text(rnd)}}]},
                             "scopeLogs": [{"scope": {"name": _text(rnd)}, "logRecords": [record]}]}]}
    body = mutate_bytes(rnd, json.dumps(doc).encode(), 0.4)
    encoding = rnd.choice([None, None, "gzip", "zstd", "lz4"])
    if encoding == "gzip":
        body = gzip.compress(body, 1)
    elif encoding == "zstd":
        body = bytes(cramjam.zstd.compress(body))
    elif encoding == "lz4":
        body = bytes(cramjam.lz4.compress(body))
    return body, rnd.choice(["application/json", "application/x-protobuf"]), encoding


def check_otlp(item: tuple[bytes, str, str | None]) -> None:
    body, content_type, encoding = item
    try:
        decode_otlp(body, content_type, encoding, T0, discover_service_name=Limits().discover_service_name)
    except LokiError:
        pass
    except Exception as exc:
        raise Crash(f"decode_otlp({item!r}) raised {type(exc).__name__}: {exc}") from exc


# ---- Go templates -----------------------------------------------------------------------------------
_FUNCS = ["ToUpper", "ToLower", "upper", "lower", "trim", "trimPrefix \"a\"", "replace \"a\" \"b\"", "default \"d\"",
          "printf \"%d %s %v %q %x %08.3f\"", "len", "index .app 0", "substr 0 5", "trunc -3", "repeat 3", "unixEpoch",
          "toDateInZone \"2006\" \"UTC\"", "date \"2006-01-02\"", "add 1", "sub 1", "mul 2", "div 0", "mod 0",
          "regexReplaceAll \"(a+)+$\" \"x\"", "regexReplaceAllLiteral \"[\" \"x\"", "urlencode", "urldecode", "b64enc",
          "b64dec", "fromJson", "alignLeft 5", "alignRight 100000000", "count \"a\"", "contains \"a\"",
          "hasPrefix \"a\"", "int", "float64", "round 2", "ceil", "floor", "addf 1.5", "sprig", "nindent 2", "title",
          "abbrev 3", "bytes", "duration", "__line__", "unixToTime", "eq 1", "lt \"a\"", "not", "html", "js", "print"]


def make_template(rnd: random.Random) -> tuple[str, dict[str, str]]:
    pieces: list[str] = []
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.randrange(7)
        arg = rnd.choice([".app", ".level", ".missing", "__line__", "__timestamp__", '"a"', "1", "-1.5", "nil", "$",
                          "$x", ".", "true", '"\\x99"', "'\\xff'", "'a'"])
        if kind == 0:
            pieces.append(_text(rnd))
        elif kind == 1:
            pieces.append("{{ " + arg + "".join(f" | {rnd.choice(_FUNCS)}" for _ in range(rnd.randint(0, 3))) + " }}")
        elif kind == 2:
            pieces.append(f"{{{{ if {arg} }}}}x{{{{ else if eq {arg} \"b\" }}}}y{{{{ else }}}}z{{{{ end }}}}")
        elif kind == 3:
            pieces.append(f"{{{{ range $i, $v := {arg} }}}}{{{{ $v }}}}{{{{ break }}}}{{{{ end }}}}")
        elif kind == 4:
            pieces.append(f"{{{{ with $x := {arg} }}}}{{{{ $x | {rnd.choice(_FUNCS)} }}}}{{{{ end }}}}")
        elif kind == 5:
            pieces.append(f"{{{{- {rnd.choice(_FUNCS).split()[0]} {arg} {arg} -}}}}")
        else:
            pieces.append(f"{{{{ and {arg} ({rnd.choice(_FUNCS)} {arg}) }}}}")
    data = {"app": _text(rnd), "level": rnd.choice(["info", "1", "-2", "1e400", "2019-01-01T00:00:00Z", "", "NaN"])}
    return mutate_text(rnd, "".join(pieces), 0.4), data


def check_template(item: tuple[str, dict[str, str]]) -> None:
    text, data = item
    for promtail in (False, True):
        try:
            compile_template(text, promtail=promtail).render(data, "a line", T0)
        except (LokiError, TemplateExecError):
            pass
        except Exception as exc:
            raise Crash(f"template {text!r} (promtail={promtail}) raised {type(exc).__name__}: {exc}") from exc


# ---- Promtail configuration and pipeline stages -----------------------------------------------------
_STAGES: list[dict[str, Any]] = [
    {"json": {"expressions": {"lvl": "level", "msg": "", "nested": "a.b[0]"}}},
    {"logfmt": {"mapping": {"lvl": "level", "x": ""}}},
    {"regex": {"expression": "(?P<lvl>\\w+) (?P<msg>.*)"}},
    {"replace": {"expression": "(\\d+)", "replace": "N"}},
    {"template": {"source": "lvl", "template": "{{ .lvl | ToUpper }}{{ .Value }}"}},
    {"timestamp": {"source": "ts", "format": "RFC3339"}},
    {"timestamp": {"source": "lvl", "format": "Unix"}},
    {"timestamp": {"source": "msg", "format": "2006-01-02 15:04:05", "action_on_failure": "skip"}},
    {"output": {"source": "msg"}},
    {"labels": {"lvl": "", "msg": None}},
    {"static_labels": {"env": "dev"}},
    {"structured_metadata": {"nested": None}},
    {"labeldrop": ["env"]},
    {"labelallow": ["lvl", "job"]},
    {"tenant": {"source": "lvl"}},
    {"pack": {"labels": ["lvl"]}},
    {"match": {"selector": '{job="x"} |= "a"', "stages": [{"regex": {"expression": "(?P<x>a+)"}}]}},
    {"drop": {"expression": ".*debug.*"}},
    {"drop": {"longer_than": 20}},
    {"limit": {"rate": 10, "burst": 10, "drop": True}},
    {"sampling": {"rate": 0.5}},
    {"cri": {}}, {"docker": {}}, {"decolorize": {}},
    {"multiline": {"firstline": "^\\d", "max_lines": 3}},
]


def _wrong(rnd: random.Random, value: Any) -> Any:
    return rnd.choice([value, value, None, 1, -1, 1.5, "x", [], {}, [1, "a"], {"a": [1]}, True, "(?P<", "1e400",
                       "-1h", "99999999999999999999h", "{{", "\x00"])


def _mutate_config(rnd: random.Random, doc: Any, rate: float) -> Any:
    if isinstance(doc, dict):
        out = {k: _mutate_config(rnd, v, rate) for k, v in doc.items()}
        if out and rnd.random() < rate:
            key = rnd.choice(list(out))
            out[key] = _wrong(rnd, out[key])
        if rnd.random() < rate / 4:
            out[_word(rnd)] = 1
        return out
    if isinstance(doc, list):
        return [_mutate_config(rnd, v, rate) for v in doc]
    return doc


def make_promtail_config(rnd: random.Random) -> str:
    doc = {
        "server": {"http_listen_port": rnd.choice([9080, 0, -1, "x", 70000]), "log_level": rnd.choice(["info", "bad"])},
        "positions": {"filename": "/tmp/positions.yaml", "sync_period": rnd.choice(["10s", "x", 5])},
        "clients": [{"url": rnd.choice(["http://localhost:3100/loki/api/v1/push", "x", "", "ftp://a"]),
                     "batchwait": "1s", "batchsize": 1024, "tenant_id": "t",
                     "backoff_config": {"min_period": "1s", "max_retries": 3}}],
        "scrape_configs": [{"job_name": rnd.choice(["a", "", "b"]),
                            "static_configs": [{"targets": ["localhost"], "labels": {"job": "x", "__path__": "/tmp/*.log"}}],
                            "relabel_configs": [{"source_labels": ["__path__"], "regex": "(.*)", "target_label": "p",
                                                 "action": rnd.choice(["replace", "keep", "labelmap", "bad"])}],
                            "pipeline_stages": rnd.sample(_STAGES, rnd.randint(0, 4))}
                           for _ in range(rnd.randint(1, 2))],
        "limits_config": {"readline_rate_enabled": True, "readline_rate": 10, "max_line_size": "1KB"},
    }
    text = yaml.safe_dump(_mutate_config(rnd, doc, 0.2), sort_keys=False)
    return mutate_text(rnd, text, 0.2)


def check_promtail_config(text: str) -> None:
    try:
        parse_agent_config(text)
    except ConfigError as exc:
        if not isinstance(exc.path, str):
            raise Crash(f"ConfigError without a path for {text!r}") from exc
    except Exception as exc:
        raise Crash(f"agent config {text!r} raised {type(exc).__name__}: {exc}") from exc


def make_stage_input(rnd: random.Random) -> tuple[list[dict[str, Any]], list[str]]:
    """A valid pipeline (as YAML data) and lines to run through it."""
    config = rnd.sample(_STAGES, rnd.randint(1, 5))
    lines = [rnd.choice([_text(rnd), '{"level":"' + _text(rnd).replace('"', "") + '","ts":"2024-01-01T00:00:00Z","a":{"b":[1]}}',
                         "level=info msg=\"x y\" ts=1", "2019-05-07T18:57:50Z stdout F hello",
                         '{"log":"x\\n","stream":"stdout","time":"2019-01-01T00:00:00Z"}', "\x1b[31mred\x1b[0m",
                         "info 123 1700000000", "debug " + "a" * 30, "9 " + _text(rnd),
                         '{"level":"99999999999999999999","ts":"9999-99-99T99:99:99Z","a":{"b":["1e400"]}}',
                         "99999999999999999999999 x", "-1e400 " + _text(rnd), '{"ts":"-62135596801","level":1e400}'])
             for _ in range(rnd.randint(1, 6))]
    return config, lines


def check_stages(item: tuple[list[dict[str, Any]], list[str]]) -> None:
    config, lines = item
    try:
        pipeline = stages.build(Section({"pipeline_stages": config}, "").sections("pipeline_stages"))
    except ConfigError as exc:
        raise Crash(f"the valid pipeline {config!r} was refused: {exc}") from exc
    try:
        for line in lines:
            pipeline.process(Entry(labels={"job": "x"}, ts=T0, line=line))
        pipeline.flush(T0 + 3600 * S)
    except Exception as exc:
        raise Crash(f"pipeline {config!r} raised {type(exc).__name__} on {lines!r}: {exc}") from exc


TARGETS = {t.name: t for t in [
    Target("logql_parser", make_logql, check_logql),
    Target("logql_query", make_logql, check_query),
    Target("push_json", make_push_json, check_push),
    Target("push_protobuf", make_push_protobuf, check_push),
    Target("push_otlp", make_otlp, check_otlp),
    Target("template", make_template, check_template),
    Target("promtail_config", make_promtail_config, check_promtail_config),
    Target("pipeline_stages", make_stage_input, check_stages),
]}
