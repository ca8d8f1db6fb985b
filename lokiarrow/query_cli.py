"""`lokiarrow query '<logql>'`: a query from the shell, against a store's files (`--path`) or a
server (`--addr`, default `$LOKI_ADDR` or http://localhost:3100), as logcli users expect.

Output: `raw` (the lines; metric answers as `labels value`), `jsonl` (one JSON object per entry
or point) or `table` (timestamp, labels, line or value); on a terminal the labels are coloured.
`--tail` follows a server's live tail (WebSocket) until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlencode

if TYPE_CHECKING:   # the parser is built on every `lokiarrow` start: what the command needs comes later
    import polars as pl

DEFAULT_ADDR = "http://localhost:3100"
_BLUE, _DIM, _RESET = "\033[34m", "\033[2m", "\033[0m"


def query_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logql", help="the LogQL query")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--path", help="a store's data folder (read-only; a server may be running)")
    where.add_argument("--addr", help=f"a server's URL (default $LOKI_ADDR or {DEFAULT_ADDR})")
    parser.add_argument("--tenant", help="the tenant (X-Scope-OrgID; the store's folder with --path)")
    parser.add_argument("--since", default="1h", help="how far back, when --from is not given (default 1h)")
    parser.add_argument("--from", dest="start", help="start: RFC 3339, ns since the epoch, or a duration back")
    parser.add_argument("--to", dest="end", help="end (default now)")
    parser.add_argument("--limit", type=int, default=30, help="entries at most (default 30)")
    parser.add_argument("--forward", action="store_true", help="oldest entries first")
    parser.add_argument("--step", help="metric queries: the step (default as Loki's)")
    parser.add_argument("--output", "-o", choices=("raw", "jsonl", "table"), default="table")
    parser.add_argument("--tail", action="store_true", help="follow a server's new entries")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--progress-after", default=2000, type=_milliseconds, metavar="DURATION",
                        help="with --path on a terminal: a progress bar for scans longer than this (default 2s)")


def command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from lokiarrow.api import RemoteStore, connect
    from lokiarrow.api import open as open_store
    from lokiarrow.errors import LokiError
    from lokiarrow.server.deps import DEFAULT_TENANT

    color = args.color == "always" or (args.color == "auto" and out.isatty())
    if args.tail:
        if args.path:
            print("error: --tail follows a server: give --addr", file=sys.stderr)
            return 1
        return asyncio.run(_tail(_addr(args), args, out, color))
    if args.path and out.isatty():
        _progress_bar(args.progress_after)
    store = open_store(args.path, args.tenant or DEFAULT_TENANT) if args.path else connect(_addr(args), args.tenant)
    try:
        df = store.query(args.logql, start=_time(args.start or args.since), end=_time(args.end), limit=args.limit,
                         direction="forward" if args.forward else "backward", step=args.step)
    except LokiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if isinstance(store, RemoteStore):
            store.close()
    write(df, args.output, out, color)
    return 0


def _milliseconds(text: str) -> int:
    from lokiarrow.units import parse_duration_ns
    try:
        return parse_duration_ns(text) // 10**6
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _progress_bar(after_ms: int) -> None:
    """DuckDB's own progress bar on the local scans (it draws on the terminal)."""
    from lokiarrow.exec import duck

    duck.SESSION_SETTINGS += ["SET enable_progress_bar = true", "SET enable_progress_bar_print = true",
                              f"SET progress_bar_time = {int(after_ms)}"]


def _addr(args: argparse.Namespace) -> str:
    return str(args.addr or os.environ.get("LOKI_ADDR") or DEFAULT_ADDR)


def _time(value: str | None) -> str | int | None:
    """Digits are ns since the epoch; anything else as the API reads it."""
    return int(value) if value is not None and value.lstrip("-").isdigit() else value


def write(df: pl.DataFrame, output: str, out: TextIO, color: bool = False) -> None:
    """A query's frame as the chosen output."""
    metric = "value" in df.columns
    for row in df.iter_rows(named=True):
        # stream labels, structured metadata and parsed labels together, as Loki's plain answer has them
        merged = {**(row["labels"] or {}), **(row.get("metadata") or {}), **(row.get("parsed") or {})}
        labels = {k: v for k, v in merged.items() if v is not None}
        stamp = row["timestamp"].isoformat().replace("+00:00", "Z")
        if output == "jsonl":
            item = {"timestamp": stamp, "labels": labels, ("value" if metric else "line"):
                    row["value"] if metric else row["line"]}
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
            continue
        text = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        shown = f"{_BLUE}{text}{_RESET}" if color else text
        value = f"{row['value']:g}" if metric else row["line"]
        if output == "raw":
            out.write(f"{shown} {value}\n" if metric else f"{value}\n")
        else:
            when = f"{_DIM}{stamp}{_RESET}" if color else stamp
            out.write(f"{when} {shown} {value}\n")


async def _tail(addr: str, args: argparse.Namespace, out: TextIO, color: bool) -> int:
    """Print what the server's live tail sends, until interrupted or the connection ends."""
    import orjson
    import websockets

    from lokiarrow.api import frame
    url = addr.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
    params = urlencode({"query": args.logql, "limit": args.limit})
    headers = {"X-Scope-OrgID": args.tenant} if args.tenant else {}
    try:
        async with websockets.connect(f"{url}/loki/api/v1/tail?{params}", additional_headers=headers) as ws:
            async for message in ws:
                streams = orjson.loads(message).get("streams") or []
                if streams:
                    write(frame({"resultType": "streams", "result": streams}, backward=False), args.output, out, color)
                    out.flush()
    except (OSError, websockets.WebSocketException) as exc:
        print(f"error: cannot tail {url}: {exc}", file=sys.stderr)
        return 1
    return 0
