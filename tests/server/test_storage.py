"""Flush writes day-partitioned Parquet + index; queries open only the files the index names."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow.parquet as pq

from tests.conftest import Server
from tests.server.pushing import BASE_NS, lines, push, query

HOUR = 3600 * 10**9


def test_flush_writes_hourly_files_in_day_partitions_with_index(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as c:
        # 22:00 on the 19th to 01:00 on the 20th, out of order
        push(c, {"app": "days"}, [[BASE_NS + 3 * HOUR, "next day"], [BASE_NS, "first day"],
                                  [BASE_NS + HOUR, "second hour"]])
        push(c, {"app": "days", "pod": "b"}, [[BASE_NS + 5, "b"]])
        assert c.post("/flush").status_code == 204
        assert lines(query(c, '{app="days"}')) == ["next day", "second hour", "b", "first day"]
    data = server.data_dir / "fake"
    hour22, hour23 = sorted(data.glob("chunks/day=2026-01-19/*.parquet"))  # one file per hour
    [day2] = data.glob("chunks/day=2026-01-20/*.parquet")
    assert pq.read_table(hour23).column("line").to_pylist() == ["second hour"]
    chunk = pq.read_table(hour22)
    assert chunk.column_names == ["stream_id", "ts", "line", "metadata", "metadata_set"]
    pairs = list(zip(chunk.column("stream_id").to_pylist(), chunk.column("ts").to_pylist(), strict=True))
    assert pairs == sorted(pairs)
    assert pq.ParquetFile(hour22).metadata.row_group(0).column(2).compression == "ZSTD"
    index = pq.read_table(sorted(data.glob("index/day=2026-01-19/*.parquet"))[0])
    assert sorted(index.column("rows").to_pylist()) == [1, 1]
    assert set(index.column("chunk").to_pylist()) == {str(hour22.relative_to(server.data_dir))}
    assert pq.read_table(day2).num_rows == 1
    assert not list(data.glob("wal/*.arrow"))  # the flushed segments are retired


def test_queries_open_only_chunks_the_index_points_to(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as c:
        push(c, {"app": "a"}, [[BASE_NS + i, f"a{i}"] for i in range(5)])
        c.post("/flush")
        push(c, {"app": "b"}, [[BASE_NS + i, f"b{i}"] for i in range(5)])
        c.post("/flush")
        push(c, {"app": "b"}, [[BASE_NS + 2 * 86_400 * 10**9, "b later"]])
        c.post("/flush")
        chunks = sorted(server.data_dir.glob("fake/chunks/day=*/*.parquet"))
        assert len(chunks) == 3
        chunk_of_a, chunk_of_b, later_b = chunks
        # stream pruning: a query for b never opens a's file, so deleting it changes nothing for b
        chunk_of_a.unlink()
        assert lines(query(c, '{app="b"}', limit=10, end=BASE_NS + 3 * 86_400 * 10**9)) == ["b later", "b4", "b3", "b2", "b1", "b0"]
        # time pruning: a window before the later day never opens the later file
        later_b.unlink()
        assert lines(query(c, '{app="b"}', end=BASE_NS + 86_400 * 10**9)) == ["b4", "b3", "b2", "b1", "b0"]
        # opening a deleted file fails loudly, so the two answers above prove the files were skipped
        assert c.get("/loki/api/v1/query_range", params={"query": '{app="a"}', "start": BASE_NS - 1,
                                                          "end": BASE_NS + 10**9}).status_code >= 500


def test_exact_duplicates_are_stored_once(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as c:
        values = [[BASE_NS + 1, "same"], [BASE_NS + 1, "same"], [BASE_NS + 1, "other at same ts"]]
        push(c, {"app": "dup"}, values)
        push(c, {"app": "dup"}, values)  # a client retry
        assert sorted(lines(query(c, '{app="dup"}'))) == ["other at same ts", "same"]
        c.post("/flush")
        assert sorted(lines(query(c, '{app="dup"}'))) == ["other at same ts", "same"]
    [chunk] = server.data_dir.glob("fake/chunks/day=*/*.parquet")
    assert pq.read_table(chunk).num_rows == 2
