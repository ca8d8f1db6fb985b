"""The benchmark's data and the floors of its pipeline queries (e, f, g), without a server.

The JSON set must stay the bytes ANCHORS.md measured; the plain-text set must be deterministic and
hold what queries e and g look for; the floors must read Go durations as Go does and agree with
each other over chunk files whose extra columns differ.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench import generate, legacy
from bench.queries import (
    NGINX_PATTERN,
    Query,
    StoreFiles,
    build_queries,
    floor_duckdb,
    floor_polars,
    go_duration_ns,
    setup_duckdb,
)
from lokiarrow.units import go_duration_ns as go_reference

SPEC = generate.Spec(3000, 42, 4, 1000)
JSON_SET_SHA256 = "d9d79c4a8172999c1f76bbf4682fc95e4699e3ca9c641704116594fe8d727f7e"


def _digest(batches: list[generate.Batch]) -> str:
    h = hashlib.sha256()
    for b in batches:
        h.update("|".join(b.streams).encode())
        h.update(b.ts.tobytes())
        h.update("\n".join(b.lines.to_pylist()).encode())
    return h.hexdigest()


def test_json_set_is_unchanged() -> None:
    assert _digest(list(generate.build(SPEC).batches())) == JSON_SET_SHA256


def test_legacy_set_is_deterministic_and_has_no_namespace() -> None:
    one, two = legacy.build(SPEC), legacy.build(SPEC)
    assert _digest(list(one.batches())) == _digest(list(two.batches()))
    assert one.cache_key() != SPEC.key()
    assert all("namespace" not in s.labels and "pod" not in s.labels for s in one.streams)
    assert sum(len(b.lines) for b in one.batches()) == SPEC.lines


def test_legacy_lines_hold_what_the_queries_look_for() -> None:
    lines = pa.chunked_array([b.lines for b in legacy.build(generate.Spec(20_000)).batches()]).combine_chunks()
    is_logfmt = pc.starts_with(lines, "ts=")
    durations = pc.extract_regex(lines.filter(is_logfmt), r"duration=(?P<d>\S+)").field("d").to_pylist()
    ns = np.array([go_reference(d) for d in durations])
    assert 0.01 < (ns > 10**9).mean() < 0.05
    assert any(d.endswith("µs") for d in durations) and any(d.endswith("ms") for d in durations)
    nginx = lines.filter(pc.invert(is_logfmt))
    status = pc.extract_regex(nginx, NGINX_PATTERN).field("status")
    assert status.null_count == 0
    assert 0.01 < pc.mean(pc.cast(pc.equal(status, "500"), pa.int8())).as_py() < 0.04


@pytest.mark.parametrize("text", ["850ms", "1.5s", "2m3s", "1h", "1h0m2.5s", "12.345ms", "850µs", "850μs",
                                  "3us", "10ns", "-1m30s", "+2s", ".5s", "1.s", "2h45m10.5s", "1000ms"])
def test_go_durations_read_as_go_reads_them(text: str) -> None:
    con = duckdb.connect()
    setup_duckdb(con)
    ours_sql = con.sql("SELECT go_duration_ns(?)", params=[text]).fetchall()[0][0]
    ours_polars = pl.select(go_duration_ns(pl.lit(text))).item()
    assert round(ours_sql) == round(ours_polars) == go_reference(text)


def _store(tmp_path: Path, lg: legacy.LegacyDataset, ds: generate.Dataset) -> StoreFiles:
    """Both sets as two chunk files with different extra columns, the way the store may write them."""
    streams = {k: s.labels for k, s in enumerate(ds.streams)}
    streams |= {len(ds.streams) + k: s.labels for k, s in enumerate(lg.streams)}
    folder = tmp_path / "chunks" / "day=2026-01-19"
    folder.mkdir(parents=True)
    for name, data, offset, extra in (("a", ds, 0, {"kind": "x"}), ("b", lg, len(ds.streams), {})):
        batches = list(data.batches())
        table = pa.table({
            "stream_id": np.concatenate([offset + data.stream_of_line[b:e] for _, b, e in data.bounds]),
            "ts": np.concatenate([b.ts for b in batches]),
            "line": pa.concat_arrays([b.lines for b in batches]),
            **{k: pa.array([v] * len(data.ts)) for k, v in extra.items()},
        })
        pq.write_table(table, folder / f"{name}.parquet")
    return StoreFiles(str(tmp_path / "chunks" / "day=*" / "*.parquet"), streams)


def test_pipeline_floors_agree(tmp_path: Path) -> None:
    ds, lg = generate.build(SPEC), legacy.build(generate.Spec(legacy.MIN_LINES))
    files = _store(tmp_path, lg, ds)
    con = duckdb.connect()
    setup_duckdb(con)
    queries: dict[str, Query] = {q.name: q for q in build_queries(ds, lg)}
    for name in "efg":
        q = queries[name]
        ids = files.stream_ids(q)
        by_duckdb, by_polars = floor_duckdb(con, files, q, ids), floor_polars(files, q, ids)
        assert 0 < by_duckdb.num_rows <= q.limit
        assert by_duckdb.select(["ts", "line"]).to_pylist() == by_polars.select(["ts", "line"]).to_pylist()
    slow = floor_polars(files, queries["e"], files.stream_ids(queries["e"])).column("line").to_pylist()
    assert all(go_reference(line.split("duration=")[1].split()[0]) > 10**9 for line in slow)
    formatted = floor_duckdb(con, files, queries["f"], files.stream_ids(queries["f"])).column("line").to_pylist()
    assert all(not text.startswith("{") for text in formatted)
