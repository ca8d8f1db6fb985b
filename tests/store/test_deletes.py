"""Which rows a delete request removes: its selector, its span (both ends included, in ms) and
any pipeline (a line is deleted when it comes out of it); and the requests' file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from lokiarrow.model import labels_string, stream_id
from lokiarrow.store.deletes import PROCESSED, RECEIVED, DeleteRequest, DeleteRequests, Deletion
from lokiarrow.store.fs import Root

MS = 10**6
T0 = 1_768_780_800_000   # ms


def _table(rows: list[tuple[dict[str, str], int, str]]) -> tuple[pa.Table, dict[int, dict[str, str]]]:
    ids = [stream_id(labels_string(labels)) for labels, _, _ in rows]
    labels_of = {i: labels for i, (labels, _, _) in zip(ids, rows, strict=True)}
    table = pa.table({"stream_id": pa.array(ids, pa.int64()), "ts": pa.array([ts for _, ts, _ in rows], pa.int64()),
                      "line": [line for _, _, line in rows]})
    return table, labels_of


def _request(query: str, start_ms: int, end_ms: int) -> DeleteRequest:
    return DeleteRequest("id", start_ms, end_ms, query, RECEIVED, 0)


def test_selector_span_and_pipeline_choose_the_rows() -> None:
    a, b = {"app": "a"}, {"app": "b"}
    table, labels_of = _table([
        (a, T0 * MS, '{"level":"debug","msg":"secret"}'),
        (a, (T0 + 1) * MS + 999_999, '{"level":"info","msg":"secret"}'),     # the end ms, included
        (a, (T0 + 2) * MS, '{"level":"debug","msg":"later"}'),               # after the span
        (b, T0 * MS, '{"level":"debug","msg":"secret"}'),                    # another stream
    ])
    doomed = Deletion.of([_request('{app="a"} |= "secret"', T0, T0 + 1)]).doomed(table, labels_of)
    assert doomed.to_pylist() == [True, True, False, False]
    parsed = Deletion.of([_request('{app=~"a|b"} | json | level="debug"', T0, T0 + 5)]).doomed(table, labels_of)
    assert parsed.to_pylist() == [True, False, True, True]
    both = Deletion.of([_request('{app="b"}', T0, T0), _request('{app="a"} != "secret"', T0, T0 + 5)])
    assert both.doomed(table, labels_of).to_pylist() == [False, False, True, True]
    assert both.touches({"app": "a"}, (T0 + 2) * MS, (T0 + 9) * MS)
    assert not both.touches({"app": "c"}, T0 * MS, (T0 + 9) * MS)


def test_requests_are_kept_in_their_file(tmp_path: Path) -> None:
    requests = DeleteRequests(Root(str(tmp_path)), "t")
    first = requests.add('{app="a"}', T0, T0 + 10, T0 + 100)
    second = requests.add('{app="b"}', T0, T0 + 10, T0 + 200)
    assert [r.request_id for r in requests.due(T0 + 250, 100)] == [first.request_id]
    requests.mark_processed({first.request_id})
    again = DeleteRequests(Root(str(tmp_path)), "t")          # as read back after a restart
    assert [(r.query, r.status) for r in again.all()] == [('{app="a"}', PROCESSED), ('{app="b"}', RECEIVED)]
    again.remove(second.request_id)
    assert [r.request_id for r in requests.all()] == [first.request_id]
    assert (tmp_path / "t" / "deletes" / "requests.json").is_file()
