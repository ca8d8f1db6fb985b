"""Labels, matchers and stream ids: the vocabulary every layer shares.

A stream is a label set. Its canonical text is Prometheus/Loki's `{a="1", b="2"}` (names sorted,
values quoted as Go's strconv.Quote does), and its id is a stable 64-bit hash of that text, so the
same labels give the same id on every machine and in every process.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

import re2

from lokiarrow.errors import ParseError

Labels = dict[str, str]
MatchOp = Literal["=", "!=", "=~", "!~"]

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(value: str) -> str:
    """Quote a string as Go's strconv.Quote: printable Unicode stays, the rest is escaped."""
    out = ['"']
    for ch in value:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            code = ord(ch)
            if 0xDC80 <= code <= 0xDCFF:  # a raw non-UTF-8 byte kept as a surrogate escape
                out.append(f"\\x{code - 0xDC00:02x}")
            elif code < 0x80:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def labels_string(labels: Labels) -> str:
    """The canonical text of a label set: `{a="1", b="2"}`, names sorted."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


def stream_id(canonical: str) -> int:
    """A stable signed 64-bit id for a canonical label string (fits DuckDB's BIGINT)."""
    return int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "little", signed=True)


QUIET_RE2 = re2.Options()
QUIET_RE2.log_errors = False  # a bad user regex is a 400, not a line on stderr

# RE2's error codes → Go regexp/syntax's; Go quotes the whole pattern for the two paren errors.
_RE2_TO_GO = {
    "missing )": "missing closing )", "unexpected )": "unexpected )", "missing ]": "missing closing ]",
    "bad repetition operator": "invalid nested repetition operator",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid escape sequence": "invalid escape sequence",
    "invalid character class range": "invalid character class range",
    "invalid character class": "invalid character class", "invalid named capture group": "invalid named capture",
    "invalid repetition size": "invalid repeat count", "invalid perl operator": "invalid or unsupported Perl syntax",
    "trailing \\": "trailing backslash at end of expression", "invalid UTF-8": "invalid UTF-8",
}


def compile_regex(pattern: str) -> re2._Regexp:
    """Compile a label-matcher regex as Prometheus does: anchored, `.` matches newlines.

    The pattern is checked alone first (as Prometheus parses it), so `a)|(b` fails instead of
    slipping through the anchoring wrapper. Raises ParseError with Go's wording when not valid RE2.
    """
    try:
        re2.compile(pattern, QUIET_RE2)
        return re2.compile(f"^(?s:{pattern})$", QUIET_RE2)
    except re2.error as exc:
        raise ParseError(f"error parsing regexp: {go_regex_error(str(exc), pattern)}") from None


def go_regex_error(message: str, pattern: str) -> str:
    """Translate an RE2 error (`code: fragment`) into the text Go's regexp/syntax prints for the same fault."""
    if message[:2] in ("b'", 'b"'):
        message = ast.literal_eval(message).decode("utf-8", "replace")
    code, _, fragment = message.partition(": ")
    go = _RE2_TO_GO.get(code)
    if go is None:
        return f"{message}: `{pattern}`"
    if code in ("missing )", "unexpected )"):
        fragment = pattern
    elif code == "trailing \\":
        fragment = ""
    return f"{go}: `{fragment}`"


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a stream selector (`name op "value"`)."""

    name: str
    op: MatchOp
    value: str
    _regex: re2._Regexp | None = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", compile_regex(self.value))

    def matches(self, value: str) -> bool:
        """Whether a label value (`""` for an absent label) satisfies this matcher."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        hit = self._regex.match(value) is not None
        return hit if self.op == "=~" else not hit

    def matches_labels(self, labels: Labels) -> bool:
        return self.matches(labels.get(self.name, ""))

    def matches_empty(self) -> bool:
        return self.matches("")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{go_quote(self.value)}"

