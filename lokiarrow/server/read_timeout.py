"""Loki's `server.http_server_read_timeout`: a request must arrive whole, headers and body, within
that long, so that slow or stalled clients cannot hold connections and buffers for ever.

The clock starts when a connection is accepted, or on a kept-alive connection when the next
request's first bytes arrive (as Go's net/http arms its read deadline). Then, as Loki does:
1. headers not complete in time (`http_server_read_header_timeout`, when set, else the read
   timeout): the connection is closed without an answer;
2. body not complete in time: the handler's read of the body fails, the request answers 400 with
   Go's text for the failed read (`read tcp <server>-><client>: i/o timeout`), and the connection
   is closed after it, releasing what was buffered.

`server.http_server_write_timeout` bounds the other side, clients that do not read their answers:
an answer that waits longer than that with more than the transport's high-water mark (64 KiB)
unsent is dropped and the connection closed, releasing the buffered answer. (Go's write timeout
counts from the request's headers, so in Loki it also cuts a query slower than it; here only a
client that does not read is cut: query time is `limits_config.query_timeout`'s.)

`ReadTimeoutProtocol` (uvicorn's httptools protocol) watches the headers and the unsent answer, and
stamps each request's deadline into its ASGI scope; `ReadDeadline` (ASGI middleware, outermost)
bounds every read of the body by that deadline. A timeout of 0 disables its bound, as in Loki.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lokiarrow.errors import BadRequest

DEADLINE = "lokiarrow.read_deadline"   # scope["extensions"][DEADLINE]["at"]: loop time


class ReadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on reading each request and a bound on an unread
    answer (set the timeouts, s, on a subclass: `protocol(read_s, header_s, write_s)`)."""

    read_timeout_s = 0.0
    header_timeout_s = 0.0
    write_timeout_s = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._began = 0.0
        self._reading_headers = False
        self._write_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        headers_s = self.header_timeout_s or self.read_timeout_s
        if headers_s > 0 and self._timer is None:
            self._began = self.loop.time()
            self._reading_headers = True
            self._timer = self.loop.call_at(self._began + headers_s, self._headers_timed_out)

    def _disarm(self) -> None:
        self._reading_headers = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_timed_out(self) -> None:
        self._timer = None
        if self._reading_headers and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:   # a new request on a kept-alive connection
            self._arm()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:     # a request pipelined behind one still being answered
            self._arm()
        if self.read_timeout_s > 0:
            self.scope["extensions"] = {DEADLINE: {"at": self._began + self.read_timeout_s}}

    def on_headers_complete(self) -> None:
        self._disarm()              # the body's part of the deadline is ReadDeadline's
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_write_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The transport holds more unsent bytes than its high-water mark: the client must take
        them within the write timeout."""
        super().pause_writing()
        if self.write_timeout_s > 0 and self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout_s, self._write_timed_out)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._stop_write_timer()

    def _stop_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timed_out(self) -> None:
        self._write_timer = None
        self.transport.abort()       # drops the unsent answer; the handler's next send sees the disconnect


def protocol(read_timeout_s: float, header_timeout_s: float = 0.0,
             write_timeout_s: float = 0.0) -> type[ReadTimeoutProtocol]:
    """The protocol class for uvicorn's `http=` with these timeouts (seconds; 0: none)."""
    return type("ReadTimeoutProtocol", (ReadTimeoutProtocol,), {
        "read_timeout_s": read_timeout_s, "header_timeout_s": header_timeout_s, "write_timeout_s": write_timeout_s})


class ReadDeadline:
    """ASGI middleware: a read of the request body past the request's deadline raises BadRequest
    with Go's text, and the answer closes the connection. Without a deadline in the scope (another
    server), the deadline counts from when the request reached the application."""

    def __init__(self, app: Any, read_timeout_s: float) -> None:
        self.app, self.read_timeout_s = app, read_timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.read_timeout_s <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        stamped = (scope.get("extensions") or {}).get(DEADLINE)
        deadline = stamped["at"] if stamped else loop.time() + self.read_timeout_s
        body_read = timed_out = False

        async def receive_by_deadline() -> dict[str, Any]:
            nonlocal body_read, timed_out
            if body_read:
                return await receive()     # waiting for a disconnect, not reading
            try:
                async with asyncio.timeout_at(deadline):
                    message: dict[str, Any] = await receive()
            except TimeoutError:
                timed_out = True
                raise BadRequest(f"read tcp {_address(scope.get('server'))}->{_address(scope.get('client'))}: "
                                 "i/o timeout") from None
            body_read = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def send_closing(message: dict[str, Any]) -> None:
            if timed_out and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive_by_deadline, send_closing)


def _address(pair: Any) -> str:
    """host:port as Go prints a TCP address ([::1]:3100 for IPv6)."""
    if not pair:
        return "?"
    host, port = pair[0], pair[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
