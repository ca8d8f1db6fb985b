from __future__ import annotations

from lokiarrow.store.head import Head
from tests.store.helpers import entries

A = {"app": "a"}
B = {"app": "b"}


def test_exact_duplicates_are_kept_once() -> None:
    head = Head()
    kept, _ = head.add(entries([(A, 1, "x"), (A, 1, "x"), (A, 1, "y"), (B, 1, "x")]))
    assert kept.column("line").to_pylist() == ["x", "y", "x"]
    kept, _ = head.add(entries([(A, 1, "x"), (A, 2, "x"), (B, 1, "y")]))
    assert kept.column("line").to_pylist() == ["x", "y"]
    assert kept.column("ts").to_pylist() == [2, 1]
    assert head.rows == 5


def test_out_of_order_entries_are_accepted_and_ranges_tracked() -> None:
    head = Head()
    head.add(entries([(A, 50, "late"), (A, 10, "early"), (B, 30, "b")]))
    _, streams = head.add(entries([(A, 5, "earlier")]))
    assert head.rows == 4
    assert (head.min_ts, head.max_ts) == (5, 50)
    ids = {text: sid for sid, text in head.streams.items()}
    assert head.stream_range[ids['{app="a"}']] == (5, 50)
    assert list(streams.values()) == ['{app="a"}']
