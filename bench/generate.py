"""Deterministic Kubernetes-style JSON logs, batched as Loki clients push them.

1. Streams: 8 namespaces x 5 apps x 5 pods = 200 label sets {namespace, app, pod, container},
   with Zipf-like volumes (weight 1/rank^ZIPF_S, ranks shuffled over the streams).
2. Each stream lives on one of `clients` nodes (balanced by volume, as pods spread over nodes);
   one client per node pushes that node's streams.
3. Timestamps: `lines` uniform draws over 24 h at ns resolution, sorted, so the whole set is in
   time order; each line draws its stream from the volume weights.
4. Per client, its lines in time order are cut into batches of `batch` lines; inside a batch the
   lines are grouped per stream (time order kept), which is the shape of a Promtail push.
5. Line text is built vectorised (numpy + pyarrow compute), a block of batches at a time, so
   5 M lines take seconds, not minutes, and memory stays bounded. Its randomness (a random
   trace id, ms timestamps, skewed ids and sizes) is set so that zstd-1 Parquet sorted by stream
   stores it about 4.7x smaller than raw, as ANCHORS.md measured on its data.

Everything draws from one seeded numpy Generator in a fixed order: the same arguments always give
the same bytes. `python -m bench.generate --lines 100000` prints samples and the data's shape.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VERSION = 2                     # bump when the output changes, so cached bodies are rebuilt
DAY_NS = 86_400 * 10**9
START_NS = int(datetime(2026, 1, 19, tzinfo=UTC).timestamp()) * 10**9
ZIPF_S = 1.0
TIMEOUT_RATE = 0.0003           # share of lines (all level=error) whose msg contains "timeout"
BLOCK_LINES = 250_000           # lines rendered per vectorised block

NAMESPACES = ("prod-search", "prod-checkout", "prod-payments", "prod-catalog",
              "staging-search", "monitoring", "kube-system", "ingress-nginx")
APPS = {
    "prod-search": ("search-api", "indexer", "query-router", "ranker", "suggest"),
    "prod-checkout": ("checkout-api", "cart", "pricing", "promo", "tax"),
    "prod-payments": ("payments-api", "ledger", "fraud-check", "refunds", "webhooks"),
    "prod-catalog": ("catalog-api", "inventory", "images", "reviews", "recommender"),
    "staging-search": ("search-api", "indexer", "query-router", "ranker", "suggest"),
    "monitoring": ("prometheus", "alertmanager", "grafana", "node-exporter", "kube-state-metrics"),
    "kube-system": ("coredns", "kube-proxy", "metrics-server", "cluster-autoscaler", "ebs-csi"),
    "ingress-nginx": ("controller", "default-backend", "cert-manager", "external-dns", "oauth2-proxy"),
}
PODS_PER_APP = 5

LEVELS = ("info", "warn", "error", "debug")
LEVEL_P = (0.80, 0.12, 0.05, 0.03)

# Message templates per level: (text, weight). "timeout" appears only in TIMEOUT_MSG.
MESSAGES = {
    "info": (("request completed", 6), ("served from cache", 2), ("handled request", 2)),
    "warn": (("slow request", 3), ("retrying request after upstream error", 2),
             ("client closed connection early", 2), ("rate limit nearly reached", 2)),
    "error": (("failed to process request: upstream connect error", 3),
              ("database error: connection refused", 2),
              ("error writing response: broken pipe", 2),
              ("panic recovered: nil pointer dereference", 1)),
    "debug": (("cache lookup", 2), ("acquired connection from pool", 1)),
}
TIMEOUT_MSG = "context deadline exceeded: upstream request timeout after 30s"
STATUS = {"info": (200, 200, 200, 201, 204, 304), "warn": (200, 400, 404, 429),
          "error": (500, 502, 503, 504), "debug": (200,)}
METHODS = ("GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE")
PATHS = ("/api/v1/orders/", "/api/v1/users/", "/api/v1/items/", "/api/v2/search?q=", "/api/v1/carts/",
         "/internal/sync/", "/api/v1/sessions/", "/healthz?probe=")
CALLERS = ("handler.go:", "router.go:", "client.go:", "grpc.go:")


def label_text(labels: dict[str, str]) -> str:
    """Loki's canonical label text (names sorted; our values need no escaping)."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@dataclass(frozen=True)
class Spec:
    lines: int = 1_000_000
    seed: int = 42
    clients: int = 4
    batch: int = 1000

    def key(self) -> str:
        return f"v{VERSION}-n{self.lines}-s{self.seed}-c{self.clients}-b{self.batch}"


@dataclass
class Stream:
    namespace: str
    app: str
    pod: str
    lines: int = 0

    @property
    def labels(self) -> dict[str, str]:
        return {"app": self.app, "container": self.app, "namespace": self.namespace, "pod": self.pod}

    @property
    def text(self) -> str:
        return label_text(self.labels)


@dataclass
class Batch:
    """One push request: `ts` and `lines` grouped per stream; stream k owns [offsets[k], offsets[k+1])."""

    client: int
    streams: list[str]              # canonical label text per group
    offsets: np.ndarray             # int64, len(streams) + 1
    ts: np.ndarray                  # int64 ns
    lines: pa.StringArray

    @property
    def raw_bytes(self) -> int:
        return int(pc.sum(pc.binary_length(self.lines)).as_py() or 0)


@dataclass
class Dataset:
    """The drawn shape of the data; `batches()` renders the text, the same bytes on every call."""

    spec: Spec
    streams: list[Stream]
    stream_of_line: np.ndarray              # index into `streams`, per line in push order
    ts: np.ndarray                          # ns, per line in push order
    bounds: list[tuple[int, int, int]]      # (client, begin, end) of each batch, in push order
    batches_per_client: list[int] = field(default_factory=list)
    start_ns: int = START_NS
    end_ns: int = START_NS + DAY_NS

    def namespace_share(self) -> dict[str, float]:
        total = sum(s.lines for s in self.streams) or 1
        out: dict[str, float] = {}
        for s in self.streams:
            out[s.namespace] = out.get(s.namespace, 0.0) + s.lines / total
        return out

    def cache_key(self) -> str:
        """Names the push bodies cached for this data (bench/push.py)."""
        return self.spec.key()

    def batches(self) -> Iterator[Batch]:
        """Every batch, in push order per client (batches of different clients interleaved)."""
        rng = np.random.default_rng((self.spec.seed, 1))
        yield from cut_batches(self.bounds, self.stream_of_line, self.ts, [s.text for s in self.streams],
                               lambda begin, end: render_lines(rng, self.ts[begin:end]))


def cut_batches(bounds: list[tuple[int, int, int]], stream_of_line: np.ndarray, ts: np.ndarray,
                texts: list[str], render: Callable[[int, int], pa.StringArray]) -> Iterator[Batch]:
    """The batches of `bounds` (client, begin, end), in order; `render(begin, end)` draws the text of
    lines [begin, end) in push order, called once per block of about BLOCK_LINES lines, in order."""
    i = 0
    while i < len(bounds):
        j = i
        while j < len(bounds) and bounds[j][2] - bounds[i][1] < BLOCK_LINES:
            j += 1
        j = max(j, i + 1)
        begin, end = bounds[i][1], bounds[j - 1][2]
        lines = render(begin, end)
        for client, b, e in bounds[i:j]:
            sid = stream_of_line[b:e]
            cuts = np.flatnonzero(np.diff(sid)) + 1
            offsets = np.concatenate(([0], cuts, [e - b])).astype(np.int64)
            yield Batch(client, [texts[k] for k in sid[offsets[:-1]]], offsets, ts[b:e].copy(),
                        pa.concat_arrays([lines.slice(b - begin, e - b)]))  # own buffers: cheap to pickle
        i = j


def build(spec: Spec) -> Dataset:
    """Draw the streams, their volumes and every line's stream and timestamp (not yet the text)."""
    rng = np.random.default_rng(spec.seed)
    streams: list[Stream] = []
    for ns in NAMESPACES:
        for app in APPS[ns]:
            rs = "".join(rng.choice(list("bcdfghjklmnpqrstvwxz2456789"), 9))
            for _ in range(PODS_PER_APP):
                suffix = "".join(rng.choice(list("bcdfghjklmnpqrstvwxz2456789"), 5))
                streams.append(Stream(ns, app, f"{app}-{rs}-{suffix}"))
    weights = 1.0 / np.arange(1, len(streams) + 1) ** ZIPF_S
    weights = rng.permutation(weights / weights.sum())
    node = _balance(weights, spec.clients)

    ts = np.sort(rng.integers(0, DAY_NS, spec.lines, dtype=np.int64)) + START_NS
    stream = rng.choice(len(streams), size=spec.lines, p=weights).astype(np.int32)
    for k, n in enumerate(np.bincount(stream, minlength=len(streams))):
        streams[k].lines = int(n)

    perm, bounds, per_client = push_order(spec, node[stream], stream)
    return Dataset(spec, streams, stream[perm], ts[perm], bounds, batches_per_client=per_client)


def push_order(spec: Spec, client: np.ndarray, stream: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]],
                                                                             list[int]]:
    """Push order of lines drawn in time order, given each line's client and stream: batch k of every
    client, then batch k + 1; inside a batch, grouped per stream (time order kept).

    Returns the permutation into push order, each batch's (client, begin, end) in it, and the number
    of batches per client.
    """
    order = np.argsort(client, kind="stable")                       # per client, time order
    per_client = np.bincount(client, minlength=spec.clients)
    batch_no = np.concatenate([np.arange(n) // spec.batch for n in per_client])
    within = np.lexsort((stream[order], client[order], batch_no))   # stable: time order kept
    perm = order[within]
    key = batch_no[within] * spec.clients + client[perm]
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1, [len(stream)]))
    bounds = [(int(client[perm[b]]), int(b), int(e)) for b, e in zip(cuts[:-1], cuts[1:], strict=True)]
    return perm, bounds, [-(-int(n) // spec.batch) for n in per_client]


def _balance(weights: np.ndarray, bins: int) -> np.ndarray:
    """Assign streams to `bins` nodes so each gets about the same volume (largest first)."""
    load = np.zeros(bins)
    node = np.zeros(len(weights), dtype=np.int64)
    for k in np.argsort(-weights, kind="stable"):
        b = int(np.argmin(load))
        node[k] = b
        load[b] += weights[k]
    return node


def _pick(rng: np.random.Generator, n: int, options: tuple[str, ...] | list[str],
          p: np.ndarray | None = None) -> pa.Array:
    return pc.take(pa.array(list(options), pa.string()), pa.array(rng.choice(len(options), n, p=p)))


def _fixed(rows: np.ndarray) -> pa.StringArray:
    """A string array from an (n, width) uint8 array of ASCII characters."""
    n, width = rows.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(rows).tobytes()))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digits of non-negative integers, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + 48).astype(np.uint8)


def _const(n: int, text: str) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text.encode(), dtype=np.uint8), (n, len(text)))


def _hex(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[rng.integers(0, 16, (n, width), dtype=np.uint8)]


def _rfc3339(ts: np.ndarray) -> np.ndarray:
    """`2026-01-19T00:00:13.799Z` (ms, as zap and logback write) per ns timestamp, as (n, 24) ASCII.

    strftime is 10x slower.
    """
    n = len(ts)
    days, ns = np.divmod(ts, DAY_NS)
    first = int(days.min()) if n else 0
    dates = np.array([list(datetime.fromtimestamp(d * 86_400, UTC).strftime("%Y-%m-%dT").encode())
                      for d in range(first, int(days.max()) + 1 if n else first + 1)], dtype=np.uint8)
    secs, frac = np.divmod(ns, 10**9)
    hh, rest = np.divmod(secs, 3600)
    mm, ss = np.divmod(rest, 60)
    return np.hstack([dates[days - first], _digits(hh, 2), _const(n, ":"), _digits(mm, 2), _const(n, ":"),
                      _digits(ss, 2), _const(n, "."), _digits(frac // 10**6, 3), _const(n, "Z")])


def _num(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def render_lines(rng: np.random.Generator, ts: np.ndarray) -> pa.StringArray:
    """The JSON text of one line per timestamp, all columns drawn at once."""
    n = len(ts)
    level_idx = rng.choice(len(LEVELS), n, p=np.array(LEVEL_P))
    timeout = rng.random(n) < TIMEOUT_RATE
    level_idx[timeout] = LEVELS.index("error")
    level = pc.take(pa.array(LEVELS), pa.array(level_idx))
    msg = pa.nulls(n, pa.string())
    status = np.zeros(n, dtype=np.int64)
    for k, name in enumerate(LEVELS):
        mask = level_idx == k
        m = int(mask.sum())
        texts = [t for t, _ in MESSAGES[name]]
        w = np.array([w for _, w in MESSAGES[name]], dtype=float)
        msg = pc.replace_with_mask(msg, pa.array(mask), _pick(rng, m, texts, w / w.sum()))
        status[mask] = np.array(STATUS[name])[rng.integers(0, len(STATUS[name]), m)]
    msg = pc.replace_with_mask(msg, pa.array(timeout), pa.array([TIMEOUT_MSG] * int(timeout.sum()), pa.string()))

    latency = np.round(rng.lognormal(3.0, 1.1, n), 3)
    latency[level_idx == LEVELS.index("error")] += 1000.0
    user = np.minimum(rng.zipf(1.5, n), 20_000) + 1000         # a few heavy users, a long tail
    head = np.hstack([_const(n, '{"ts":"'), _rfc3339(ts), _const(n, '","level":"')])
    ids = np.hstack([_const(n, ',"trace_id":"'), _hex(rng, n, 32), _const(n, '","user_id":')])
    parts: list[pa.Array | str] = [
        _fixed(head), level, '","caller":"', _pick(rng, n, CALLERS), _num(rng.integers(20, 900, n)),
        '","msg":"', msg, '","method":"', _pick(rng, n, METHODS),
        '","path":"', _pick(rng, n, PATHS), _num(rng.integers(1, 10_000, n)),
        '","status":', _num(status), ',"latency_ms":', _num(latency),
        _fixed(ids), _num(user), ',"bytes":', _num(rng.lognormal(7.0, 1.5, n).astype(np.int64)),
        ',"proto":"HTTP/1.1","cluster":"eu-west-1a"}',
    ]
    return pc.binary_join_element_wise(*parts, "")


def field_names() -> list[str]:
    """The top-level fields of every line, in order."""
    line = render_lines(np.random.default_rng(0), np.array([START_NS], dtype=np.int64))[0].as_py()
    return list(json.loads(line))


def describe(ds: Dataset, sample: int = 3, batches: int = 300) -> str:
    """The shape of the data (from its first `batches` batches): sizes, shares, volumes, samples."""
    taken = list(itertools.islice(ds.batches(), batches))
    lines = pa.chunked_array([b.lines for b in taken])
    n = len(lines)
    mean = pc.mean(pc.binary_length(lines)).as_py()
    share = {w: pc.sum(pc.match_substring(lines, w)).as_py() / n for w in ("error", "timeout")}
    levels = {lv: pc.sum(pc.match_substring(lines, f'"level":"{lv}"')).as_py() / n for lv in LEVELS}
    vols = sorted((s.lines for s in ds.streams), reverse=True)
    out = [f"lines {ds.spec.lines:,}, streams {len(ds.streams)}, clients {ds.spec.clients}, "
           f"batches/client {ds.batches_per_client}",
           f"first {len(taken)} batches: {n:,} lines, {np.mean([len(b.streams) for b in taken]):.0f} streams "
           f"per batch, mean {mean:.0f} bytes/line",
           "levels " + ", ".join(f"{k} {v:.1%}" for k, v in levels.items()),
           "contains " + ", ".join(f"{k!r} {v:.3%}" for k, v in share.items()),
           f"stream volumes: max {vols[0]:,}, median {vols[len(vols) // 2]:,}, min {vols[-1]:,}",
           "namespaces " + ", ".join(f"{k} {v:.1%}" for k, v in ds.namespace_share().items())]
    out += [str(lines[i]) for i in range(min(sample, n))]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--time", action="store_true", help="also render every batch and time it")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    ds = build(Spec(args.lines, args.seed, args.clients, args.batch))
    print(f"built in {time.perf_counter() - began:.2f} s")
    print(describe(ds))
    if args.time:
        began = time.perf_counter()
        total = sum(b.raw_bytes for b in ds.batches())
        took = time.perf_counter() - began
        print(f"rendered {total / 1e6:,.0f} MB ({total / args.lines:.0f} bytes/line) in {took:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
