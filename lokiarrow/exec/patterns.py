"""Log patterns (Loki's `/patterns`): lines mined into templates with Drain, counted per step.

Drain (He et al., "Drain: An Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017),
with the settings of Loki's pattern ingester:
1. Format: a stream's first line decides how its lines are tokenized: JSON (`{…}`), logfmt
   (only `key=value` pairs), else plain text.
2. Tokenize. Plain text: split at spaces, `=` and Unicode punctuation other than `_ - . : /`;
   the punctuation is a token of its own, the spaces are remembered to print the template back.
   JSON: the first of the string fields `log`, `message`, `msg`, `msg_`, `_msg`, `content`,
   tokenized as plain text (a line without one is skipped); its template is printed between
   `<_>`s. Logfmt: key and value tokens, the value of a time or trace-id key already `<_>`
   (a line that does not decode is skipped).
   Lines longer than 3000 characters, or of fewer than 4 or more than 80 tokens, are skipped.
3. Search: the tree's first level is the token count, the next levels the leading tokens (up to
   depth 28; a token holding a digit goes down the `<_>` branch); at the leaf, the cluster whose
   template shares the most tokens with the line (ties: more placeholders), if at least 30 % do.
4. Train: a matching cluster's differing tokens become `<_>`; otherwise the line starts a new
   cluster, added to the tree (a node has at most 15 children, then the `<_>` branch).
   At most 300 clusters are kept, the least recently matched dropped first.
5. Count: each stream and level (`detected_level`, else `unknown`) trains its own Drain in time
   order; each line counts at its time truncated to 10 s, then to the step. Templates are
   printed with runs of `<_>` folded into one; equal (template, level) pairs of different
   streams add up. Patterns seen fewer than 30 times in all are left out, the rest ordered by
   count, most frequent first.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from lokiarrow.exec.logs import LogQuery, ScanStats, select_logs
from lokiarrow.exec.parsers.logfmt import scan
from lokiarrow.model import Matcher
from lokiarrow.store.tenant import Snapshot

PARAM = "<_>"
SIM_THRESHOLD = 0.3
MAX_NODE_DEPTH = 30 - 2
MAX_CHILDREN = 15
MAX_CLUSTERS = 300
MAX_LINE_LENGTH = 3000
MIN_TOKENS, MAX_TOKENS = 4, 80
SAMPLE_INTERVAL_MS = 10_000
MIN_PATTERN_COUNT = 30
MAX_LINES = 100_000           # lines mined per query: the newest this many in range
UNKNOWN_LEVEL = "unknown"
LEVEL_KEY = "detected_level"
_KEPT = frozenset("_-.:/")
JSON_MESSAGE_FIELDS = ("log", "message", "msg", "msg_", "_msg", "content")
# Loki's test: `key=value` pairs (`value` unquoted, or quoted up to a quote before a space or the
# end) separated by single spaces; atomic groups keep it linear (a backtracking engine can take
# exponential time over Loki's own expression, which RE2 runs in linear time)
_LOGFMT_PAIR = r'(?>\w+=(?:"(?:[^"]|"(?! |$))+"|[^"]\S*))'
_LOGFMT_LINE = re.compile(rf"{_LOGFMT_PAIR}(?: {_LOGFMT_PAIR})*", re.ASCII)
_LOGFMT_QUOTE = re.compile(r'[\x00-\x20="\ufffd]')
Tokens = tuple[list[str], list[int]]   # tokens, and per space the index of the token it follows


def detect_format(line: str) -> str:
    """`json`, `logfmt` or `unknown`, from a stream's first line."""
    if len(line) < 2:
        return "unknown"
    if line[0] == "{" and line[-1] == "}":
        return "json"
    if len(line) <= MAX_LINE_LENGTH and _LOGFMT_LINE.fullmatch(line):
        return "logfmt"
    return "unknown"


def tokenize(line: str) -> Tokens | None:
    """Plain text: the line's tokens and its spaces; None for a line too long."""
    if len(line) > MAX_LINE_LENGTH:
        return None
    tokens: list[str] = []
    spaces: list[int] = []
    start = 0
    for i, char in enumerate(line):
        if len(tokens) >= 127:
            break
        if char.isalnum() or char in _KEPT:
            continue
        if char == " " or char == "=" or unicodedata.category(char).startswith("P"):
            if i > start:
                tokens.append(line[start:i])
            if char == " ":
                spaces.append(len(tokens) - 1)
            else:
                tokens.append(char)
            start = i + 1
    if start < len(line):
        tokens.append(line[start:])
    return tokens, spaces


def join(tokens: list[str], spaces: list[int]) -> str:
    """Plain text: the tokens with their spaces."""
    out: list[str] = []
    k = 0
    for i, token in enumerate(tokens):
        out.append(token)
        while k < len(spaces) and spaces[k] == i:
            out.append(" ")
            k += 1
    return "".join(out)


def tokenize_json(line: str) -> Tokens | None:
    """JSON: the message field's text, tokenized as plain text; None without one."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    for key in JSON_MESSAGE_FIELDS:
        value = doc.get(key)
        if isinstance(value, str):
            return tokenize(value)
    return None


def join_json(tokens: list[str], spaces: list[int]) -> str:
    return PARAM + join(tokens, spaces) + PARAM


def tokenize_logfmt(line: str) -> Tokens | None:
    """Logfmt: key, value, key, value…; the value of `ts`, `t`, `time`, `timestamp` and `traceID`
    (case aside, but for `t`) is `<_>` already. None for a line too long or that does not decode."""
    if len(line) > MAX_LINE_LENGTH:
        return None
    pairs, err = scan(line)
    if err is not None:
        return None
    tokens: list[str] = []
    for pair in pairs:
        if pair is None:
            return None
        key, value = pair
        variable = key == "t" or key.lower() in ("ts", "traceid", "time", "timestamp")
        tokens += [key, PARAM if variable else value or ""]
    return tokens, []


def _logfmt_value(value: str) -> str:
    if not _LOGFMT_QUOTE.search(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") \
        .replace("\t", "\\t")
    escaped = re.sub(r"[\x00-\x1f]", lambda m: f"\\u{ord(m.group(0)):04x}", escaped)
    return f'"{escaped}"'


def join_logfmt(tokens: list[str], spaces: list[int]) -> str:
    """Logfmt: the pairs written back as logfmt; "" when a key cannot be written."""
    if len(tokens) % 2:
        tokens = [*tokens, ""]
    out = []
    for key, value in zip(tokens[::2], tokens[1::2], strict=True):
        if not key or _LOGFMT_QUOTE.search(key):
            return ""
        out.append(f"{key}={_logfmt_value(value)}")
    return " ".join(out)


_TOKENIZERS: dict[str, tuple[Callable[[str], Tokens | None], Callable[[list[str], list[int]], str]]] = {
    "unknown": (tokenize, join), "json": (tokenize_json, join_json), "logfmt": (tokenize_logfmt, join_logfmt)}


def fold_placeholders(text: str) -> str:
    """Runs of `<_>` folded into one."""
    while PARAM + PARAM in text:
        text = text.replace(PARAM + PARAM, PARAM)
    return text


@dataclass
class Cluster:
    tokens: list[str]
    spaces: list[int]
    counts: dict[int, int] = field(default_factory=dict)   # ms bucket (10 s) -> lines


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    clusters: list[int] = field(default_factory=list)


class Drain:
    """One Drain tree for lines of one format: `train` each line in time order, then read
    `clusters()` and print each with `template`."""

    def __init__(self, fmt: str = "unknown") -> None:
        self._tokenize, self._join = _TOKENIZERS[fmt]
        self._root = _Node()
        self._clusters: OrderedDict[int, Cluster] = OrderedDict()   # least recently matched first
        self._next_id = 0

    def clusters(self) -> list[Cluster]:
        return list(self._clusters.values())

    def template(self, cluster: Cluster) -> str:
        return fold_placeholders(self._join(cluster.tokens, cluster.spaces))

    def _get(self, cid: int) -> Cluster | None:
        cluster = self._clusters.get(cid)
        if cluster is not None:
            self._clusters.move_to_end(cid)
        return cluster

    def train(self, line: str, ts_ms: int) -> Cluster | None:
        split = self._tokenize(line)
        if split is None or not MIN_TOKENS <= len(split[0]) <= MAX_TOKENS:
            return None
        tokens, spaces = split
        cluster = self._search(tokens)
        if cluster is None:
            self._next_id += 1
            cluster = Cluster(list(tokens), list(spaces))
            self._clusters[self._next_id] = cluster
            if len(self._clusters) > MAX_CLUSTERS:
                self._clusters.popitem(last=False)
            self._add(self._next_id, cluster)
        else:
            cluster.tokens = [t if t == old else PARAM for t, old in zip(tokens, cluster.tokens, strict=True)]
        bucket = ts_ms - ts_ms % SAMPLE_INTERVAL_MS
        cluster.counts[bucket] = cluster.counts.get(bucket, 0) + 1
        return cluster

    def _search(self, tokens: list[str]) -> Cluster | None:
        node = self._root.children.get(str(len(tokens)))
        if node is None:
            return None
        depth = 1
        for token in tokens:
            if depth >= MAX_NODE_DEPTH or depth == len(tokens):
                break
            child = node.children.get(token) or node.children.get(PARAM)
            if child is None:
                return None
            node = child
            depth += 1
        best: Cluster | None = None
        best_sim, best_params = -1.0, -1
        for cid in node.clusters:
            cluster = self._get(cid)
            if cluster is None:
                continue
            same = params = 0
            for mine, theirs in zip(cluster.tokens, tokens, strict=True):
                if mine == PARAM:
                    params += 1
                elif mine == theirs:
                    same += 1
            sim = same / len(tokens)
            if sim > best_sim or (sim == best_sim and params > best_params):
                best, best_sim, best_params = cluster, sim, params
        return best if best_sim >= SIM_THRESHOLD else None

    def _add(self, cid: int, cluster: Cluster) -> None:
        count = len(cluster.tokens)
        node = self._root.children.setdefault(str(count), _Node())
        depth = 1
        for token in cluster.tokens:
            if depth >= MAX_NODE_DEPTH or depth >= count:
                node.clusters = [c for c in node.clusters if c in self._clusters] + [cid]
                break
            child = node.children.get(token)
            if child is None:
                wild = node.children.get(PARAM)
                if any(c.isdigit() for c in token):
                    child = wild if wild is not None else node.children.setdefault(PARAM, _Node())
                elif wild is not None:
                    child = node.children.setdefault(token, _Node()) if len(node.children) < MAX_CHILDREN else wild
                elif len(node.children) + 1 < MAX_CHILDREN:
                    child = node.children.setdefault(token, _Node())
                else:
                    child = node.children.setdefault(PARAM, _Node())
            node = child
            depth += 1


def patterns(snapshot: Snapshot, matchers: tuple[Matcher, ...], start: int, end: int,
             step_ns: int) -> list[dict[str, Any]]:
    """Loki's patterns answer (`data`): the patterns of the newest `MAX_LINES` lines in
    [start, end] of the matching streams, each with its count per step."""
    ids = snapshot.index.streams.match(matchers)
    if not ids:
        return []
    q = LogQuery(matchers, (), start, end + 1, MAX_LINES, backward=True)
    rows = select_logs(snapshot, ids, q, ScanStats())
    sids = rows.column("stream_id").to_pylist()
    stamps = rows.column("ts").to_pylist()
    lines = rows.column("line").to_pylist()
    metadata = rows.column("metadata").to_pylist()
    drains: dict[tuple[int, str], Drain] = {}
    formats: dict[int, str] = {}
    for i in reversed(range(rows.num_rows)):   # oldest first, as lines arrive
        level = dict(metadata[i] or []).get(LEVEL_KEY, UNKNOWN_LEVEL).lower()
        drain = drains.get((sids[i], level))
        if drain is None:
            fmt = formats.setdefault(sids[i], detect_format(lines[i] or ""))
            drain = drains[(sids[i], level)] = Drain(fmt)
        drain.train(lines[i] or "", stamps[i] // 10**6)
    step_ms = max(step_ns // 10**6, 1)
    merged: dict[tuple[str, str], dict[int, int]] = {}
    for (_, level), drain in drains.items():
        for cluster in drain.clusters():
            text = drain.template(cluster)
            if not text:
                continue
            samples = merged.setdefault((text, level), {})
            for bucket, n in cluster.counts.items():
                at = bucket - bucket % step_ms
                samples[at] = samples.get(at, 0) + n
    ranked = sorted(merged.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return [{"pattern": text, "level": level, "samples": [[ms // 1000, n] for ms, n in sorted(samples.items())]}
            for (text, level), samples in ranked if sum(samples.values()) >= MIN_PATTERN_COUNT]
