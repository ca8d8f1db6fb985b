"""The benchmark's log queries, each with its floor: the same question asked by hand of the raw stack.

A `Query` names a LogQL query, its time window, and what its floor must compute: the streams it
selects (a predicate over labels), its line filters (substrings, JSON fields, logfmt durations,
regexp groups) and the line it answers (the line, or a JSON field of it for `line_format`).
`floor_duckdb` and `floor_polars` answer it as one DuckDB query and one Polars lazy scan over the
server's Parquet chunk files (stream ids resolved from its index files beforehand, as a person
writing the query by hand would), returning the same newest (or oldest) `limit` lines. To add a
query, add an entry to `build_queries`; a floor that needs a new kind of filter adds a field to
`Query` and its translation to both floor functions.

The floors read only the columns `stream_id, ts, line`, which every chunk file has; files may hold
other columns or not (DuckDB reads the selected columns by name, Polars ignores extra ones).
Everything is vectorised SQL or Polars expressions, never a Python function per line: a Go duration
(`850ms`, `1.5s`, `2m3s`) is read as the sum of its number+unit pairs (`go_duration_ns`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from bench.generate import Dataset
from bench.legacy import LegacyDataset

HOUR_NS = 3600 * 10**9
Labels = dict[str, str]

# nginx's combined log format up to the body size, as a person would write it for `| regexp`
NGINX_PATTERN = (r'^(?P<remote_addr>\S+) \S+ \S+ \[(?P<time_local>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) [^"]*" '
                 r'(?P<status>\d{3}) (?P<body_bytes_sent>\d+)')

# Go's time.ParseDuration units in ns; one number+unit pair of a duration (longest units first, so
# `ms` is not read as `m` then `s`). A sign applies to the whole duration (`-1m30s`).
GO_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
                     "m": 60 * 10**9, "h": 3600 * 10**9}
GO_DURATION_PART = (r"([0-9]+\.?[0-9]*|\.[0-9]+)("
                    + "|".join(sorted(GO_DURATION_UNITS, key=len, reverse=True)) + ")")


@dataclass(frozen=True)
class Target:
    """The bar from ANCHORS.md: an absolute time, a multiple of the floor, or both."""

    ms: float | None = None
    floor_ratio: float | None = None
    note: str = ""

    def met(self, ours_ms: float, floor_ms: float | None) -> bool:
        ok = self.ms is None or ours_ms <= self.ms
        if self.floor_ratio is not None and floor_ms:
            ok = ok and ours_ms <= self.floor_ratio * floor_ms
        return ok

    def __str__(self) -> str:
        parts = ([f"≤ {self.ms:g} ms"] if self.ms is not None else []) + (
            [f"≤ {self.floor_ratio:g} × floor"] if self.floor_ratio is not None else [])
        return " and ".join(parts) + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Query:
    name: str
    title: str
    logql: str
    start: int                                  # ns, inclusive
    end: int                                    # ns, exclusive
    streams: Callable[[Labels], bool]           # the floor's stream selection
    contains: tuple[str, ...] = ()              # the floor's line filters (all must hold)
    json_equals: tuple[tuple[str, str], ...] = ()  # the floor's top-level JSON field equalities
    duration_gt: tuple[tuple[str, int], ...] = ()  # the floor's logfmt fields holding a Go duration > ns
    regexp_equals: tuple[tuple[str, str, str], ...] = ()  # (pattern, group, value): `| regexp | group="value"`
    line_json: str | None = None                # the answer's line: this top-level JSON field (line_format)
    limit: int = 1000
    backward: bool = True
    target: Target = Target()
    peers: str = ""                             # Loki / VictoriaLogs figures from ANCHORS.md


def _pick_pods(ds: Dataset, count: int = 3) -> list[str]:
    """`count` pods ranked a quarter from the top by volume: about 2,000 lines in the last hour at
    5 M lines, so the limit of 1000 is reached (Loki read 2.4 k lines for this query)."""
    ranked = sorted(ds.streams, key=lambda s: (-s.lines, s.pod))
    at = len(ranked) // 4
    return [s.pod for s in ranked[at:at + count]]


def _pick_namespace(ds: Dataset, share: float = 0.10) -> str:
    """The namespace whose share of the lines is closest to `share`."""
    return min(ds.namespace_share().items(), key=lambda kv: (abs(kv[1] - share), kv[0]))[0]


def build_queries(ds: Dataset, legacy: LegacyDataset) -> list[Query]:
    """The benchmark's log queries over these data sets (pods and namespace picked from the JSON set's
    volumes; e and g read the legacy set, whose streams have no `namespace` label)."""
    pods = _pick_pods(ds)
    ns = _pick_namespace(ds)
    day = (ds.start_ns, ds.end_ns)
    last_hour = (ds.end_ns - HOUR_NS, ds.end_ns)
    legacy_day = (legacy.start_ns, legacy.end_ns)
    return [
        Query("a", "3 pods, last 1 h", f'{{pod=~"{"|".join(pods)}"}}', *last_hour,
              streams=lambda lb: lb.get("pod") in pods,
              target=Target(ms=10), peers="Loki 10 ms, VictoriaLogs 11 ms"),
        Query("b", f"1 namespace ({ns}), `error`, 24 h", f'{{namespace="{ns}"}} |= "error"', *day,
              streams=lambda lb: lb.get("namespace") == ns, contains=("error",),
              target=Target(ms=75, note="at 5 M lines"), peers="Loki 127 ms, VictoriaLogs 75 ms"),
        Query("c", "all streams, rare `timeout`, 24 h", '{namespace=~".+"} |= "timeout"', *day,
              streams=lambda lb: bool(lb.get("namespace")), contains=("timeout",),
              target=Target(floor_ratio=1.5), peers="Loki 5.1 s (0.9–6.5), VictoriaLogs 192 ms"),
        Query("d", "all streams, JSON `level` = error, 24 h", '{namespace=~".+"} | json | level="error"', *day,
              streams=lambda lb: bool(lb.get("namespace")), json_equals=(("level", "error"),),
              target=Target(ms=80, floor_ratio=2), peers="Loki 2.27 s, VictoriaLogs 120–252 ms"),
        Query("e", "logfmt streams, Go duration > 1s, 24 h", '{format="logfmt"} | logfmt | duration > 1s',
              *legacy_day, streams=lambda lb: lb.get("format") == "logfmt", duration_gt=(("duration", 10**9),),
              target=Target(floor_ratio=2)),
        Query("f", f"1 namespace ({ns}), JSON `msg` as the line, 24 h",
              f'{{namespace="{ns}"}} | json | line_format "{{{{.msg}}}}"', *day,
              streams=lambda lb: lb.get("namespace") == ns, line_json="msg", target=Target(floor_ratio=2)),
        Query("g", "nginx streams, regexp `status` = 500, 24 h",
              f'{{format="nginx"}} | regexp `{NGINX_PATTERN}` | status="500"', *legacy_day,
              streams=lambda lb: lb.get("format") == "nginx", regexp_equals=((NGINX_PATTERN, "status", "500"),),
              target=Target(floor_ratio=2)),
    ]


# --- the store as a person writing the floor sees it --------------------------------------------

_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class StoreFiles:
    chunks_glob: str
    streams: dict[int, Labels]                  # stream_id -> labels, from the index files

    @classmethod
    def open(cls, tenant_dir: Path) -> StoreFiles:
        index = sorted((tenant_dir / "index").glob("day=*/*.parquet"))
        streams: dict[int, Labels] = {}
        if index:
            table = pa.concat_tables([pq.read_table(p, columns=["stream_id", "labels"]) for p in index])
            for sid, text in zip(table.column("stream_id").to_pylist(), table.column("labels").to_pylist(),
                                 strict=True):
                if sid not in streams:
                    streams[sid] = dict(_PAIR.findall(text))
        return cls(str(tenant_dir / "chunks" / "day=*" / "*.parquet"), streams)

    def stream_ids(self, q: Query) -> list[int] | None:
        """The ids the query selects; None when it selects every stream (no filter needed)."""
        return self.select(q.streams)

    def select(self, streams: Callable[[Labels], bool]) -> list[int] | None:
        """The ids of the streams whose labels `streams` accepts; None when it accepts every stream."""
        ids = sorted(sid for sid, labels in self.streams.items() if streams(labels))
        return None if len(ids) == len(self.streams) else ids


def logfmt_value_pattern(key: str) -> str:
    """A regex whose group 1 is the unquoted value of logfmt field `key`."""
    return rf"(?:^|\s){re.escape(key)}=(\S*)"


def regexp_group(pattern: str, name: str) -> int:
    """The index of named group `name` in `pattern` (the same numbering in RE2, Rust's regex and re)."""
    return re.compile(pattern).groupindex[name]


def setup_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """Define what the DuckDB floors use, once per connection: the macro `go_duration_ns(text)`, Go's
    duration text in ns as a SQL expression (NULL when the text holds no number+unit pair)."""
    units = " ".join(f"WHEN '{unit}' THEN {ns}" for unit, ns in GO_DURATION_UNITS.items())
    con.execute(f"CREATE OR REPLACE MACRO go_duration_ns(d) AS "
                f"(CASE WHEN starts_with(d, '-') THEN -1 ELSE 1 END) * list_sum(list_transform("
                f"regexp_extract_all(d, '{GO_DURATION_PART}', ['n', 'u']), "
                f"lambda p: CAST(p.n AS DOUBLE) * CASE p.u {units} END))")


def go_duration_ns(text: pl.Expr) -> pl.Expr:
    """Go's duration text in ns as a Polars expression (0 when the text holds no number+unit pair)."""
    part = pl.element()
    ns = text.str.extract_all(GO_DURATION_PART).list.eval(
        part.str.extract(r"^[0-9.]+", 0).cast(pl.Float64)
        * part.str.extract(r"[^0-9.]+$", 0).replace_strict(GO_DURATION_UNITS, return_dtype=pl.Float64)).list.sum()
    return pl.when(text.str.starts_with("-")).then(-ns).otherwise(ns)


def floor_duckdb(con: duckdb.DuckDBPyConnection, files: StoreFiles, q: Query,
                 ids: list[int] | None) -> pa.Table:
    """The query as one DuckDB statement (`setup_duckdb(con)` first)."""
    where = ["ts >= ?", "ts < ?"]
    params: list[object] = [q.start, q.end]
    if ids is not None:
        where.append(f"stream_id IN ({', '.join('?' * len(ids))})")
        params += ids
    for text in q.contains:
        where.append("contains(line, ?)")
        params.append(text)
    for key, value in q.json_equals:
        where.append("json_extract_string(line, ?) = ?")
        params += [f"$.{key}", value]
    for key, ns in q.duration_gt:
        where.append("go_duration_ns(regexp_extract(line, ?, 1)) > ?")
        params += [logfmt_value_pattern(key), ns]
    for pattern, group, value in q.regexp_equals:
        where.append("regexp_extract(line, ?, ?) = ?")
        params += [pattern, regexp_group(pattern, group), value]
    order = f"ORDER BY ts {'DESC' if q.backward else 'ASC'}"
    sql = (f"SELECT stream_id, ts, line FROM read_parquet(?, hive_partitioning = false) "
           f"WHERE {' AND '.join(where)} {order} LIMIT ?")
    params = [files.chunks_glob, *params, q.limit]
    if q.line_json is not None:  # format only the lines answered
        sql = f"SELECT stream_id, ts, json_extract_string(line, ?) AS line FROM ({sql}) {order}"
        params.insert(0, f"$.{q.line_json}")
    return con.sql(sql, params=params).to_arrow_table()


def floor_polars(files: StoreFiles, q: Query, ids: list[int] | None) -> pa.Table:
    """The query as one Polars lazy scan."""
    line = pl.col("line")
    cond = (pl.col("ts") >= q.start) & (pl.col("ts") < q.end)
    if ids is not None:
        cond &= pl.col("stream_id").is_in(ids)
    for text in q.contains:
        cond &= line.str.contains(text, literal=True)
    for key, value in q.json_equals:
        cond &= line.str.json_path_match(f"$.{key}") == value
    for key, ns in q.duration_gt:
        cond &= go_duration_ns(line.str.extract(logfmt_value_pattern(key), 1)) > ns
    for pattern, group, value in q.regexp_equals:
        cond &= line.str.extract(pattern, regexp_group(pattern, group)) == value
    scan = pl.scan_parquet(files.chunks_glob, hive_partitioning=False, extra_columns="ignore").filter(cond)
    scan = scan.select("stream_id", "ts", "line")
    picked = scan.top_k(q.limit, by="ts") if q.backward else scan.bottom_k(q.limit, by="ts")
    if q.line_json is not None:  # format only the lines answered
        picked = picked.with_columns(line.str.json_path_match(f"$.{q.line_json}"))
    return picked.sort("ts", descending=q.backward).collect().to_arrow()
