"""Live tailing on a reader (`-target=read`), as Loki's querier tails: it opens a tail on every
writer (querier.writers) and relays their frames, after a history of its own.

1. The writers' tails are opened first, from now on, with no history of their own; then the
   history (the last `limit` entries from `start` to now) is read as query_range reads it, over
   the store and what the writers hold. An entry pushed in between may come twice (history and
   live), none is missed.
2. History goes out first, in Loki's frames of up to 100 entries; then every writer's frames as
   they arrive, unchanged: each writer holds entries for `delay_for` and reports what it dropped.
3. A writer that cannot be reached is left out with a warning; the tail ends when the client goes,
   at Loki's tail_max_duration, or when every writer's tail has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import urlencode

from fastapi import WebSocket
from fastapi.concurrency import run_in_threadpool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from lokiarrow.exec.engine import Querier
from lokiarrow.exec.tail import MAX_ENTRIES_PER_FRAME, TailRequest, history
from lokiarrow.exec.writers import Want
from lokiarrow.logql.ast import LogExpr
from lokiarrow.logql.printer import format_expr

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10


async def relay(websocket: WebSocket, querier: Querier, tenant: str, expr: LogExpr, request: TailRequest) -> None:
    """Serve one tail on a reader until the client, the writers or the time limit end it."""
    assert querier.writers is not None
    now = time.time_ns()
    params = urlencode({"query": format_expr(expr), "start": str(now), "limit": "1",
                        "delay_for": str(request.delay_for)})
    urls = [url.replace("http://", "ws://", 1) + f"/loki/api/v1/tail?{params}" for url in querier.writers.urls()]
    opened = await asyncio.gather(*(_open(url, tenant) for url in urls))
    writers = [w for w in opened if w is not None]
    try:
        snapshot = await run_in_threadpool(querier.snapshot, tenant, Want(request.start, now + 1, [expr.matchers]))
        found = await run_in_threadpool(history, snapshot, expr, request.start, now, request.limit)
        for at in range(0, len(found.parts), MAX_ENTRIES_PER_FRAME):
            await websocket.send_text((b'{"streams":[' + b",".join(found.parts[at:at + MAX_ENTRIES_PER_FRAME])
                                       + b"]}").decode())
        if writers:
            await asyncio.gather(*(_forward(w, websocket) for w in writers))
        else:
            await asyncio.Event().wait()   # no writer to follow: history only, until the client goes
    finally:
        for w in writers:
            with contextlib.suppress(Exception):
                await w.close()


async def _open(url: str, tenant: str) -> ClientConnection | None:
    try:
        return await connect(url, additional_headers={"X-Scope-OrgID": tenant}, open_timeout=CONNECT_TIMEOUT_S,
                             max_size=None)
    except (OSError, WebSocketException, TimeoutError) as exc:
        log.warning("cannot tail writer %s: %s", url.split("/loki/")[0], exc)
        return None


async def _forward(writer: ClientConnection, websocket: WebSocket) -> None:
    try:
        async for frame in writer:
            await websocket.send_text(frame if isinstance(frame, str) else frame.decode())
    except WebSocketException as exc:
        log.warning("a writer's tail ended: %s", exc)
