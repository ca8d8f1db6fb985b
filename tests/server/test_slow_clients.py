"""Slow and stalled clients against a real server: connections that send half a request's headers,
or its headers and half its body, and stall (or trickle a byte at a time), and clients that read
answers very slowly. Other clients must be served meanwhile, and `server.http_server_read_timeout`
must cut a request that has not arrived whole in time, as Loki's does: headers, by closing the
connection without an answer; a body, with 400 `read tcp <server>-><client>: i/o timeout`, then
closing it (lokiarrow/server/read_timeout.py)."""

from __future__ import annotations

import argparse
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import orjson
import psutil
import pytest

from lokiarrow.cli import load_config, serve_parser
from lokiarrow.config import from_yaml
from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import BASE_NS, lines, push, query

STALLED = 150   # connections of each kind
PUSH_HEAD = (b"POST /loki/api/v1/push HTTP/1.1\r\nHost: loki\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n")
KINDS = {
    "half headers": b"POST /loki/api/v1/push HTTP/1.1\r\nHost: loki\r\nContent-Ty",
    "half body": PUSH_HEAD + b'{"streams": [{"stream": {"app": "stalled"}, "values": [["1", "',
}


def with_read_timeout(timeout: str) -> str:
    return PERMISSIVE + f"server:\n  http_server_read_timeout: {timeout}\n"


@contextmanager
def stalled(server: Server, kind: str, n: int = STALLED) -> Iterator[list[socket.socket]]:
    """`n` connections that sent the start of a request of `kind` and then nothing (or that the
    server dropped at once)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            socks.append(s)
            try:
                s.sendall(KINDS[kind])
            except ConnectionResetError:
                pass
        yield socks
    finally:
        for s in socks:
            s.close()


def is_open(s: socket.socket) -> bool:
    """True when the server has neither answered nor closed the connection."""
    timeout = s.gettimeout()
    s.setblocking(False)
    try:
        s.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        s.settimeout(timeout)
    return False


def read_to_end(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def serve_normally(server: Server, tag: str) -> None:
    """A push, a query and a labels call from another client, each within its 10 s timeout."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        push(http, {"app": "normal"}, [[BASE_NS, f"served {tag}"]])
        assert f"served {tag}" in lines(query(http, '{app="normal"}'))
        assert http.get("/loki/api/v1/labels").status_code == 200


def connections(server: Server) -> int:
    """The server's open HTTP connections (file descriptors of sockets on its port)."""
    assert server.proc is not None
    return sum(1 for c in psutil.Process(server.proc.pid).net_connections("tcp")
               if c.laddr and c.laddr.port == server.port and c.status != psutil.CONN_LISTEN)


def test_stalled_connections_do_not_hold_up_other_clients(start_server: Callable[..., Server]) -> None:
    server = start_server(with_read_timeout("120s"))
    with stalled(server, "half headers") as heads, stalled(server, "half body") as bodies:
        serve_normally(server, "while stalled")
        assert all(is_open(s) for s in heads + bodies)   # they were all still waiting meanwhile


def test_stalled_requests_are_cut_after_the_read_timeout(start_server: Callable[..., Server]) -> None:
    server = start_server(with_read_timeout("2s"))
    with stalled(server, "half headers") as heads, stalled(server, "half body") as bodies:
        serve_normally(server, "before the cut")
        assert all(read_to_end(s) == b"" for s in heads)           # closed without an answer
        for s in bodies:
            answer = read_to_end(s)
            assert answer.startswith(b"HTTP/1.1 400 "), answer
            head, _, text = answer.partition(b"\r\n\r\n")
            assert b"connection: close" in head.lower()
            assert text.startswith(b"read tcp 127.0.0.1:%d->127.0.0.1:" % server.port), text
            assert text.endswith(b": i/o timeout\n"), text
        assert connections(server) == 0                          # their sockets and buffers are gone
    serve_normally(server, "after the cut")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert query(http, '{app="stalled"}')["data"]["result"] == []   # nothing of a cut body is stored


def test_the_header_timeout_cuts_headers_only(start_server: Callable[..., Server]) -> None:
    server = start_server(with_read_timeout("120s") + "  http_server_read_header_timeout: 1s\n")
    with stalled(server, "half headers", 20) as heads, stalled(server, "half body", 20) as bodies:
        assert all(read_to_end(s) == b"" for s in heads)
        assert all(is_open(s) for s in bodies)


def test_a_trickled_body_is_cut_at_the_deadline_not_when_idle(start_server: Callable[..., Server]) -> None:
    """A byte every 0.2 s keeps a connection busy but never completes the body: the deadline counts
    from the request's start, so the trickle cannot extend it (and 100,000 bytes would take 5 hours)."""
    server = start_server(with_read_timeout("2s"))
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    s.sendall(PUSH_HEAD)
    sent = 0
    cut = threading.Event()

    def trickle() -> None:
        nonlocal sent
        while not cut.is_set():
            try:
                s.send(b" ")
            except OSError:
                return
            sent += 1
            time.sleep(0.2)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    answer = read_to_end(s)
    cut.set()
    thread.join(5)
    s.close()
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.endswith(b": i/o timeout\n"), answer
    assert 0 < sent < 100_000


def test_a_kept_alive_connection_gets_a_new_deadline_per_request(start_server: Callable[..., Server]) -> None:
    """Requests on one connection, spaced over more than the read timeout, each answer normally:
    the clock starts again with each request's first bytes."""
    server = start_server(with_read_timeout("2s"))
    body = orjson.dumps({"streams": [{"stream": {"app": "kept"}, "values": [[str(BASE_NS), "x"]]}]})
    with httpx.Client(base_url=server.url, timeout=10, limits=httpx.Limits(max_connections=1)) as http:
        for _ in range(4):
            answer = http.post("/loki/api/v1/push", content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 204, answer.text
            time.sleep(0.8)


BIG_QUERY = (b"GET /loki/api/v1/query_range?query=%7Bapp%3D%22big%22%7D&limit=4000&start=" +
             str(BASE_NS - 10**9).encode() + b"&end=" + str(BASE_NS + 10**9).encode() +
             b" HTTP/1.1\r\nHost: loki\r\n\r\n")


@contextmanager
def slow_readers(server: Server, n: int = 50) -> Iterator[list[socket.socket]]:
    """`n` clients that ask for a 4 MB answer (4,000 lines of 1 KB) and read none of it."""
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for k in range(4):
            push(http, {"app": "big"}, [[BASE_NS + k * 1000 + j, f"{k}-{j} " + "y" * 1000] for j in range(1000)])
    readers = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(60)
            s.connect(("127.0.0.1", server.port))
            s.sendall(BIG_QUERY)
            readers.append(s)
        yield readers
    finally:
        for s in readers:
            s.close()


def test_slow_readers_do_not_hold_up_other_clients(start_server: Callable[..., Server]) -> None:
    server = start_server(PERMISSIVE + "server:\n  http_server_write_timeout: 120s\n")
    with slow_readers(server) as readers:
        serve_normally(server, "beside slow readers")
        first = readers[0].recv(65536)              # each is being answered, slowly
        assert first.startswith(b"HTTP/1.1 200 "), first[:200]


def test_an_unread_answer_is_dropped_after_the_write_timeout(start_server: Callable[..., Server]) -> None:
    """The answers wait in the server's buffers while their clients read nothing; after the write
    timeout the server drops them and closes the connections: a client reading then gets the start
    of its answer and the end of the connection, short of the Content-Length."""
    server = start_server(PERMISSIVE + "server:\n  http_server_write_timeout: 2s\n")
    with slow_readers(server, 20) as readers:
        serve_normally(server, "beside slow readers")
        deadline = time.monotonic() + 60
        while connections(server) and time.monotonic() < deadline:   # the server lets go of them
            time.sleep(0.2)
        assert connections(server) == 0
        for s in readers:
            answer = read_to_end(s)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
            assert len(body) < length
    serve_normally(server, "after the slow readers")


def test_connections_past_the_open_file_limit(start_server: Callable[..., Server]) -> None:
    """With its open files exhausted by stalled connections, the server drops new connections
    (it cannot accept them) and goes on; the read timeout frees the stalled ones, and then it
    serves everyone again."""
    server = start_server(with_read_timeout("2s"))
    assert server.proc is not None
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (200, 200))
    with stalled(server, "half headers", 300) as heads:
        with pytest.raises(httpx.TransportError):  # no descriptor left for this one
            httpx.get(f"{server.url}/ready", timeout=10)
        for s in heads:
            read_to_end(s)                           # cut by the timeout, or dropped at once
    serve_normally(server, "after the files came back")


def test_read_timeouts_are_read_from_the_config_and_flags() -> None:
    assert from_yaml("").http_server_read_timeout == from_yaml("").http_server_write_timeout == 30 * 10**9
    config = from_yaml("server:\n  http_server_read_timeout: 1m30s\n  http_server_read_header_timeout: 5s\n")
    assert (config.http_server_read_timeout, config.http_server_read_header_timeout) == (90 * 10**9, 5 * 10**9)
    assert from_yaml("server:\n  http_server_read_timeout: 0\n").http_server_read_timeout == 0
    parser = argparse.ArgumentParser()
    serve_parser(parser)
    args = parser.parse_args(["-server.http-read-timeout=250ms", "-server.http-read-header-timeout", "1s",
                              "-server.http-write-timeout=1m"])
    config = load_config(args)
    assert (config.http_server_read_timeout, config.http_server_read_header_timeout,
            config.http_server_write_timeout) == (250 * 10**6, 10**9, 60 * 10**9)
