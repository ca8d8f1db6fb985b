"""A writer's answer to readers: its unflushed entries and lately flushed files (wire/heads.py).

Readers of a scaled-out deployment ask every writer for each query, as Loki's queriers ask the
ingesters, so a line is visible as soon as its push returned. The answer is taken from one
snapshot of the tenant, so an entry is either among the heads or in a file the index rows name.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.exec.sources import head_rows
from lokiarrow.model import Matcher
from lokiarrow.server.deps import ServicesDep, TenantDep
from lokiarrow.store.schema import INDEX
from lokiarrow.store.tenant import TenantStore
from lokiarrow.wire import heads

router = APIRouter()


@router.post(heads.PATH)
async def unflushed(request: Request, svc: ServicesDep, tenant: TenantDep) -> Response:
    try:
        ask = orjson.loads(await request.body())
        start, end, rows = int(ask["start"]), int(ask["end"]), bool(ask.get("rows", True))
        groups = heads.selectors_of(ask.get("selectors"))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, LokiError) as exc:
        raise BadRequest(f"invalid request: {exc}") from None
    store = svc.store.existing(tenant)
    if store is None:
        body = heads.encode(heads.HELD.empty_table(), INDEX.empty_table())
    else:
        body = await run_in_threadpool(_answer, store, start, end, groups, rows)
    return Response(body, media_type=heads.MEDIA_TYPE)


def _answer(store: TenantStore, start: int, end: int, groups: list[tuple[Matcher, ...]] | None, rows: bool) -> bytes:
    snapshot = store.snapshot()
    streams = snapshot.index.streams
    ids = set(streams.labels) if groups is None else set().union(*(streams.match(g) for g in groups))
    parts = []
    for rank, table in head_rows(snapshot, ids, start, end):
        if not rows:
            table = _first_and_last(table)
        parts.append(table.append_column("head", pa.array(np.full(table.num_rows, rank, np.int32))))
    entries = pa.concat_tables(parts) if parts else heads.HELD.empty_table()
    recent = store.recent()
    if recent.num_rows:
        # every stream's rows, not only the wanted ones': a reader tells from them whether a file
        # holds other streams (and must then test each row's stream)
        recent = recent.filter(pc.and_(pc.greater_equal(recent.column("max_ts"), start),
                                       pc.less(recent.column("min_ts"), end)))
    return heads.encode(entries, recent)


def _first_and_last(table: pa.Table) -> pa.Table:
    """Each stream's first and last entry: enough to tell which streams have entries in the span."""
    order = pc.sort_indices(table, [("stream_id", "ascending"), ("ts", "ascending")])
    sids = table.column("stream_id").take(order).to_numpy()
    edges = np.flatnonzero(np.diff(sids)) if len(sids) else np.array([], np.int64)
    firsts = np.concatenate([[0], edges + 1]) if len(sids) else edges
    lasts = np.concatenate([edges, [len(sids) - 1]]) if len(sids) else edges
    keep = np.unique(np.concatenate([firsts, lasts]))
    return table.take(order.take(pa.array(keep)))
