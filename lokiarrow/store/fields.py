"""Parsed-field columns: what `| json` or `| logfmt` would extract from a line, written beside it.

At flush, off the push path, a few frequent top-level fields of JSON and logfmt lines become
string columns `f_<name>`, and a column `parsed` says per row whose output they hold (PARSED_JSON,
PARSED_LOGFMT, or PARSED_NONE: the line must be parsed). A query whose label filters read these
fields tests the columns instead of parsing lines (compile/fields.py); lines stay the source of
truth, and every answer is still computed from them.

A row is marked parsed only where the column values must equal what Loki's parser extracts, so
the fast reading (DuckDB's JSON functions and RE2, in C++, outside the GIL) is taken only on lines
free of everything where the readers could differ:
- both: no backslash (no escapes to decode), no U+FFFD (Loki turns it into a space).
- JSON: a valid object for DuckDB, without what DuckDB accepts and Loki's scanner stops at (NaN,
  Infinity, trailing commas) or keys Loki would trim to a field's name (`" level"`); each field's
  value a string, a boolean or an integer (written the way DuckDB writes it back), or absent.
  Repeated keys are fine: both keep the first.
- logfmt: only `key=value` / `key="quoted value"` pairs with identifier keys, separated by spaces,
  no empty values; the first of repeated keys wins, as in Loki's `| logfmt`.
Field names are letters, digits and `_` (`level`, `latency_ms`): such a name is its own sanitised
form; for names with `_`, JSON lines with a key Loki would also name so (`"latency.ms"`, or
`"latency": {"ms": …}`) are left to the parser. Loki keeps a number as written; DuckDB writes
some back otherwise (`8.0940`, `1e3`, `-0`: JSON_NUMBERS), so those are read from the line's
text where their key occurs once in it (else the field is unknown in that row).

The fields are chosen per flush from a sample: present in enough lines, and cheap to store (few
distinct values, or short ones), at most `max_fields` of them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

PARSED_NONE, PARSED_JSON, PARSED_LOGFMT = 0, 1, 2
PARSED_COLUMN = "parsed"
INEXACT_COLUMN = "inexact"   # per row: the fields whose column is null because the value is not known
FIELD_PREFIX = "f_"
SAMPLE_LINES = 2048
MIN_SHARE = 0.05          # a field must be in this share of the sampled lines
MAX_DISTINCT_SHARE = 0.1  # ... and have few distinct values
MAX_SHORT_LENGTH = 8      # ... or short ones
THREADS = 1  # off the push path: leave the other core to ingest

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_SAMPLE_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|[^ "]+)')

_GO_SPACE = r"\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
# What DuckDB's JSON reader accepts and Loki's scanner does not, and keys Loki trims.
JSON_UNSAFE = (rf'(?i),\s*[}}\]]|[:\[,]\s*[-+]?(?:nan|inf)|[{{,]\s*"[{_GO_SPACE}]|[{_GO_SPACE}]"\s*:'
               rf'|""\s*:\s*\{{')  # an object under an empty key: Loki names its fields without a prefix
# Numbers DuckDB writes back otherwise than the line has them (Loki keeps them as written):
# `-0`, trailing fraction zeros (`1.50`), exponents (`1e3`), more digits than a double keeps.
_ODD_NUMBER = r"(?:-0[^.0-9]|-?[0-9]+\.[0-9]*0[\s,}\]]|-?[0-9.]+[eE]|-?[0-9][0-9.]{15,})"
JSON_NUMBERS = rf"[:\[,]\s*{_ODD_NUMBER}"
_JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"  # a whole JSON number token
_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_VALUE = r'"[^"\\\x00-\x1f]+"|[^\x00-\x20"=\\]+'
LOGFMT_LINE = rf"^ *{_KEY}=(?:{_VALUE})(?: +{_KEY}=(?:{_VALUE}))* *$"
LOGFMT_PAIR = rf"{_KEY}=(?:{_VALUE})"


def json_unsafe(names: list[str]) -> str:
    """JSON_UNSAFE, and for names with `_`, the other spellings Loki would also name so: a key with
    a character it turns into `_` (`"latency.ms"`), or an object under a prefix (`"latency": {"ms"`)."""
    prefixes = sorted({name[:i] for name in names for i, ch in enumerate(name) if ch == "_" and i})
    if not prefixes:
        return JSON_UNSAFE
    return (rf'{JSON_UNSAFE}|"[^"]*[^A-Za-z0-9_"][^"]*"\s*:'
            rf'|"(?:{"|".join(prefixes)})"\s*:\s*\{{')


def _named_numbers(names: list[str]) -> str:
    """The fields (among `names`) that a line gives an odd number: group 1 is the name."""
    return rf'"({"|".join(names)})"\s*:\s*{_ODD_NUMBER}'


def field_column(name: str) -> str:
    return FIELD_PREFIX + name


def is_field_name(name: str) -> bool:
    """Whether `name` can be a field column: letters and digits, a letter first."""
    return _NAME.match(name) is not None


def choose_fields(lines: pa.Array | pa.ChunkedArray, max_fields: int) -> list[str]:
    """The fields worth a column: frequent in a sample of `lines`, and cheap to store."""
    n = len(lines)
    if n == 0 or max_fields <= 0:
        return []
    step = max(n // SAMPLE_LINES, 1)
    sample = lines.take(pa.array(range(0, n, step))[:SAMPLE_LINES]).to_pylist()
    seen: Counter[str] = Counter()
    values: dict[str, set[str]] = {}
    length: Counter[str] = Counter()
    for line in sample:
        for name, value in _sample_fields(line):
            seen[name] += 1
            values.setdefault(name, set()).add(value)
            length[name] += len(value)
    chosen = []
    for name, count in seen.most_common():
        if count < MIN_SHARE * len(sample):
            break
        if len(values[name]) <= MAX_DISTINCT_SHARE * count or length[name] <= MAX_SHORT_LENGTH * count:
            chosen.append(name)
        if len(chosen) == max_fields:
            break
    return sorted(chosen)


def _sample_fields(line: str | None) -> list[tuple[str, str]]:
    if not line:
        return []
    if line.lstrip().startswith("{"):
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(doc, dict):
            return []
        return [(k, str(v)) for k, v in doc.items()
                if is_field_name(k) and isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return [(k, v) for k, v in _SAMPLE_PAIR.findall(line) if is_field_name(k)]


@dataclass(frozen=True)
class Extracted:
    parsed: pa.Array                 # uint8 per row: PARSED_JSON, PARSED_LOGFMT or PARSED_NONE
    inexact: pa.Array                # list<string> per row: fields whose value is not known (null: none)
    columns: dict[str, pa.Array]     # field name -> values (null: absent, or not known)


def extract(lines: pa.Array | pa.ChunkedArray, names: list[str]) -> Extracted:
    """The `parsed` and `inexact` columns and one column per field name for `lines` (see the
    module docstring).

    One JSON read per JSON line (`json_extract` of every field: strings come back quoted, so their
    type shows) and one RE2 pass per logfmt line. Names reach DuckDB only as parameters (JSON
    paths, `name=` prefixes), never as SQL text.
    """
    n = len(lines)
    if not names or n == 0:
        return Extracted(pa.array([PARSED_NONE] * n, pa.uint8()), pa.nulls(n, pa.list_(pa.string())), {})
    json_values, logfmt_values, known = [], [], []
    for i in range(1, len(names) + 1):
        text = f"(j[{i}]::VARCHAR)"
        # a number the line writes otherwise than DuckDB does (`1.50`) is taken as written, where
        # the key occurs once in the line (so this occurrence is the top-level one)
        as_written = (f"(CASE WHEN list_contains(odd_numbers, $name{i}) AND len(regexp_extract_all(line, $key{i})) = 1 "
                      f"THEN nullif(regexp_extract(line, $written{i}, 1), '') END)")
        json_values.append(f"CASE WHEN starts_with({text}, '\"') THEN {text}[2:-2] ELSE coalesce({as_written}, {text}) END")
        # a number only as DuckDB writes it back, and not where the line wrote it otherwise
        number = (f"(regexp_full_match({text}, '-?(0|[1-9][0-9]*)(\\.[0-9]+)?') "
                  f"AND NOT coalesce(list_contains(odd_numbers, $name{i}), FALSE))")
        known.append(f"(j[{i}] IS NULL OR starts_with({text}, '\"') OR {text} IN ('true', 'false') OR {number} "
                     f"OR {as_written} IS NOT NULL)")
        logfmt_values.append(f"trim(list_filter(pairs, lambda p: starts_with(p, $prefix{i}))[1][$skip{i}:], '\"')")
    sql = f"""
        WITH read AS MATERIALIZED (
            SELECT line,
                CASE WHEN starts_with(line, '{{') AND NOT contains(line, '\\') AND NOT contains(line, $fffd)
                          AND NOT regexp_matches(line, $json_unsafe)
                     THEN try(json_extract(line, $paths)) END AS j,
                CASE WHEN j IS NOT NULL AND regexp_matches(line, $json_numbers)
                     THEN regexp_extract_all(line, $named_numbers, 1) END AS odd_numbers,
                CASE WHEN NOT starts_with(line, '{{') AND NOT contains(line, '\\') AND NOT contains(line, $fffd)
                          AND regexp_matches(line, $logfmt_line)
                     THEN regexp_extract_all(line, $pair) END AS pairs
            FROM lines
        ), kinds AS MATERIALIZED (
            SELECT *, CASE WHEN j IS NOT NULL THEN {PARSED_JSON} WHEN pairs IS NOT NULL THEN {PARSED_LOGFMT}
                           ELSE {PARSED_NONE} END::UTINYINT AS parsed,
                      list_value({", ".join(f"CASE WHEN j IS NULL OR {ok} THEN NULL ELSE $name{i} END"
                                            for i, ok in enumerate(known, 1))}) AS unknown
            FROM read
        )
        SELECT parsed, nullif(list_filter(unknown, lambda u: u IS NOT NULL), []) AS {INEXACT_COLUMN},
            {", ".join(
            f"CASE WHEN parsed = {PARSED_JSON} AND NOT list_contains(unknown, $name{i}) THEN {jv} "
            f"WHEN parsed = {PARSED_LOGFMT} THEN {lv} END AS f{i - 1}"
            for i, (jv, lv) in enumerate(zip(json_values, logfmt_values, strict=True), 1))}
        FROM kinds
    """
    params: dict[str, object] = {"fffd": "\ufffd", "json_unsafe": json_unsafe(names),
                                 "json_numbers": JSON_NUMBERS, "named_numbers": _named_numbers(names),
                                 "paths": [f'$."{name}"' for name in names],
                                 "logfmt_line": LOGFMT_LINE, "pair": LOGFMT_PAIR}
    for i, name in enumerate(names, 1):
        params[f"prefix{i}"] = name + "="
        params[f"skip{i}"] = len(name) + 2
        params[f"name{i}"] = name
        params[f"key{i}"] = f'"{name}"\\s*:'
        params[f"written{i}"] = rf'"{name}"\s*:\s*({_JSON_NUMBER})\s*[,}}]'
    con = duckdb.connect(config={"threads": THREADS})
    try:
        con.register("lines", pa.table({"line": lines}))
        out = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()
    columns = {name: out.column(f"f{i}").combine_chunks() for i, name in enumerate(names)}
    return Extracted(out.column(PARSED_COLUMN).combine_chunks(), out.column(INEXACT_COLUMN).combine_chunks(), columns)


SETTLED_KEY = b"lokiarrow.fields"  # a chunk file's key-value metadata: what its field columns settle


PLAIN_DECIMAL = r"-?[0-9]{1,15}(\.[0-9]{1,15})?"  # converts as strconv.ParseFloat does, exactly


def settled_summary(parsed: pa.Array, inexact: pa.Array, columns: dict[str, pa.Array] | None = None) -> bytes:
    """JSON for a chunk file's footer: its rows, how many each parser marked, per field how many
    rows hold it inexactly, and per field column how many values are not plain decimals. A query
    then knows, without a scan, whether every row is settled (and every value a number)."""
    kinds = pc.value_counts(parsed).to_pylist()
    unknown = pc.value_counts(pc.list_flatten(inexact)).to_pylist() if len(inexact) else []
    not_plain = {}
    for name, column in (columns or {}).items():
        plain = pc.match_substring_regex(column, f"^(?:{PLAIN_DECIMAL})$")
        valued = pc.and_(pc.is_valid(column), pc.not_equal(column, ""))
        not_plain[name] = int(pc.sum(pc.and_(valued, pc.invert(plain))).as_py() or 0)
    return json.dumps({"rows": len(parsed), "parsed": {str(k["values"]): k["counts"] for k in kinds},
                       "inexact": {k["values"]: k["counts"] for k in unknown if k["values"] is not None},
                       "not_plain": not_plain}, sort_keys=True).encode()


def numbers_everywhere(summary: bytes | None, kind: int, needed: Iterable[str], field: str) -> bool:
    """Whether every row of the file is settled for `kind` and the `needed` fields and `field`, and
    every value of `field` is absent or a plain decimal (False when the file does not say)."""
    if summary is None:
        return False
    facts = json.loads(summary)
    return _unsettled(facts, kind, [*needed, field]) == 0 and facts.get("not_plain", {}).get(field) == 0


def unsettled_rows(summary: bytes | None, kind: int, needed: Iterable[str]) -> int | None:
    """At most how many rows of a file the columns do not settle for `kind` and the `needed`
    fields (None: the file has no summary)."""
    return None if summary is None else _unsettled(json.loads(summary), kind, needed)


def _unsettled(facts: dict[str, Any], kind: int, needed: Iterable[str]) -> int:
    return int(facts["rows"] - facts["parsed"].get(str(kind), 0) + sum(facts["inexact"].get(n, 0) for n in needed))
