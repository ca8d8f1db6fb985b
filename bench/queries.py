"""The benchmark's log queries, each with its floor: the same question asked by hand of the raw stack.

A `Query` names a LogQL query, its time window, and what its floor must compute: the streams it
selects (a predicate over labels) and its line filters. `floor_duckdb` and `floor_polars` answer it
as one DuckDB query and one Polars lazy scan over the server's Parquet chunk files (stream ids
resolved from its index files beforehand, as a person writing the query by hand would), returning
the same newest (or oldest) `limit` lines. To add a query, add an entry to `build_queries`; a floor
that needs more than substring filters (a regex, a JSON field) adds a field to `Query` and its
translation to both floor functions.
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

HOUR_NS = 3600 * 10**9
Labels = dict[str, str]


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


def build_queries(ds: Dataset) -> list[Query]:
    """The benchmark's log queries over this dataset (pods and namespace picked from its volumes)."""
    pods = _pick_pods(ds)
    ns = _pick_namespace(ds)
    day = (ds.start_ns, ds.end_ns)
    last_hour = (ds.end_ns - HOUR_NS, ds.end_ns)
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
        ids = sorted(sid for sid, labels in self.streams.items() if q.streams(labels))
        return None if len(ids) == len(self.streams) else ids


def floor_duckdb(con: duckdb.DuckDBPyConnection, files: StoreFiles, q: Query,
                 ids: list[int] | None) -> pa.Table:
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
    sql = (f"SELECT stream_id, ts, line FROM read_parquet(?, hive_partitioning = false) "
           f"WHERE {' AND '.join(where)} ORDER BY ts {'DESC' if q.backward else 'ASC'} LIMIT ?")
    return con.sql(sql, params=[files.chunks_glob, *params, q.limit]).to_arrow_table()


def floor_polars(files: StoreFiles, q: Query, ids: list[int] | None) -> pa.Table:
    cond = (pl.col("ts") >= q.start) & (pl.col("ts") < q.end)
    if ids is not None:
        cond &= pl.col("stream_id").is_in(ids)
    for text in q.contains:
        cond &= pl.col("line").str.contains(text, literal=True)
    for key, value in q.json_equals:
        cond &= pl.col("line").str.json_path_match(f"$.{key}") == value
    scan = pl.scan_parquet(files.chunks_glob, hive_partitioning=False).filter(cond)
    scan = scan.select("stream_id", "ts", "line")
    picked = scan.top_k(q.limit, by="ts") if q.backward else scan.bottom_k(q.limit, by="ts")
    return picked.sort("ts", descending=q.backward).collect().to_arrow()
