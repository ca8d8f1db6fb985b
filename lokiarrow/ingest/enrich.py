"""Loki 3's enrichment of pushed streams: `service_name` and `detected_level`.

`service_name`: a stream without one gets the value of the first label of `discover_service_name` it
has, else `unknown_service`; an empty list turns this off.

`detected_level` (structured metadata, when `discover_log_levels` and structured metadata is
allowed), first that applies, as Loki's distributor field detection:
  1. the entry already has `detected_level`: its value is normalised, nothing is added;
  2. a stream label named as a level field (`level`, `LEVEL`, `Level`, `log.level`, `severity`, …);
  3. a structured metadata pair named so;
  4. structured metadata `severity_number` (OTLP), mapped to a level;
  5. the line: a JSON line's first level field holding a string (top level and one level down, in
     document order), a logfmt line's level field (the first field of the list a line has, names
     matched case-insensitively); a value that is not a level word, or no such field, falls back to
     the first level word in the line (`error`, `warn`, … with word boundaries); else `unknown`.
Values are normalised (`WARNING` → `warn`, `err` → `error`, `inf` → `info`, …); from a label or
metadata an unknown word is kept as it is.

Step 5 runs vectorised over a line column: a few RE2 passes (pyarrow.compute) decide almost every
line; lines whose JSON nests before the level field are parsed in Python. A call to pyarrow.compute
costs tens of microseconds whatever the size, so a handful of lines is done line by line instead, with
the same RE2 patterns (`LevelDetector.detect_one`); a property test holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import re2

from lokiarrow.config import Limits
from lokiarrow.ingest.validate import LEVEL_LABEL, SERVICE_NAME
from lokiarrow.model import go_quote
from lokiarrow.wire.stream import Pairs

UNKNOWN_SERVICE = "unknown_service"
UNKNOWN_LEVEL = "unknown"
SEVERITY_NUMBER = "severity_number"
# Loki's defaults for settings our Limits does not carry (yet): log_level_fields, log_level_from_json_max_depth.
DEFAULT_LEVEL_FIELDS = ("level", "LEVEL", "Level", "log.level", "severity", "SEVERITY", "Severity", "SeverityText",
                        "lvl", "LVL", "Lvl", "severity_text", "Severity_Text", "SEVERITY_TEXT")
DEFAULT_JSON_MAX_DEPTH = 2
SMALL = 16   # fewer lines than this are detected one by one

# value (any case) -> level, as Loki's normalizeLogLevel
_LEVEL_WORDS = {"trace": "trace", "trc": "trace", "debug": "debug", "dbg": "debug", "info": "info", "inf": "info",
                "information": "info", "warn": "warn", "wrn": "warn", "warning": "warn", "error": "error",
                "err": "error", "critical": "critical", "fatal": "fatal"}
_WORD_KEYS = pa.array(list(_LEVEL_WORDS), pa.string())
_WORD_LEVELS = pa.array(list(_LEVEL_WORDS.values()), pa.string())
_FALSE = pa.scalar(False)   # a Python value given to pyarrow costs a failed import per call
# words found in a line, in Loki's order of preference at the same position
_LINE_WORDS = (("trace", "trace"), ("debug", "debug"), ("fatal", "fatal"), ("critical", "critical"),
               ("error", "error"), ("err", "error"), ("warning", "warn"), ("warn", "warn"), ("info", "info"))
_LINE_WORD_LEVELS = dict(_LINE_WORDS)
_WORD_RE = ("(?i)(?:^|[ \\t\\n\\[({\"'=|])(?P<w>" + "|".join(w for w, _ in _LINE_WORDS)
            + ")(?:$|[ \\t\\n\\[\\](){}:,!\"'=|])")

# JSON: Loki's isJSON (first and last non-space characters are braces) and a top-level key whose
# string value ends the search, when nothing before it opens an object or an array.
_SPACES = "\t\n\v\f\r \x85\xa0"
_SPACE = "[\\t\\n\\v\\f\\r \\x{85}\\x{a0}]"
_JSON_START = f"^{_SPACE}*\\{{"
_JSON_END = f"\\}}{_SPACE}*$"
_JSON_WS = "[\\t\\n\\r ]*"
_ANY = "(?s:.)"
_JSON_STRING_BODY = f'(?:[^"\\\\]|\\\\{_ANY})*'
# logfmt, as Loki's decoder reads it: garbage (bytes <= ' '), a key (no '=', '"' or space), then
# `=value` (no '=', '"' or space) or `="quoted"`; an error stops the scan, so the level field must
# be reachable through well-formed fields.
_LF_SEP = "[\\x00-\\x20]"
_LF_KEY = '[^\\x00-\\x20="]+'
_LF_VALUE = '[^\\x00-\\x20="]*'
_LF_PREFIX = (f'^(?:{_LF_SEP}|{_LF_KEY}{_LF_SEP}|{_LF_KEY}={_LF_VALUE}{_LF_SEP}|{_LF_KEY}="{_JSON_STRING_BODY}")*?')


def _literal(text: str) -> str:
    """A regex matching `text` exactly (RE2 syntax)."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"\\x{{{ord(ch):x}}}" for ch in text)


class LevelDetector:
    """Line-based level detection for one list of level fields; build once, use for many pushes."""

    def __init__(self, fields: Sequence[str] = DEFAULT_LEVEL_FIELDS, json_max_depth: int = DEFAULT_JSON_MAX_DEPTH):
        self.fields = tuple(fields)
        self.field_set = frozenset(fields)
        self.json_max_depth = json_max_depth
        keys = "|".join(_literal(f) for f in self.fields)
        self._json_top = (f"^{_SPACE}*\\{{(?:[^{{\\[]*?,)?{_JSON_WS}\"(?:{keys})\"{_JSON_WS}:{_JSON_WS}"
                          f"\"(?P<v>{_JSON_STRING_BODY})\"")
        self._json_any = f'[{{,]{_JSON_WS}"(?:{keys})"{_JSON_WS}:'
        folded = list(dict.fromkeys(f.lower() for f in self.fields))
        self._logfmt = [self._logfmt_re(f) for f in folded]
        self._logfmt_others = f"(?i){_LF_PREFIX}(?:{'|'.join(_literal(f) for f in folded[1:]) or '$^'})="

    @staticmethod
    def _logfmt_re(field: str) -> str:
        return (f'(?i){_LF_PREFIX}{_literal(field)}=(?:"(?P<q>{_JSON_STRING_BODY})"'
                f"|(?P<v>{_LF_VALUE})(?:{_LF_SEP}|$))")

    def detect(self, lines: pa.StringArray) -> pa.StringArray:
        """The level of each line (never null): by a JSON or logfmt level field, else by words."""
        n = len(lines)
        if n < SMALL:
            return pa.array([self.detect_one(line) for line in lines.to_pylist()], pa.string())
        values = pa.nulls(n, pa.string())           # the raw value of a level field, where found
        is_json = self._is_json(lines)
        rest = lines
        if pc.any(is_json).as_py():
            values = _fill(values, is_json, self._json_values(lines.filter(is_json)))
            rest = lines.filter(pc.invert(is_json))
        if len(rest):
            is_logfmt = pc.match_substring_regex(rest, "=")   # RE2 finds a literal far faster than match_substring
            if pc.any(is_logfmt).as_py():
                is_logfmt = _fill(pa.repeat(_FALSE, n), pc.invert(is_json), is_logfmt)
                values = _fill(values, is_logfmt, self._logfmt_values(lines.filter(is_logfmt)))
        levels = normalize_levels(values)             # null where no field or not a level word
        missing = levels.is_null()
        if pc.any(missing).as_py():
            levels = _fill(levels, missing, _word_levels(lines.filter(missing)))
        return levels

    @cached_property
    def _compiled(self) -> tuple[re2._Regexp, re2._Regexp, list[re2._Regexp], re2._Regexp, re2._Regexp]:
        return (re2.compile(self._json_top), re2.compile(self._json_any), [re2.compile(p) for p in self._logfmt],
                re2.compile(self._logfmt_others), re2.compile(_WORD_RE))

    def detect_one(self, line: str) -> str:
        """The level of one line: `detect` for a single line, without pyarrow.compute."""
        json_top, json_any, logfmt, logfmt_others, words = self._compiled
        value: str | None = None
        if line.lstrip(_SPACES)[:1] == "{" and line.rstrip(_SPACES)[-1:] == "}":
            found = json_top.search(line)
            if found:
                value = found.group("v")
            elif json_any.search(line):
                value = self._json_value(line)
        elif "=" in line:
            for i, pattern in enumerate(logfmt):
                if i == 1 and not logfmt_others.search(line):
                    break
                found = pattern.search(line)
                if found:
                    value = (found.group("q") or "") + (found.group("v") or "")
                    break
        level = _LEVEL_WORDS.get(value.lower()) if value is not None else None
        if level is None:
            word = words.search(line)
            level = _LEVEL_WORDS[word.group("w").lower()] if word else UNKNOWN_LEVEL
        return level

    @staticmethod
    def _is_json(lines: pa.StringArray) -> pa.BooleanArray:
        plain = pc.and_(pc.starts_with(lines, "{"), pc.ends_with(lines, "}"))
        spaced = pc.and_not(pc.match_substring_regex(lines, _JSON_START), plain)
        if pc.any(spaced).as_py():
            plain = pc.or_(plain, _fill(pa.repeat(_FALSE, len(lines)), spaced,
                                        pc.match_substring_regex(lines.filter(spaced), _JSON_END)))
        return plain

    def _json_values(self, lines: pa.StringArray) -> pa.StringArray:
        values = pc.struct_field(pc.extract_regex(lines, self._json_top), 0)
        todo = values.is_null()
        if pc.any(todo).as_py():
            todo = _fill(todo, todo, pc.match_substring_regex(lines.filter(todo), self._json_any))
        if pc.any(todo).as_py():
            found = [self._json_value(line) for line in lines.filter(todo).to_pylist()]
            values = _fill(values, todo, pa.array(found, pa.string()))
        return values

    def _json_value(self, line: str) -> str | None:
        """Loki's walk over a JSON line: depth-first in document order, arrays skipped."""
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None

        def walk(obj: dict[str, object], depth: int) -> str | None:
            if 0 < self.json_max_depth <= depth:
                return None
            for key, value in obj.items():
                if type(value) is str and key in self.field_set:
                    return value
                if type(value) is dict:
                    found = walk(value, depth + 1)
                    if found is not None:
                        return found
            return None

        return walk(doc, 0) if type(doc) is dict else None

    def _logfmt_values(self, lines: pa.StringArray) -> pa.StringArray:
        values = _logfmt_extract(lines, self._logfmt[0])
        todo = values.is_null()
        if pc.any(todo).as_py():
            todo = _fill(todo, todo, pc.match_substring_regex(lines.filter(todo), self._logfmt_others))
        for pattern in self._logfmt[1:]:
            if not pc.any(todo).as_py():
                break
            found = _logfmt_extract(lines.filter(todo), pattern)
            values = _fill(values, todo, found)
            todo = pc.and_(todo, values.is_null())
        return values


def _logfmt_extract(lines: pa.StringArray, pattern: str) -> pa.StringArray:
    parts = pc.extract_regex(lines, pattern)
    return pc.binary_join_element_wise(pc.struct_field(parts, 0), pc.struct_field(parts, 1), "")


def _fill(base: pa.Array, mask: pa.BooleanArray, values: pa.Array) -> pa.Array:
    """`base` with its masked positions replaced, in order, by `values`."""
    return pc.replace_with_mask(base, mask, values.cast(base.type))


def _word_levels(lines: pa.StringArray) -> pa.StringArray:
    words = pc.struct_field(pc.extract_regex(lines, _WORD_RE), 0)
    levels = pc.take(_WORD_LEVELS, pc.index_in(pc.utf8_lower(words), value_set=_WORD_KEYS))
    return pc.fill_null(levels, UNKNOWN_LEVEL)


def normalize_levels(values: pa.StringArray) -> pa.StringArray:
    """Level words (any case) to Loki's levels; null for anything else."""
    return pc.take(_WORD_LEVELS, pc.index_in(pc.utf8_lower(values), value_set=_WORD_KEYS))


def normalize_level(value: str) -> str:
    """Loki's normalizeLogLevel: a level word (any case) to its level, anything else unchanged."""
    return _LEVEL_WORDS.get(value.lower(), value) if len(value) <= 11 else value


def detect_line_level(line: str, detector: LevelDetector | None = None) -> str:
    """The level of one line, as a push would detect it from the line alone."""
    return (detector or _DETECTORS_DEFAULT).detect_one(line)


_DETECTORS_DEFAULT = LevelDetector()
_DETECTORS: dict[tuple[tuple[str, ...], int], LevelDetector] = {}


def level_detector(limits: Limits) -> LevelDetector:
    """The detector for a tenant's level fields (cached: building one compiles its patterns)."""
    fields = tuple(getattr(limits, "log_level_fields", ()) or DEFAULT_LEVEL_FIELDS)
    depth = int(getattr(limits, "log_level_from_json_max_depth", DEFAULT_JSON_MAX_DEPTH))
    key = (fields, depth)
    detector = _DETECTORS.get(key)
    if detector is None:
        detector = _DETECTORS[key] = LevelDetector(fields, depth)
    return detector


def level_from_labels(labels: dict[str, str], fields: Sequence[str]) -> str | None:
    """Step 2: the normalised value of the first level field among a stream's labels."""
    for name in fields:
        if name in labels:
            return normalize_level(labels[name])
    return None


def level_from_metadata(pairs: Pairs, stream_level: str | None, fields: Sequence[str]) -> str | None:
    """Steps 1-4 for an entry with structured metadata.

    Returns the level to add, `""` when nothing is to be added (step 1 normalised `pairs` in place, or
    a level field is empty), or None when the line must decide (step 5).
    """
    for i, (name, value) in enumerate(pairs):
        if name == LEVEL_LABEL:
            pairs[i] = (name, normalize_level(value))
            return ""
    if stream_level is not None:
        return stream_level
    found = dict(pairs)
    for name in fields:
        if name in found:
            return normalize_level(found[name])
    severity = found.get(SEVERITY_NUMBER)
    if severity:
        return _otlp_severity(severity)
    return None


def _otlp_severity(text: str) -> str:
    """OTLP SeverityNumber ranges: 1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-20 error, 21-24 fatal."""
    try:
        number = int(text)
    except ValueError:
        return "info"
    if number == 0:
        return UNKNOWN_LEVEL
    for top, level in ((4, "trace"), (8, "debug"), (12, "info"), (16, "warn"), (20, "error"), (24, "fatal")):
        if number <= top:
            return level
    return UNKNOWN_LEVEL


def add_service_name(labels: dict[str, str], limits: Limits) -> dict[str, str]:
    """The labels with `service_name` added when absent (a new dict; the given one is not changed)."""
    if SERVICE_NAME in labels or not limits.discover_service_name:
        return labels
    service = next((labels[n] for n in limits.discover_service_name if labels.get(n)), UNKNOWN_SERVICE)
    return {**labels, SERVICE_NAME: service}


def sanitize_metadata_name(name: str) -> str:
    """A structured metadata name as Loki stores it (Prometheus' OTLP LabelNamer, UTF-8 off):
    characters outside [a-zA-Z0-9] become `_`, runs of `_` collapse (`__x__` keeps its underscores),
    a leading digit gets `key_`. Raises ValueError, in Loki's words, for names it refuses."""
    if not name:
        raise ValueError("label name is empty")
    if (name.isascii() and name.replace("_", "a").isalnum() and "__" not in name and not name[0].isdigit()
            and name.strip("_")):
        return name
    reserved = len(name) >= 4 and name.startswith("__") and name.endswith("__")
    core = name[2:-2] if reserved else name
    out: list[str] = []
    for ch in core:
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif not out or out[-1] != "_":
            out.append("_")
    sanitized = "".join(out)
    if reserved:
        sanitized = f"__{sanitized}__"
    if sanitized[:1].isdigit():
        sanitized = "key_" + sanitized
    if not sanitized.strip("_"):
        raise ValueError(f"normalization for label name {go_quote(name)} resulted in invalid name "
                         f"{go_quote(sanitized)}")
    return sanitized
