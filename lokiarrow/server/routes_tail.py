"""Live tailing: `GET /loki/api/v1/tail` as a WebSocket, in Loki's `{streams, dropped_entries}` frames.

As Loki's TailHandler: bad parameters answer HTTP 400 before the upgrade; errors once the socket is
open (a metric query, too many tails) close it with code 1011 and the error as the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import cast

from fastapi import APIRouter, FastAPI, Request, WebSocket
from starlette.websockets import WebSocketDisconnect

from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.exec.tail import MAX_DELAY_FOR, MAX_TAIL_SECONDS, Tail, TailHub, TailRequest
from lokiarrow.logql.ast import Expr, LogExpr
from lokiarrow.logql.parser import parse_expr
from lokiarrow.server.deps import Services, tenant
from lokiarrow.server.params import DEFAULT_SINCE_NS, parse_limit, parse_time
from lokiarrow.server.tail_relay import relay
from lokiarrow.units import parse_prometheus_duration_ns

router = APIRouter()
log = logging.getLogger(__name__)
CLOSE_INTERNAL_ERROR = 1011   # Loki's websocket.CloseInternalServerErr
MAX_REASON_BYTES = 123        # a close frame's reason must fit in 125 bytes with the code


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        raise BadRequest(f'strconv.Atoi: parsing "{value}": invalid syntax') from None


def parse_tail(params: Mapping[str, str]) -> tuple[Expr, TailRequest]:
    """`query`, `limit`, `start` (or `since`) and `delay_for`, with Loki's defaults and messages."""
    expr = parse_expr(params.get("query") or "")
    limit = parse_limit(params)
    since = DEFAULT_SINCE_NS
    if params.get("since"):
        try:
            since = parse_prometheus_duration_ns(params["since"])
        except ValueError:
            raise BadRequest(f"could not parse 'since' parameter: not a valid duration string: "
                             f'"{params["since"]}"') from None
    start = params.get("start")
    try:
        start_ns = parse_time(start, time.time_ns() - since)
    except BadRequest:
        raise BadRequest(f"could not parse 'start' parameter: strconv.ParseInt: parsing \"{start}\": "
                         "invalid syntax") from None
    delay = _int(params.get("delay_for"))
    if delay < 0:
        raise BadRequest(f"delay_for value {delay} is out of range [0, 4294967295]")
    if delay > MAX_DELAY_FOR:
        raise BadRequest(f"delay_for can't be greater than {MAX_DELAY_FOR}")
    return expr, TailRequest(start_ns, limit, delay)


def _hub(app: FastAPI) -> TailHub:
    hub = getattr(app.state, "tail_hub", None)
    if hub is None:
        svc: Services = app.state.services
        hub = app.state.tail_hub = TailHub(svc.store, svc.limits)
    return cast(TailHub, hub)


async def _until_gone(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _send(websocket: WebSocket, tail: Tail) -> None:
    async for frame in tail.frames():
        await websocket.send_text(frame)


async def _close(websocket: WebSocket, reason: str) -> None:
    try:
        await websocket.close(CLOSE_INTERNAL_ERROR, reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore"))
    except Exception:  # the client is gone already (uvicorn raises its own errors then)
        pass


@router.websocket("/loki/api/v1/tail")
async def tail_logs(websocket: WebSocket) -> None:
    try:
        tenant_id = tenant(cast(Request, websocket))  # reads only headers and app state
        expr, request = parse_tail(websocket.query_params)
    except LokiError as exc:
        from lokiarrow.server.app import error_response  # app imports this module

        await websocket.send_denial_response(error_response(exc.status, exc.message))
        return
    await websocket.accept()
    hub = _hub(websocket.app)
    querier = websocket.app.state.services.querier
    tail: Tail | None = None
    try:
        if querier.writers is not None:   # a reader: the writers' tails, relayed
            if not isinstance(expr, LogExpr):
                raise BadRequest("only log selector is supported")
            sender = asyncio.create_task(relay(websocket, querier, tenant_id, expr, request))
        else:
            tail = await hub.open(tenant_id, expr, request)
            sender = asyncio.create_task(_send(websocket, tail))
    except LokiError as exc:
        await _close(websocket, exc.message)
        return
    except Exception as exc:  # Loki closes with the error too; ours is logged
        log.exception("cannot open a tail")
        await _close(websocket, f"internal error: {type(exc).__name__}: {exc}")
        return
    reader = asyncio.create_task(_until_gone(websocket))
    try:
        done, _ = await asyncio.wait({sender, reader}, timeout=MAX_TAIL_SECONDS,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        if tail is not None:
            hub.close(tenant_id, tail)
        for task in (sender, reader):
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
    if not done:
        await _close(websocket, "reached tail max duration limit")
    elif sender in done and reader not in done and (failure := sender.exception()) is not None:
        log.warning("tail ended: %s", failure)
        await _close(websocket, str(failure))
