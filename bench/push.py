"""Push bodies for the ingest benchmark: encoded once (cached on disk), then sent by N clients.

1. `bodies(dataset)`: every batch encoded with lokiarrow's own wire encoder (protobuf + snappy,
   as Promtail sends), in a process pool; the result is cached under bench/out/cache keyed by the
   data set's `cache_key()`, so later runs at the same size skip generation and encoding.
2. `push_all(url, bodies)`: one thread per client, each with its own keep-alive connection,
   sending its pre-encoded bodies in order, so the client costs the server's two cores as little as
   possible (a thread waits in the kernel while the server works). 429 and 5xx are retried with
   backoff as Promtail does; the retries are counted and reported.
"""

from __future__ import annotations

import http.client
import os
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import pyarrow as pa

from bench.generate import Batch
from lokiarrow.wire.push_protobuf import encode_push_request
from lokiarrow.wire.stream import PushStream

CACHE = Path(__file__).resolve().parent / "out" / "cache"
_RECORD = struct.Struct("<IIQQ")  # client, lines, raw bytes, body length


class Source(Protocol):
    """A data set to push (bench/generate.py's JSON set, bench/legacy.py's plain-text set)."""

    def cache_key(self) -> str: ...

    def batches(self) -> Iterator[Batch]: ...


@dataclass(frozen=True)
class Body:
    client: int
    lines: int
    raw_bytes: int
    data: bytes


def _encode(batch: Batch) -> Body:
    streams = [PushStream(batch.streams[k], pa.array(batch.ts[lo:hi], pa.int64()), batch.lines.slice(lo, hi - lo))
               for k, (lo, hi) in enumerate(zip(batch.offsets[:-1].tolist(), batch.offsets[1:].tolist(),
                                                strict=True))]
    return Body(batch.client, len(batch.lines), batch.raw_bytes, encode_push_request(streams))


def _read_cache(path: Path) -> list[Body]:
    out = []
    with open(path, "rb") as f:
        while header := f.read(_RECORD.size):
            client, lines, raw, size = _RECORD.unpack(header)
            out.append(Body(client, lines, raw, f.read(size)))
    return out


def bodies(ds: Source, use_cache: bool = True, log: bool = True) -> list[Body]:
    """Every push body of the dataset, in push order."""
    path = CACHE / f"push-{ds.cache_key()}.bin"
    if use_cache and path.exists():
        return _read_cache(path)
    began = time.perf_counter()
    out: list[Body] = []
    window: list[Batch] = []
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for batch in ds.batches():  # a window at a time: rendering stays ahead, memory stays bounded
            window.append(batch)
            if len(window) == 256:
                out += pool.map(_encode, window, chunksize=8)
                window = []
        out += pool.map(_encode, window, chunksize=8)
    if log:
        print(f"  generated and encoded {len(out):,} bodies in {time.perf_counter() - began:.1f} s")
    if use_cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for b in out:
                f.write(_RECORD.pack(b.client, b.lines, b.raw_bytes, len(b.data)))
                f.write(b.data)
        tmp.replace(path)
    return out


@dataclass
class PushResult:
    seconds: float = 0.0
    lines: int = 0
    raw_bytes: int = 0
    wire_bytes: int = 0
    requests: int = 0
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


class _Client(threading.Thread):
    def __init__(self, url: str, mine: list[Body], deadline: float, result: PushResult,
                 lock: threading.Lock, timeout: float) -> None:
        super().__init__(name="push-client", daemon=True)
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.mine, self.deadline, self.result, self.lock, self.timeout = mine, deadline, result, lock, timeout

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def run(self) -> None:
        conn = self._connect()
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
        lat: list[float] = []
        retries = 0
        try:
            for body in self.mine:
                for attempt in range(6):
                    if time.monotonic() > self.deadline:
                        raise TimeoutError("push phase deadline passed")
                    began = time.perf_counter()
                    try:
                        conn.request("POST", "/loki/api/v1/push", body.data, headers)
                        resp = conn.getresponse()
                        text = resp.read()
                    except (OSError, http.client.HTTPException) as exc:
                        conn.close()
                        conn = self._connect()
                        status, text = 0, str(exc).encode()
                    else:
                        status = resp.status
                    lat.append(time.perf_counter() - began)
                    if status == 204:
                        break
                    if status in (0, 429) or status >= 500:
                        retries += 1
                        time.sleep(min(0.1 * 2**attempt, 2.0))
                        continue
                    raise RuntimeError(f"push answered {status}: {text[:300].decode(errors='replace')}")
                else:
                    raise RuntimeError(f"push still failing after retries: {text[:300].decode(errors='replace')}")
        except Exception as exc:  # report, let the other clients finish
            with self.lock:
                self.result.failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
            with self.lock:
                self.result.latencies += lat
                self.result.retries += retries
                self.result.requests += len(lat)


def push_all(url: str, all_bodies: list[Body], clients: int, timeout: float) -> PushResult:
    """Send every body, one thread per client; stops at `timeout` seconds and reports failures."""
    per_client: list[list[Body]] = [[] for _ in range(clients)]
    for b in all_bodies:
        per_client[b.client % clients].append(b)
    result = PushResult(lines=sum(b.lines for b in all_bodies), raw_bytes=sum(b.raw_bytes for b in all_bodies),
                        wire_bytes=sum(len(b.data) for b in all_bodies))
    lock = threading.Lock()
    began = time.perf_counter()
    deadline = time.monotonic() + timeout
    threads = [_Client(url, mine, deadline, result, lock, timeout=min(timeout, 300)) for mine in per_client]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 10)
    result.seconds = time.perf_counter() - began
    if any(t.is_alive() for t in threads):
        result.failures.append("a client was still running at the deadline")
    return result
