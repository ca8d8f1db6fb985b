"""A reader's view of the writers (`-target=read`, `querier.writers`): for each query it asks every
writer for the entries it holds unflushed and the files it flushed lately (wire/heads.py), as
Loki's queriers ask the ingesters, so a line is visible as soon as its push returned.

The answers become extra heads and index rows on top of the reader's own snapshot (its index of
the files in storage, re-read every `querier.index_refresh_interval`): each writer's heads keep
their order, and index rows of files the reader already knows are left out, so nothing is counted
twice. A writer that does not answer is left out, with a warning: the query answers from the
others and from storage (Loki's replicas would cover it; here its unflushed entries are missing
until it is back and has replayed its WAL).

Addresses: `http://host:port`, or `dns+host:port` for every address a name resolves to (a
Kubernetes headless Service, docker compose replicas), resolved at each query.
"""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.model import Matcher
from lokiarrow.store.head import Head
from lokiarrow.store.schema import ENTRIES, INDEX
from lokiarrow.store.tenant import Snapshot
from lokiarrow.wire import heads

log = logging.getLogger(__name__)
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Want:
    """What a query needs of the writers: entries in [start, end) of the streams any selector
    matches (None: every stream); `rows=False`: only which streams have some (labels, series)."""

    start: int
    end: int
    selectors: list[tuple[Matcher, ...]] | None = None
    rows: bool = True


class Writers:
    def __init__(self, addresses: tuple[str, ...]) -> None:
        self.addresses = addresses
        self._http = httpx.Client(timeout=TIMEOUT_S)
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="writers")

    def urls(self) -> list[str]:
        out: list[str] = []
        for address in self.addresses:
            if not address.startswith("dns+"):
                out.append(address.rstrip("/"))
                continue
            host, _, port = address.removeprefix("dns+").rpartition(":")
            try:
                found = socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP)
            except OSError as exc:
                log.warning("cannot resolve the writers at %s: %s", address, exc)
                continue
            for ip in sorted({str(info[4][0]) for info in found}):
                out.append(f"http://[{ip}]:{port}" if ":" in ip else f"http://{ip}:{port}")
        return out

    def snapshot(self, local: Snapshot, tenant: str, want: Want) -> Snapshot:
        """The reader's snapshot with what the writers hold for `want`."""
        if want.selectors is not None and not want.selectors:
            return local
        body = orjson.dumps({"start": want.start, "end": want.end, "rows": want.rows,
                             "selectors": heads.selectors_json(want.selectors)})
        answers = [a for a in self._pool.map(lambda url: self._ask(url, tenant, body), self.urls()) if a is not None]
        held: list[Head] = []
        streams: dict[int, str] = {}
        for entries, _ in answers:
            if entries.num_rows == 0:
                continue
            ranks = entries.column("head")
            for rank in sorted(pc.unique(ranks).to_pylist()):
                part = entries.filter(pc.equal(ranks, rank)).sort_by("rn").select(ENTRIES.names)
                head = Head()
                for batch in part.to_batches():
                    head.add(batch)
                held.append(head)
                streams.update(head.streams)
        recent = [rows for _, rows in answers if rows.num_rows]
        rows = pa.concat_tables(recent) if recent else INDEX.empty_table()
        index = local.index.overlaid(rows, streams)
        return Snapshot(tuple(held) + local.heads, index, local.root)

    def _ask(self, url: str, tenant: str, body: bytes) -> tuple[pa.Table, pa.Table] | None:
        try:
            answer = self._http.post(url + heads.PATH, content=body,
                                     headers={"X-Scope-OrgID": tenant, "Content-Type": "application/json"})
            if answer.status_code != 200:
                log.warning("writer %s answered %d: %s", url, answer.status_code, answer.text[:200])
                return None
            return heads.decode(answer.content)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("cannot ask writer %s: %s", url, exc)
            return None

    def close(self) -> None:
        self._http.close()
        self._pool.shutdown(wait=False)
