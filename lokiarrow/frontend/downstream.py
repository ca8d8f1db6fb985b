"""A split `query_range` run as its parts, each a GET to the downstream querier, merged into one
answer: Loki's query frontend in front of a pool of readers (`frontend.downstream_url`).

1. The request is cut into parts (split.py); one part: not split, the caller answers in-process.
2. Up to `MAX_PARALLEL` parts run at once (Loki's `max_outstanding_per_tenant` idea), earliest in
   answer order first, with the request's tenant (`X-Scope-OrgID`), `Authorization` and
   `X-Loki-Response-Encoding-Flags` headers.
3. Answers are read in answer order. A log query stops once it holds `limit` entries (the parts
   still running are cancelled); a part whose cut the JSON cannot place is asked again with the
   limit it has left (merge.py).
4. A part answering other than 200 makes the query answer that status and body; a downstream that
   cannot be reached answers 502. The whole run stays within the tenant's `query_timeout` (504).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from lokiarrow.config import Limits, smallest_positive
from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.exec.duck import QueryTimeout
from lokiarrow.exec.engine import RangeRequest
from lokiarrow.frontend.merge import (
    Data,
    count_entries,
    first_entries,
    merge_matrix,
    merge_stats,
    merge_streams,
)
from lokiarrow.frontend.split import Part, split_request

MAX_PARALLEL = 8
CONNECT_TIMEOUT_S = 10.0
PATH = "/loki/api/v1/query_range"
FORWARDED = ("X-Scope-OrgID", "Authorization", "X-Loki-Response-Encoding-Flags")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PartFailed(LokiError):
    """A part answered with an error: the query answers the same status and text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BadGateway(LokiError):
    status = 502


@dataclass(frozen=True)
class Downstream:
    """Where parts go, and the request headers they carry."""

    url: str
    headers: dict[str, str]

    @classmethod
    def of(cls, url: str, request_headers: Mapping[str, str]) -> Downstream:
        return cls(url.rstrip("/"), {name: request_headers[name] for name in FORWARDED if name in request_headers})


async def split_query_range(downstream: Downstream, req: RangeRequest, step_text: str,
                            limits: Sequence[Limits]) -> Data | None:
    """`req` answered by its parts downstream, or None when it is not split (step 1). `step_text`:
    the request's `step` parameter as given (empty: none); `limits`: those of the query's tenants."""
    split = split_request(req, smallest_positive(one.split_queries_by_interval for one in limits))
    if len(split.parts) <= 1:
        return None
    timeout_ns = smallest_positive(one.query_timeout for one in limits)
    try:
        async with asyncio.timeout(timeout_ns / 1e9 if timeout_ns else None):
            async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT_S)) as client:
                fetch = _Parts(client, downstream, req, step_text).fetch
                if split.logs:
                    return await run_logs(split.parts, fetch, req.limit, req.backward)
                data = await run_metric(split.parts, fetch, req.limit)
    except TimeoutError:
        raise QueryTimeout() from None
    _check_series(data, smallest_positive(one.max_query_series for one in limits))
    return data


def _check_series(data: Data, limit: int) -> None:
    """The engine's series limit over the whole answer: each part may hold fewer series than it."""
    if limit and len(data["result"]) > limit:
        raise BadRequest(f"maximum number of series ({limit}) reached for a single query; "
                         "consider reducing query cardinality by adding more filters")


Fetch = Callable[[Part, int], Coroutine[Any, Any, Data]]   # one part's `data`, asked with this limit


async def run_logs(parts: Sequence[Part], fetch: Fetch, limit: int, backward: bool) -> Data:
    """A log query's parts (in time order) run and merged (step 3)."""
    ordered = list(reversed(parts)) if backward else list(parts)
    tasks = [asyncio.create_task(fetch(part, limit)) for part in ordered]
    answered: list[Data] = []
    taken: list[Data] = []
    held = 0
    try:
        for part, task in zip(ordered, tasks, strict=True):
            data = await task
            answered.append(data)
            n = count_entries(data)
            if held + n > limit:
                cut = first_entries(data, limit - held, backward)
                taken.append(cut if cut is not None else await fetch(part, limit - held))
                break
            taken.append(data)
            held += n
            if held == limit:
                break
    finally:
        await _cancel(tasks)
    return {**merge_streams(taken), "stats": merge_stats(answered)}


async def run_metric(parts: Sequence[Part], fetch: Fetch, limit: int) -> Data:
    """A metric query's parts (in time order) run and merged; the first failure in time order wins."""
    tasks = [asyncio.create_task(fetch(part, limit)) for part in parts]
    try:
        answered = [await task for task in tasks]
    finally:
        await _cancel(tasks)
    return merge_matrix(answered)


class _Parts:
    """How the parts of one query are asked for: GETs downstream, `MAX_PARALLEL` at once."""

    def __init__(self, client: httpx.AsyncClient, downstream: Downstream, req: RangeRequest, step_text: str) -> None:
        self.client = client
        self.downstream = downstream
        self.req = req
        self.step = step_param(req.step_ns, step_text)
        self.slots = asyncio.Semaphore(MAX_PARALLEL)

    async def fetch(self, part: Part, limit: int) -> Data:
        """One part's `data`; PartFailed or BadGateway when it has none."""
        params = {"query": self.req.query, "start": rfc3339(part.start), "end": rfc3339(part.end),
                  "limit": str(limit), "direction": "backward" if self.req.backward else "forward",
                  "step": self.step}
        url = self.downstream.url + PATH
        async with self.slots:
            try:
                r = await self.client.get(url, params=params, headers=self.downstream.headers)
            except httpx.HTTPError as exc:
                raise BadGateway(f"cannot query the downstream querier {self.downstream.url}: "
                                 f"{type(exc).__name__}: {exc}") from None
        if r.status_code != 200:
            raise PartFailed(r.status_code, r.text.removesuffix("\n"))
        try:
            data: Data = orjson.loads(r.content)["data"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise BadGateway(f"cannot read the answer of the downstream querier {self.downstream.url}: "
                             f"{r.text[:200]!r}") from None
        return data


async def _cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Stop the parts still running; their errors no longer matter."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def step_param(step_ns: int, given: str) -> str:
    """`step` for a part: whole milliseconds as a duration, else the request's own text (a step of
    a fraction of a millisecond can only come from one)."""
    return f"{step_ns // 10**6}ms" if step_ns % 10**6 == 0 or not given else given


def rfc3339(ns: int) -> str:
    """A ns timestamp as RFC3339 with nine decimals: read back exactly (an integer of ten digits
    or fewer would be read as seconds)."""
    seconds, fraction = divmod(ns, 10**9)
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"
