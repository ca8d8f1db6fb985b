"""Hostile requests at a real server: fuzzed bodies and queries, decompression bombs, regexes that
backtracking engines cannot finish. Nothing may answer 500, and the server must stay ready."""

from __future__ import annotations

import gzip
import random
import socket
import threading
import zlib
from typing import Any

import cramjam
import httpx
import psutil

from tests.conftest import Server
from tests.fuzz.generators import make_logql, make_otlp, make_push_json, make_push_protobuf
from tests.server.pushing import BASE_NS, push

MIB = 1 << 20
LIMIT = 512 * MIB   # lokiarrow.wire.push.MAX_DECOMPRESSED_BYTES
QUICK = httpx.Timeout(20.0)   # a request that takes longer hangs


def test_fuzzed_pushes_and_queries_never_answer_500(server: Server, client: httpx.Client) -> None:
    rnd = random.Random(11)
    statuses: dict[int, int] = {}
    for i in range(300):
        make = (make_push_json, make_push_protobuf, make_otlp)[i % 3]
        body, content_type, encoding = make(rnd)
        headers = {"Content-Type": content_type} | ({"Content-Encoding": encoding.strip()} if encoding else {})
        path = "/otlp/v1/logs" if make is make_otlp else rnd.choice(["/loki/api/v1/push", "/api/prom/push"])
        r = client.post(path, content=body, headers=headers, timeout=QUICK)
        assert r.status_code < 500, (path, body, headers, r.status_code, r.text)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        q = make_logql(rnd)
        r = client.get(rnd.choice(["/loki/api/v1/query_range", "/loki/api/v1/query"]),
                       params={"query": q, "limit": 20}, timeout=QUICK)
        assert r.status_code < 500, (q, r.status_code, r.text)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    assert statuses.get(204, 0) > 0 and statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0, statuses
    assert client.get("/ready").status_code == 200


class PeakRss:
    """The server's largest resident size while a request runs, sampled every 5 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _gzip_bomb(size: int) -> bytes:
    """Gzip members of 1 MiB of zeros, one after another: `size` bytes inflated from about size/1000."""
    return gzip.compress(b"\0" * MIB, 9) * (size // MIB)


def test_a_gzip_bomb_is_refused_within_the_body_limit(server: Server, client: httpx.Client) -> None:
    body = _gzip_bomb(4 * LIMIT)   # 2 GiB inflated from 8 MiB
    assert server.proc is not None
    with PeakRss(server.proc.pid) as rss:
        r = client.post("/loki/api/v1/push", content=body, timeout=QUICK,
                        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 413, r.text
    assert r.text.startswith("request body too large: decompressed message size too large than max"), r.text
    assert rss.growth < LIMIT + 256 * MIB, f"RSS grew by {rss.growth // MIB} MiB"
    # one deflate stream (not members) is bounded the same way
    deflater = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = b"\0" * 64 * MIB
    stream = b"".join(deflater.compress(zeros) for _ in range(10)) + deflater.flush()   # 640 MiB inflated
    with PeakRss(server.proc.pid) as rss:
        r = client.post("/loki/api/v1/push", content=stream, timeout=QUICK,
                        headers={"Content-Type": "application/json", "Content-Encoding": "deflate"})
    assert r.status_code == 413, r.text
    assert rss.growth < LIMIT + 256 * MIB, f"RSS grew by {rss.growth // MIB} MiB"
    assert client.get("/ready").status_code == 200


def test_a_snappy_bomb_is_refused_before_it_is_inflated(server: Server, client: httpx.Client) -> None:
    body = bytes(cramjam.snappy.compress_raw(b"\0" * (LIMIT + MIB)))   # about 25 MiB on the wire
    assert server.proc is not None
    with PeakRss(server.proc.pid) as rss:
        r = client.post("/loki/api/v1/push", content=body, timeout=QUICK,
                        headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 413, r.text
    assert r.text == f"request body too large: decompressed message size too large than max ({LIMIT + MIB} vs {LIMIT})\n"
    assert rss.growth < 256 * MIB, f"RSS grew by {rss.growth // MIB} MiB"
    # a header that promises a large body the data does not hold costs nothing either
    liar = bytes(cramjam.snappy.compress_raw(b"\0" * 1000))
    liar = b"\x80\x80\x80\xf0\x01" + liar[2:]   # varint 500 MiB instead of 1000
    with PeakRss(server.proc.pid) as rss:
        r = client.post("/loki/api/v1/push", content=liar, timeout=QUICK,
                        headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 400, r.text
    assert rss.growth < 256 * MIB, f"RSS grew by {rss.growth // MIB} MiB"
    # OTLP: gzip and zstd bombs
    otlp = {"gzip": _gzip_bomb(2 * LIMIT), "zstd": bytes(cramjam.zstd.compress(b"\0" * (LIMIT + MIB)))}
    for encoding, bomb in otlp.items():
        r = client.post("/otlp/v1/logs", content=bomb, timeout=QUICK,
                        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": encoding})
        assert r.status_code in (400, 413), (encoding, r.status_code)
    assert client.get("/ready").status_code == 200


RECEIVE_LIMIT = 100 * MIB   # lokiarrow.wire.push.MAX_RECV_MSG_SIZE, Loki's distributor.max-recv-msg-size
TOO_LARGE = (b"request body too large: message size too large than max (%d vs %d)\n"
             % (RECEIVE_LIMIT + 1, RECEIVE_LIMIT))


def _raw_answer(server: Server, head: bytes, chunks: int = 0) -> bytes:
    """Send a request's head (and `chunks` chunks of 1 MiB), then read what the server answers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=QUICK.read) as sock:
        sock.sendall(head)
        chunk = b"%x\r\n" % MIB + b" " * MIB + b"\r\n"
        for _ in range(chunks):
            sock.sendall(chunk)
        answer = b""
        while not _complete(answer):
            got = sock.recv(65536)
            if not got:
                break
            answer += got
        return answer


def _complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    return bool(found) and len(body) >= length


def test_a_body_over_the_receive_limit_is_refused_as_it_arrives(server: Server, client: httpx.Client) -> None:
    assert server.proc is not None
    for path in ("/loki/api/v1/push", "/api/prom/push"):
        # a declared size over the limit: refused before any of the body is read
        with PeakRss(server.proc.pid) as rss:
            answer = _raw_answer(server, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                         b"Content-Length: %d\r\n\r\n{" % (path.encode(), 4096 * MIB))
        assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(TOO_LARGE), answer
        assert rss.growth < 64 * MIB
        # a chunked body: refused once more than the limit has arrived, holding at most the limit
        with PeakRss(server.proc.pid) as rss:
            answer = _raw_answer(server, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                         b"Transfer-Encoding: chunked\r\n\r\n" % path.encode(), chunks=101)
        assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(TOO_LARGE), answer
        assert rss.growth < RECEIVE_LIMIT + 128 * MIB, f"RSS grew by {rss.growth // MIB} MiB"
    answer = _raw_answer(server, b"POST /otlp/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                                 b"Content-Length: %d\r\n\r\n" % (4096 * MIB))
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert client.get("/ready").status_code == 200


def query(client: httpx.Client, q: str, expect: int = 200) -> Any:
    """A query_range over the pushed data, as a form (the URL would be too long for the largest)."""
    r = client.post("/loki/api/v1/query_range", timeout=QUICK,
                    data={"query": q, "start": str(BASE_NS - 10**12), "end": str(BASE_NS + 10**12)})
    assert r.status_code == expect, r.text
    return r.json() if expect == 200 else r.text.rstrip("\n")   # Go's http.Error ends in a newline


def test_backtracking_regexes_answer_at_once(client: httpx.Client) -> None:
    """RE2 semantics: `(a+)+$` over many `a`s and a `b` is linear, not exponential."""
    evil = "a" * 2000 + "b"
    push(client, {"app": "re", "v": evil}, [[BASE_NS, "a" * 100_000 + "b"], [BASE_NS + 1, "a" * 50]])
    got = query(client, '{app="re"} |~ "(a+)+$"')
    assert [s["values"][0][1] for s in got["data"]["result"]] == ["a" * 50]
    got = query(client, '{app="re"} |~ "^(a|aa)+$" != "c"')
    assert len(got["data"]["result"][0]["values"]) == 1
    # label matchers are anchored at both ends: the value ends in `b`, so `(a+)+` fails on it
    assert query(client, '{app="re", v=~"(a+)+"}')["data"]["result"] == []
    got = query(client, '{app="re", v!~"(a+)+"}')
    assert len(got["data"]["result"]) == 1
    got = query(client, 'count_over_time({app="re"} | v=~"(a*)*c" [1h])')
    assert got["data"]["result"] == []
    got = query(client, '{app="re"} | line_format "{{ regexReplaceAll \\"(a+)+$\\" __line__ \\"x\\" }}"')
    assert sorted(v[1] for s in got["data"]["result"] for v in s["values"]) == ["a" * 100_000 + "b", "x"]


def test_huge_regexes_are_refused_before_they_run(client: httpx.Client) -> None:
    # over Loki's query size limit
    text = query(client, '{app="re"} |~ "' + "|".join(f"w{i}" for i in range(30_000)) + '"', expect=400)
    assert text.startswith("parse error : input size too long (")
    # over Go's repeat limit
    text = query(client, '{app="re"} |~ "((a{100}){100}){100}"', expect=400)
    assert text == "parse error : error parsing regexp: invalid repeat count: `{100}`"
    # over RE2's memory budget for one program
    text = query(client, '{app=~"[\\\\p{L}\\\\p{N}]{1000}"}', expect=400)
    assert "pattern too large - compile failed" in text, text
    text = query(client, '{app="re"} | v=~"\\\\pL{1000}"', expect=400)
    assert "pattern too large - compile failed" in text, text
