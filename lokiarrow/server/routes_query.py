"""Loki's read endpoints: query, query_range, labels, label values, series.

Query answers are Loki's JSON unless the request asks otherwise (`server/encodings`): encoding flags
(`categorize-labels`) or a Parquet file. Every querier call runs under the tenant's `query_timeout`
(`run_query`): past it the request answers 504 with Loki's message at once, and the work still
running in its thread is stopped (exec/duck.py `Deadline`), as it is when the client goes away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lokiarrow.config import smallest_positive
from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.exec.broken_files import quarantine_broken
from lokiarrow.exec.duck import Deadline, QueryTimeout
from lokiarrow.exec.engine import RangeRequest
from lokiarrow.exec.query_size import check_query_bytes
from lokiarrow.frontend.downstream import Downstream, split_query_range
from lokiarrow.logql.parser import parse_expr
from lokiarrow.logql.printer import format_expr
from lokiarrow.server.deps import ParamsDep, QueryTenantDep, Services, ServicesDep
from lokiarrow.server.encodings import (
    ENCODING_FLAGS_HEADER,
    PARQUET_TYPE,
    encoding_flags,
    parquet_answer,
    with_encoding_flags,
)
from lokiarrow.server.params import (
    parse_backward,
    parse_bounds,
    parse_limit,
    parse_selector,
    parse_series_groups,
    parse_step,
    parse_time,
)
from lokiarrow.units import format_duration, go_time_duration

router = APIRouter()
T = TypeVar("T")


async def run_query(request: Request, svc: Services, tenant: str, fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in a worker thread within the tenant's `query_timeout` (0: no limit), as Loki's
    querier bounds each query: past it, QueryTimeout (504), and the thread's work is abandoned and
    told to stop. A query of several tenants (`a|b`) gets the smallest of their timeouts, as in Loki.
    A client that goes away stops the work too. A query that fails on an unreadable chunk file
    runs again once the file is quarantined (exec/broken_files.py), up to QUARANTINE_RETRIES times."""
    timeout_ns = smallest_positive(svc.limits(one).query_timeout for one in tenant.split("|"))
    for attempt in range(QUARANTINE_RETRIES + 1):
        deadline = Deadline(timeout_ns if timeout_ns > 0 else None)
        try:
            return await _run_bounded(request, deadline, fn, *args)
        except LokiError:
            raise
        except Exception as exc:
            if attempt == QUARANTINE_RETRIES or not await run_in_threadpool(
                    quarantine_broken, svc.store, tenant, exc, deadline.reads):
                raise
    raise AssertionError("unreachable")


QUARANTINE_RETRIES = 3
DISCONNECT_POLL_S = 0.1


async def _run_bounded(request: Request, deadline: Deadline, fn: Callable[..., T], *args: object) -> T:
    watcher = asyncio.create_task(_stop_when_gone(request, deadline))
    left_ns = None if deadline.at_ns is None else max(0, deadline.at_ns - time.monotonic_ns())
    try:
        with anyio.fail_after(None if left_ns is None else left_ns / 1e9):
            return await anyio.to_thread.run_sync(deadline.run, fn, *args, abandon_on_cancel=True)
    except TimeoutError:
        deadline.expire()
        raise QueryTimeout() from None
    finally:
        watcher.cancel()


async def _stop_when_gone(request: Request, deadline: Deadline) -> None:
    while not await request.is_disconnected():
        await anyio.sleep(DISCONNECT_POLL_S)
    deadline.expire("client disconnected")


def check_query_length(svc: Services, tenant: str, start: int, end: int) -> None:
    """Loki's `max_query_length` (the smallest of a multi-tenant query's; 0: none), on the range
    in whole milliseconds as Loki's frontend measures it."""
    limit = smallest_positive(svc.limits(one).max_query_length for one in tenant.split("|"))
    length = (end // 10**6 - start // 10**6) * 10**6
    if limit and length > limit:
        raise BadRequest(f"the query time range exceeds the limit (query length: {go_time_duration(length)}, "
                         f"limit: {format_duration(limit)})")


async def check_bytes_read(request: Request, svc: Services, tenant: str, query: str, start: int, end: int) -> None:
    """Loki's `max_query_bytes_read` (exec/query_size.py), estimated in a worker when a limit is set."""
    limit = smallest_positive(svc.limits(one).max_query_bytes_read for one in tenant.split("|"))
    if limit > 0:
        await run_query(request, svc, tenant, check_query_bytes, svc.querier.snapshot, tenant, query, start, end, limit)


def success(data: Any) -> Response:
    return Response(orjson.dumps({"status": "success", "data": data}), media_type="application/json")


async def query_answer(request: Request, query: str, data: dict[str, Any]) -> Response:
    """A query's `data` in the encoding the request asks for."""
    flags = encoding_flags(request.headers.get(ENCODING_FLAGS_HEADER))
    if flags and data["resultType"] == "streams":
        data = with_encoding_flags(data, flags, parse_expr(query))
    if request.headers.get("accept") == PARQUET_TYPE:
        return Response(await run_in_threadpool(parquet_answer, data), media_type=PARQUET_TYPE)
    return success(data)


@router.api_route("/loki/api/v1/query_range", methods=["GET", "POST"])
async def query_range(request: Request, svc: ServicesDep, tenant: QueryTenantDep, p: ParamsDep) -> Response:
    query = p.get("query")
    if not query:
        raise BadRequest("query parameter is required")  # Loki: empty query
    start, end = parse_bounds(p)
    req = RangeRequest(query, start, end, parse_limit(p), parse_backward(p), parse_step(p, start, end))
    check_query_length(svc, tenant, start, end)
    await check_bytes_read(request, svc, tenant, query, start, end)
    if svc.config.frontend.downstream_url:   # split by interval, parts run downstream (lokiarrow/frontend)
        downstream = Downstream.of(svc.config.frontend.downstream_url, request.headers)
        data = await split_query_range(downstream, req, p.get("step", ""), [svc.limits(t) for t in tenant.split("|")])
        if data is not None:   # the parts answered in the encoding flags asked for; Parquet is made here
            if request.headers.get("accept") == PARQUET_TYPE:
                return Response(await run_in_threadpool(parquet_answer, data), media_type=PARQUET_TYPE)
            return success(data)
    return await query_answer(request, query, await run_query(request, svc, tenant, svc.querier.query_range, tenant, req))


@router.api_route("/loki/api/v1/query", methods=["GET", "POST"])
async def query(request: Request, svc: ServicesDep, tenant: QueryTenantDep, p: ParamsDep) -> Response:
    query = p.get("query")
    if not query:
        raise BadRequest("query parameter is required")
    at = parse_time(p.get("time"), time.time_ns())
    parse_limit(p)
    parse_backward(p)
    await check_bytes_read(request, svc, tenant, query, at, at)
    return await query_answer(request, query, await run_query(request, svc, tenant, svc.querier.query_instant, tenant, query, at))


@router.api_route("/loki/api/v1/labels", methods=["GET", "POST"])
@router.api_route("/loki/api/v1/label", methods=["GET", "POST"])
async def labels(request: Request, svc: ServicesDep, tenant: QueryTenantDep, p: ParamsDep) -> Response:
    start, end = parse_bounds(p)
    check_query_length(svc, tenant, start, end)
    return success(await run_query(request, svc, tenant, svc.querier.labels, tenant, start, end, parse_selector(p)))


@router.api_route("/loki/api/v1/label/{name}/values", methods=["GET", "POST"])
async def label_values(request: Request, name: str, svc: ServicesDep, tenant: QueryTenantDep, p: ParamsDep) -> Response:
    start, end = parse_bounds(p)
    check_query_length(svc, tenant, start, end)
    return success(await run_query(request, svc, tenant, svc.querier.label_values, tenant, name, start, end,
                                     parse_selector(p)))


@router.api_route("/loki/api/v1/series", methods=["GET", "POST"])
async def series(request: Request, svc: ServicesDep, tenant: QueryTenantDep, p: ParamsDep) -> Response:
    start, end = parse_bounds(p)
    check_query_length(svc, tenant, start, end)
    selectors = request.query_params.getlist("match[]") + request.query_params.getlist("match")
    if request.method == "POST":
        form = await request.form()
        selectors += [str(v) for v in form.getlist("match[]") + form.getlist("match")]
    groups = parse_series_groups(selectors)
    return success(await run_query(request, svc, tenant, svc.querier.series, tenant, groups, start, end))


@router.api_route("/loki/api/v1/format_query", methods=["GET", "POST"])
async def format_query(p: ParamsDep) -> Response:
    """The query in canonical form, as Loki's `format_query` prints it (Grafana's query editor)."""
    return success(format_expr(parse_expr(p.get("query") or "")))
