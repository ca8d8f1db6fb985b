"""Deterministic plain-text logs of legacy services (logfmt and nginx access logs) for the pipeline queries.

The JSON set of bench/generate.py is what ANCHORS.md measured, so it stays as it is; the queries
that need other line formats (`| logfmt | duration > 1s`, `| regexp …`) read this second, smaller
set, pushed after the ingest and disk figures are taken so those stay about the JSON set alone.

1. Streams {job="legacy/<app>", host="node-N", format="logfmt"|"nginx"}: LOGFMT_APPS and NGINX_APPS
   on HOSTS hosts each. They have no `namespace` (or `pod`) label, so queries a–d never select them.
   FORMAT_SHARE of the lines per format; inside a format, volumes are Zipf-like (1/rank, ranks
   shuffled), as in generate.py.
2. `lines_for(json_lines)` lines (a tenth of the JSON set, at least MIN_LINES), uniform over the
   same 24 h, sorted; streams spread over the clients by volume and batches cut as generate.py does.
3. logfmt lines as a Go service writes them: `ts=… level=info msg="request completed" method=GET
   path=/api/v1/items/123 status=200 duration=12.345ms bytes=5123`, the duration in Go's
   time.Duration text: mostly milliseconds, FAST_RATE under 1 ms (`850µs`), SLOW_RATE of requests
   slow (most of them above 1 s: `1.5s`, a few `2m3.5s`).
4. nginx lines in the combined log format: `10.1.2.3 - - [19/Jan/2026:00:00:01 +0000] "GET
   /api/v1/items/123 HTTP/1.1" 200 5123 "-" "curl/8.5.0"`, about 2 % of them status 500.
5. Text is built vectorised a block of batches at a time, as in generate.py.

Everything draws from its own streams of the seeded numpy Generator ((seed, 2) for the shape,
(seed, 3) for the text), so the JSON set's bytes do not change and the same arguments always give
the same bytes. `python -m bench.legacy --lines 100000` prints samples and the data's shape.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.generate import (
    DAY_NS,
    START_NS,
    ZIPF_S,
    Batch,
    Spec,
    _balance,
    _const,
    _digits,
    _fixed,
    _num,
    _pick,
    _rfc3339,
    cut_batches,
    label_text,
    push_order,
)

VERSION = 1                     # bump when the output changes, so cached bodies are rebuilt
MIN_LINES = 10_000
FORMATS = ("logfmt", "nginx")
FORMAT_SHARE = (0.6, 0.4)       # of the lines
LOGFMT_APPS = ("billing", "mailer", "scheduler", "reports", "auth")
NGINX_APPS = ("edge-proxy", "static-files", "api-gateway")
HOSTS = 3

LEVELS = ("info", "warn", "error")
LEVEL_P = (0.85, 0.10, 0.05)
MESSAGES = {"info": ("request completed", "job finished", "sent notification"),
            "warn": ("slow request", "retrying after upstream error"),
            "error": ("request failed", "upstream connect error")}
STATUS = {"info": (200, 200, 200, 201, 204), "warn": (200, 429, 404), "error": (500, 502, 503)}
FAST_RATE = 0.08                # logfmt requests under 1 ms (written in µs)
SLOW_RATE = 0.03                # logfmt requests drawn from the slow distribution (most above 1 s)

METHODS = ("GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE")
PATHS = ("/api/v1/items/", "/api/v1/invoices/", "/api/v1/users/", "/jobs/", "/reports/", "/static/img/")
NGINX_STATUS = ((200, 0.80), (304, 0.06), (301, 0.03), (404, 0.05), (499, 0.01), (500, 0.02),
                (502, 0.01), (503, 0.01))
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
          "curl/8.5.0", "Go-http-client/1.1", "kube-probe/1.29")
REFERERS = ("-", "-", "-", "https://shop.example.com/", "https://www.example.com/search")


def lines_for(json_lines: int) -> int:
    """The size of this set beside a JSON set of `json_lines`."""
    return max(MIN_LINES, json_lines // 10)


@dataclass
class LegacyStream:
    app: str
    host: str
    format: str
    lines: int = 0

    @property
    def labels(self) -> dict[str, str]:
        return {"format": self.format, "host": self.host, "job": f"legacy/{self.app}"}

    @property
    def text(self) -> str:
        return label_text(self.labels)


@dataclass
class LegacyDataset:
    """The drawn shape of the set; `batches()` renders the text, the same bytes on every call."""

    spec: Spec
    streams: list[LegacyStream]
    stream_of_line: np.ndarray              # index into `streams`, per line in push order
    ts: np.ndarray                          # ns, per line in push order
    bounds: list[tuple[int, int, int]]      # (client, begin, end) of each batch, in push order
    start_ns: int = START_NS
    end_ns: int = START_NS + DAY_NS

    def cache_key(self) -> str:
        """Names the push bodies cached for this data (bench/push.py)."""
        s = self.spec
        return f"legacy-v{VERSION}-n{s.lines}-s{s.seed}-c{s.clients}-b{s.batch}"

    def batches(self) -> Iterator[Batch]:
        """Every batch, in push order per client (batches of different clients interleaved)."""
        rng = np.random.default_rng((self.spec.seed, 3))
        is_logfmt = np.array([s.format == "logfmt" for s in self.streams])
        yield from cut_batches(self.bounds, self.stream_of_line, self.ts, [s.text for s in self.streams],
                               lambda b, e: render_lines(rng, self.ts[b:e], is_logfmt[self.stream_of_line[b:e]]))


def build(spec: Spec) -> LegacyDataset:
    """Draw the streams, their volumes and every line's stream and timestamp (not yet the text)."""
    rng = np.random.default_rng((spec.seed, 2))
    streams = [LegacyStream(app, f"node-{h + 1}", fmt)
               for fmt, apps in zip(FORMATS, (LOGFMT_APPS, NGINX_APPS), strict=True)
               for app in apps for h in range(HOSTS)]
    weights = np.concatenate([share * _zipf(rng, len(apps) * HOSTS)
                              for share, apps in zip(FORMAT_SHARE, (LOGFMT_APPS, NGINX_APPS), strict=True)])
    node = _balance(weights, spec.clients)
    ts = np.sort(rng.integers(0, DAY_NS, spec.lines, dtype=np.int64)) + START_NS
    stream = rng.choice(len(streams), size=spec.lines, p=weights).astype(np.int32)
    for k, n in enumerate(np.bincount(stream, minlength=len(streams))):
        streams[k].lines = int(n)
    perm, bounds, _ = push_order(spec, node[stream], stream)
    return LegacyDataset(spec, streams, stream[perm], ts[perm], bounds)


def _zipf(rng: np.random.Generator, n: int) -> np.ndarray:
    """Weights 1/rank^ZIPF_S over `n` streams, ranks shuffled, summing to 1."""
    weights = 1.0 / np.arange(1, n + 1) ** ZIPF_S
    return rng.permutation(weights / weights.sum())


def render_lines(rng: np.random.Generator, ts: np.ndarray, is_logfmt: np.ndarray) -> pa.StringArray:
    """The text of one line per timestamp: logfmt where `is_logfmt`, nginx elsewhere (order kept)."""
    logfmt = render_logfmt(rng, ts[is_logfmt])
    nginx = render_nginx(rng, ts[~is_logfmt])
    at = np.empty(len(ts), dtype=np.int64)
    at[is_logfmt] = np.arange(len(logfmt))
    at[~is_logfmt] = len(logfmt) + np.arange(len(nginx))
    return pc.take(pa.concat_arrays([logfmt, nginx]), pa.array(at))


def render_logfmt(rng: np.random.Generator, ts: np.ndarray) -> pa.StringArray:
    """A Go service's logfmt line per timestamp; the level decides the message and the status."""
    n = len(ts)
    level_idx = rng.choice(len(LEVELS), n, p=np.array(LEVEL_P))
    msg = pa.nulls(n, pa.string())
    status = np.zeros(n, dtype=np.int64)
    for k, name in enumerate(LEVELS):
        mask = level_idx == k
        m = int(mask.sum())
        msg = pc.replace_with_mask(msg, pa.array(mask), _pick(rng, m, MESSAGES[name]))
        status[mask] = np.array(STATUS[name])[rng.integers(0, len(STATUS[name]), m)]
    parts: list[pa.Array | str] = [
        "ts=", _fixed(_rfc3339(ts)), " level=", pc.take(pa.array(LEVELS), pa.array(level_idx)),
        ' msg="', msg, '" method=', _pick(rng, n, METHODS), " path=", _pick(rng, n, PATHS),
        _num(rng.integers(1, 10_000, n)), " status=", _num(status), " duration=", go_duration(draw_us(rng, n)),
        " bytes=", _num(rng.lognormal(7.5, 1.2, n).astype(np.int64)),
    ]
    return pc.binary_join_element_wise(*parts, "")


def draw_us(rng: np.random.Generator, n: int) -> np.ndarray:
    """Request durations in µs: lognormal around 25 ms, FAST_RATE around 0.4 ms, SLOW_RATE around 3 s."""
    kind = rng.random(n)
    us = rng.lognormal(np.log(25_000), 0.9, n)
    fast, slow = kind < FAST_RATE, kind > 1 - SLOW_RATE
    us[fast] = rng.lognormal(np.log(400), 0.5, int(fast.sum()))
    us[slow] = rng.lognormal(np.log(3_000_000), 1.2, int(slow.sum()))
    return np.maximum(us.astype(np.int64), 1)


def go_duration(us: np.ndarray) -> pa.Array:
    """Go's time.Duration text of µs values as a Go service logs them, to the µs under 1 s and to
    the ms above: `850µs`, `12.345ms`, `1.5s`, `2m3.25s`, `1h0m2s`."""
    ms = np.round(us / 1000).astype(np.int64)
    hours, rest = np.divmod(ms, 3_600_000)
    minutes, rest = np.divmod(rest, 60_000)
    secs = _num(rest / 1000)
    forms = [
        pc.binary_join_element_wise(_num(us), "µs", ""),
        pc.binary_join_element_wise(_num(us / 1000), "ms", ""),
        pc.binary_join_element_wise(secs, "s", ""),
        pc.binary_join_element_wise(_num(minutes), "m", secs, "s", ""),
        pc.binary_join_element_wise(_num(hours), "h", _num(minutes), "m", secs, "s", ""),
    ]
    which = np.where(us < 1_000, 0, np.where(us < 1_000_000, 1, 2 + np.searchsorted([60_000, 3_600_000], ms,
                                                                                    side="right")))
    return pc.choose(pa.array(which), *forms)


def render_nginx(rng: np.random.Generator, ts: np.ndarray) -> pa.StringArray:
    """An nginx access-log line (combined log format) per timestamp."""
    n = len(ts)
    codes = np.array([c for c, _ in NGINX_STATUS])
    p = np.array([w for _, w in NGINX_STATUS])
    parts: list[pa.Array | str] = [
        "10.", _num(rng.integers(0, 4, n)), ".", _num(rng.integers(0, 256, n)), ".", _num(rng.integers(1, 255, n)),
        " - - [", _fixed(_clf_time(ts)), '] "', _pick(rng, n, METHODS), " ", _pick(rng, n, PATHS),
        _num(rng.integers(1, 10_000, n)), ' HTTP/1.1" ', _num(codes[rng.choice(len(codes), n, p=p / p.sum())]), " ",
        _num(rng.lognormal(8.0, 1.5, n).astype(np.int64)), ' "', _pick(rng, n, REFERERS), '" "',
        _pick(rng, n, AGENTS), '"',
    ]
    return pc.binary_join_element_wise(*parts, "")


def _clf_time(ts: np.ndarray) -> np.ndarray:
    """`19/Jan/2026:00:00:13 +0000` (nginx's $time_local in UTC) per ns timestamp, as (n, 26) ASCII."""
    n = len(ts)
    days, ns = np.divmod(ts, DAY_NS)
    first = int(days.min()) if n else 0
    dates = np.array([list(datetime.fromtimestamp(d * 86_400, UTC).strftime("%d/%b/%Y:").encode())
                      for d in range(first, int(days.max()) + 1 if n else first + 1)], dtype=np.uint8)
    hh, rest = np.divmod(ns // 10**9, 3600)
    mm, ss = np.divmod(rest, 60)
    return np.hstack([dates[days - first], _digits(hh, 2), _const(n, ":"), _digits(mm, 2), _const(n, ":"),
                      _digits(ss, 2), _const(n, " +0000")])


def describe(ds: LegacyDataset, sample: int = 3) -> str:
    """The shape of the set: sizes per format, duration forms and 5xx shares, samples of each format."""
    lines = pa.chunked_array([b.lines for b in ds.batches()])
    is_logfmt = pc.starts_with(lines, "ts=")
    logfmt, nginx = lines.filter(is_logfmt), lines.filter(pc.invert(is_logfmt))

    def share(texts: pa.ChunkedArray, pattern: str) -> str:
        return f"{pc.sum(pc.match_substring_regex(texts, pattern)).as_py() / max(len(texts), 1):.2%}"

    out = [f"lines {ds.spec.lines:,}, streams {len(ds.streams)}, logfmt {len(logfmt):,}, nginx {len(nginx):,}, "
           f"mean {pc.mean(pc.binary_length(lines)).as_py():.0f} bytes/line",
           "logfmt durations " + ", ".join(f"{form} {share(logfmt, rf'duration={pattern} ')}" for form, pattern in (
               ("µs", r"[0-9]+µs"), ("ms", r"[0-9.]+ms"), ("s", r"[0-9.]+s"), ("m/h", r"[0-9hm.]+m[0-9.]+s"))),
           "nginx status " + ", ".join(f"{code} {share(nginx, f'HTTP/1.1. {code} ')}" for code in (500, 502, 503))]
    out += [str(logfmt[i]) for i in range(min(sample, len(logfmt)))]
    out += [str(nginx[i]) for i in range(min(sample, len(nginx)))]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the JSON set beside it")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    print(describe(build(Spec(lines_for(args.lines), args.seed, args.clients, args.batch))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
