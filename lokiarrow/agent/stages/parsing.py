"""Promtail's parsing stages: each reads the line or an extracted value and sets extracted values,
the line, or the time. A stage whose `source` is missing from the extracted map, or whose input
does not parse, leaves the entry as it is (Promtail logs it at debug level and goes on)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jmespath
import jmespath.exceptions
import orjson
import re2

from lokiarrow.agent.entry import Entry
from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.agent.stages import Builder, Stateless
from lokiarrow.agent.stages.labelling import to_string
from lokiarrow.agent.stages.multiline import build_multiline
from lokiarrow.agent.stages.timestamps import TimestampStage, build_timestamp, parser_for
from lokiarrow.exec.parsers.decolorize import ANSI_PATTERN
from lokiarrow.exec.parsers.logfmt import scan
from lokiarrow.logql.template import Template, TemplateExecError, TemplateSyntaxError, compile_template
from lokiarrow.logql.template_time import UTC
from lokiarrow.model import QUIET_RE2, go_regex_error

CRI_PATTERN = re2.compile(r"^(?s)(?P<time>\S+?) (?P<stream>stdout|stderr) (?P<flags>\S+?) (?P<content>.*)$")
_CRI_STREAMS = frozenset(("stdout", "stderr"))
_RE2_SPACE = re.compile("[\t\n\f\r]")   # RE2's \s is [\t\n\f\r ]; the split handles " "
_ANSI = re2.compile(ANSI_PATTERN)
_MALFORMED = object()
_GO_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _input(entry: Entry, source: str | None) -> str | None:
    """The text a stage reads: the line, or the extracted `source` (None: skip the entry)."""
    if source is None:
        return entry.line
    if source not in entry.extracted:
        return None
    return to_string(entry.extracted[source])


def _strings(extracted: dict[str, Any]) -> dict[str, str]:
    return {k: s for k, v in extracted.items() if (s := to_string(v)) is not None}


def _source(sec: Section, problem: str) -> str | None:
    """An optional `source`, which must not be empty when given."""
    source = sec.string("source")
    if source == "":
        raise ConfigError(sec.at("source"), problem)
    return source


def _compile_re2(sec: Section, key: str) -> re2._Regexp:
    expr = sec.string(key)
    if not expr:
        raise ConfigError(sec.at(key), "expression is required")
    try:
        return re2.compile(expr, QUIET_RE2)
    except re2.error as exc:
        raise ConfigError(sec.at(key), f"could not compile regular expression: error parsing regexp: {go_regex_error(str(exc), expr)}") from None


def _template(sec: Section, key: str, text: str) -> Template:
    try:
        return compile_template(text, "pipeline_template", promtail=True)
    except TemplateSyntaxError as exc:
        raise ConfigError(sec.at(key), f"could not compile template: {exc}") from None



# --- json ------------------------------------------------------------------------------------------

class JsonStage(Stateless):
    """`json`: JMESPath expressions over the line (or `source`); numbers, strings, booleans and
    null kept as they are, objects and arrays as compact JSON text."""

    def __init__(self, expressions: dict[str, Any], source: str | None, drop_malformed: bool) -> None:
        self.expressions, self.source, self.drop_malformed = expressions, source, drop_malformed

    def process(self, entry: Entry) -> list[Entry]:
        text = _input(entry, self.source)
        if text is None:
            return [entry]
        data = _json_object(text)
        if not isinstance(data, dict | None):  # Go reads `null` as an empty map
            return [] if self.drop_malformed else [entry]
        data = data or {}
        for name, search in self.expressions.items():
            try:
                found = search(data)
            except jmespath.exceptions.JMESPathError:
                continue
            if isinstance(found, dict | list):
                found = _go_json(found)
            entry.extracted[name] = found
        return [entry]


def _json_object(text: str) -> Any:
    """The parsed JSON value (orjson first; the standard parser for what orjson refuses and Python
    reads, such as integers beyond 64 bits), or _MALFORMED."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        return _MALFORMED


_IDENTIFIERS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _jmespath_search(expr: str) -> Callable[[Any], Any]:
    """A compiled JMESPath expression's search; dotted identifiers (`level`, `req.status`), most
    expressions, walk the dicts directly as JMESPath does (null where a step is not an object)."""
    if not _IDENTIFIERS.match(expr):
        return jmespath.compile(expr).search
    keys = expr.split(".")

    def search(data: Any) -> Any:
        for key in keys:
            if not isinstance(data, dict):
                return None
            data = data.get(key)
        return data
    return search


def _go_json(value: Any) -> str:
    """Go's json.Marshal: keys sorted, compact, <>& escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return re.sub("[<>&]", lambda m: _GO_JSON_ESCAPES[m.group()], text)


def build_json(sec: Section) -> JsonStage:
    raw = sec.raw("expressions")
    if not raw:
        raise ConfigError(sec.at("expressions"), "JMES expression is required")
    expressions = sec.mapping("expressions")
    compiled: dict[str, Callable[[Any], Any]] = {}
    for name, expr in expressions.items():
        try:
            compiled[name] = _jmespath_search(expr or name)
        except jmespath.exceptions.JMESPathError as exc:
            raise ConfigError(f"{sec.at('expressions')}.{name}", f"could not compile JMES expression: {exc}") from None
    source = _source(sec, "empty source")
    drop = sec.boolean("drop_malformed", False)
    sec.done()
    return JsonStage(compiled, source, bool(drop))


# --- logfmt ----------------------------------------------------------------------------------------

class LogfmtStage(Stateless):
    """`logfmt`: the mapped keys of a logfmt line (a key without `=` reads as "")."""

    def __init__(self, inverted: dict[str, list[str]], source: str | None) -> None:
        self.inverted, self.source = inverted, source

    def process(self, entry: Entry) -> list[Entry]:
        text = _input(entry, self.source)
        if text is None:
            return [entry]
        pairs, _err = scan(text)
        for pair in pairs:
            if pair is None:
                continue
            key, value = pair
            for name in self.inverted.get(key, ()):
                entry.extracted[name] = value or ""
        return [entry]


def build_logfmt(sec: Section) -> LogfmtStage:
    mapping = sec.mapping("mapping")
    if not mapping:
        raise ConfigError(sec.at("mapping"), "logfmt mapping is required")
    inverted: dict[str, list[str]] = {}
    for name, key in mapping.items():
        inverted.setdefault(key or name, []).append(name)
    source = _source(sec, "empty source")
    sec.done()
    return LogfmtStage(inverted, source)


# --- regex, replace --------------------------------------------------------------------------------

class RegexStage(Stateless):
    """`regex`: the named groups of the first match (unanchored); an unmatched group reads as ""."""

    def __init__(self, regex: re2._Regexp, source: str | None) -> None:
        self.regex, self.source = regex, source
        self.names = list(regex.groupindex.items())

    def process(self, entry: Entry) -> list[Entry]:
        text = _input(entry, self.source)
        if text is None:
            return [entry]
        m = self.regex.search(text)
        if m is not None:
            for name, i in self.names:
                entry.extracted[name] = m.group(i) or ""
        return [entry]


def build_regex(sec: Section) -> RegexStage:
    regex = _compile_re2(sec, "expression")
    source = _source(sec, "empty source")
    sec.done()
    return RegexStage(regex, source)


class ReplaceStage(Stateless):
    """`replace`: each captured group of each match replaced by the `replace` template (which sees
    the extracted values and `.Value`, the group's text). As in Promtail, a group that starts where
    the previous replaced one ended is left alone, and a named group's extracted value is the
    replacement made for its text in the first match."""

    def __init__(self, regex: re2._Regexp, source: str | None, template: Template) -> None:
        self.regex, self.source, self.template = regex, source, template
        self.names = list(regex.groupindex.items())

    def process(self, entry: Entry) -> list[Entry]:
        text = _input(entry, self.source)
        if text is None:
            return [entry]
        matches = list(self.regex.finditer(text))
        if not matches:
            return [entry]
        data = _strings(entry.extracted)
        parts: list[str] = []
        replaced: dict[str, str] = {}
        end = 0
        try:
            for m in matches:
                for i in range(1, self.regex.groups + 1):
                    start, stop = m.span(i)
                    if start < 0:
                        continue
                    data["Value"] = value = text[start:stop]
                    rendered = self.template.render(data, entry.line, entry.ts)
                    if end == 0 or end < start:
                        parts += [text[end:start], rendered]
                        end = stop
                    replaced[value] = rendered
        except TemplateExecError:
            return [entry]
        result = "".join(parts) + text[end:]
        if self.source is None:
            entry.line = result
        else:
            entry.extracted[self.source] = result
        first = matches[0]
        for name, i in self.names:
            if (value := first.group(i) or "") in replaced:
                entry.extracted[name] = replaced[value]
        return [entry]


def build_replace(sec: Section) -> ReplaceStage:
    regex = _compile_re2(sec, "expression")
    source = _source(sec, "empty source in replace stage")
    template = _template(sec, "replace", sec.string("replace", "") or "")
    sec.done()
    return ReplaceStage(regex, source, template)


# --- template, output, decolorize ------------------------------------------------------------------

class TemplateStage(Stateless):
    """`template`: the extracted `source` set to a Go template's output over the extracted values,
    `.Value` (the source's own value) and `.Entry` (the line); an empty output removes it."""

    def __init__(self, source: str, template: Template) -> None:
        self.source, self.template = source, template

    def process(self, entry: Entry) -> list[Entry]:
        data = _strings(entry.extracted)
        if self.source in data:
            data["Value"] = data[self.source]
        data["Entry"] = entry.line
        try:
            out = self.template.render(data, entry.line, entry.ts)
        except TemplateExecError:
            return [entry]
        if out:
            entry.extracted[self.source] = out
        else:
            entry.extracted.pop(self.source, None)
        return [entry]


def build_template(sec: Section) -> TemplateStage:
    source = sec.string("source")
    if not source:
        raise ConfigError(sec.at("source"), "template source value is required")
    template = _template(sec, "template", sec.string("template", "") or "")
    sec.done()
    return TemplateStage(source, template)


class OutputStage(Stateless):
    """`output`: the line replaced by the extracted `source`."""

    def __init__(self, source: str) -> None:
        self.source = source

    def process(self, entry: Entry) -> list[Entry]:
        text = _input(entry, self.source)
        if text is not None:
            entry.line = text
        return [entry]


def build_output(sec: Section) -> OutputStage:
    source = sec.string("source")
    if not source:
        raise ConfigError(sec.at("source"), "output source value is required if output is specified")
    sec.done()
    return OutputStage(source)


class DecolorizeStage(Stateless):
    """`decolorize`: ANSI colour codes removed from the line."""

    def process(self, entry: Entry) -> list[Entry]:
        if "\x1b" in entry.line or "\x9b" in entry.line:
            entry.line = _ANSI.sub("", entry.line)
        return [entry]


def build_decolorize(sec: Section) -> DecolorizeStage:
    sec.done()
    return DecolorizeStage()


# --- docker, cri -----------------------------------------------------------------------------------

def _stream_label(entry: Entry) -> None:
    """The `labels: {stream:}` step of Promtail's docker and cri pipelines."""
    stream = to_string(entry.extracted.get("stream"))
    if stream:
        entry.labels["stream"] = stream


class DockerStage(Stateless):
    """`docker`: Docker's json-file lines (`{"log":…,"stream":…,"time":…}`): the line from `log`,
    a `stream` label, the time from `time` (RFC3339Nano, fudged on failure)."""

    def __init__(self) -> None:
        self.json = JsonStage({k: _jmespath_search(v) for k, v in
                               {"output": "log", "stream": "stream", "timestamp": "time"}.items()}, None, False)
        self.timestamp = TimestampStage("timestamp", [parser_for("RFC3339Nano", UTC)], "fudge")
        self.output = OutputStage("output")

    def process(self, entry: Entry) -> list[Entry]:
        self.json.process(entry)
        _stream_label(entry)
        self.timestamp.process(entry)
        self.output.process(entry)
        return [entry]


def build_docker(sec: Section) -> DockerStage:
    sec.done()
    return DockerStage()


def cri_fields(line: str) -> tuple[str, str, str, str] | None:
    """time, stream, flags, content of a CRI line as CRI_PATTERN reads them, or None. A split on
    the first three spaces gives the same fields whenever its tokens hold no other RE2 space;
    otherwise the pattern decides."""
    parts = line.split(" ", 3)
    if (len(parts) == 4 and parts[1] in _CRI_STREAMS and parts[0] and parts[2]
            and _RE2_SPACE.search(parts[0]) is None and _RE2_SPACE.search(parts[2]) is None):
        return parts[0], parts[1], parts[2], parts[3]
    m = CRI_PATTERN.search(line)
    return None if m is None else (m.group("time"), m.group("stream"), m.group("flags"), m.group("content"))


class CriStage(Stateless):
    """`cri`: CRI lines (`<time> <stream> <flags> <content>`): the line from the content, a `stream`
    label, the time (RFC3339Nano). Partial (`P`) lines are held per label set and joined, without
    separator, to the next full line, which gives the joined entry its time, labels and metadata.
    When `max_partial_lines` label sets are held, a new partial line releases them all as they are."""

    def __init__(self, max_lines: int, max_size: int, truncate: bool) -> None:
        self.max_lines, self.max_size, self.truncate = max_lines, max_size, truncate
        self.timestamp = TimestampStage("time", [parser_for("RFC3339Nano", UTC)], "fudge")
        self._partial: dict[tuple[tuple[str, str], ...], Entry] = {}

    def process(self, entry: Entry) -> list[Entry]:
        fields = cri_fields(entry.line)
        if fields is not None:
            time, stream, flags, content = fields
            entry.extracted.update(time=time, stream=stream, flags=flags, content=content)
            entry.labels["stream"] = stream
            self.timestamp.process(entry)
            entry.line = content
        partial = entry.extracted.get("flags") == "P"
        if not partial and not self._partial:
            return [entry]
        key = tuple(sorted(entry.labels.items()))
        prev = self._partial.pop(key, None)
        if partial:
            if len(self._partial) + (prev is not None) >= self.max_lines:
                out = ([prev] if prev is not None else []) + list(self._partial.values())
                self._partial = {key: self._truncated(entry, entry.line)}
                return out
            self._partial[key] = self._truncated(entry, entry.line) if prev is None else self._joined(prev, entry)
            return []
        if prev is not None:
            self._joined(prev, entry)
        return [entry]

    def held_origins(self) -> list[Any]:
        return [origin for held in self._partial.values() for origin in held.origins]

    def _joined(self, prev: Entry, entry: Entry) -> Entry:
        """`entry` with the held line before its own (and the held line's origins)."""
        entry.origins = prev.origins + entry.origins
        return self._truncated(entry, prev.line + entry.line)

    def _truncated(self, entry: Entry, line: str) -> Entry:
        data = line.encode()
        if self.truncate and len(data) > self.max_size:
            line = data[:self.max_size].decode("utf-8", "ignore")
        entry.line = line
        return entry


def build_cri(sec: Section) -> CriStage:
    max_lines = sec.integer("max_partial_lines", 0) or 100
    if max_lines < 0:
        raise ConfigError(sec.at("max_partial_lines"), "max_partial_lines must be greater than 0")
    max_size = sec.size("max_partial_line_size", 0) or 0
    truncate = bool(sec.boolean("max_partial_line_size_truncate", False))
    if truncate and max_size <= 0:
        raise ConfigError(sec.at("max_partial_line_size"),
                          "max_partial_line_size must be greater than 0 if max_partial_line_size_truncate is true")
    sec.done()
    return CriStage(max_lines, max_size, truncate)


BUILDERS: dict[str, Builder] = {
    "cri": build_cri,
    "docker": build_docker,
    "json": build_json,
    "logfmt": build_logfmt,
    "regex": build_regex,
    "replace": build_replace,
    "template": build_template,
    "timestamp": build_timestamp,
    "output": build_output,
    "decolorize": build_decolorize,
    "multiline": build_multiline,
}
