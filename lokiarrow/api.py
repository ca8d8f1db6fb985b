"""The Python API: a store's logs for notebooks and scripts, as Polars frames, without the server.

    store = lokiarrow.open("./data")                        # a folder or an fsspec URL
    store.query('{app="web"} |= "error"', start="1h")       # timestamp, labels, line
    store.query('sum by (level) (count_over_time({app="web"} | json [5m]))', start="6h")
                                                             # timestamp, labels, value
    store.labels(), store.label_values("app"), store.series('{app="web"}')
    store.sql("SELECT labels, count(*) FROM logs GROUP BY ALL"), store.duckdb()
    remote = lokiarrow.connect("http://host:3100")          # the same calls over Loki's HTTP API

`open` reads the files as they are when it opens: the index is a consistent snapshot, and
`refresh()` takes a newer one. It never writes and takes no lock, so a server using the store goes
on; entries the server has not flushed yet are not in the files. Times: a `datetime` (naive ones
are UTC), a `timedelta` or a duration text (`"1h"`) back from now, ns since the epoch, or RFC 3339
text; by default the last hour, as Loki. Answers: `timestamp` (UTC, ns) and `labels` (a struct of
every label name in the answer); for log queries `line`, `metadata` (structured metadata) and
`parsed` (labels the pipeline extracted), apart from the stream labels as Grafana asks for them;
for metric queries `value`. Polars' `to_arrow()` gives Arrow.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import polars as pl

from lokiarrow.config import Ingester, Limits, Storage
from lokiarrow.errors import BadRequest
from lokiarrow.exec.engine import Querier, RangeRequest
from lokiarrow.server.deps import DEFAULT_TENANT, tenant_problem
from lokiarrow.server.params import parse_step
from lokiarrow.store.names import literal
from lokiarrow.store.store import Store
from lokiarrow.units import parse_duration_ns

VIEWS = Path(__file__).resolve().parent.parent / "sql" / "views.sql"
DEFAULT_SINCE = timedelta(hours=1)
TimeLike = datetime | timedelta | str | int | None
# what a notebook may ask of its own data: no per-query caps
OPEN_LIMITS = Limits(max_entries_limit_per_query=0, max_query_series=0, max_query_length=0, query_timeout=0)


def open(path: str | Path, tenant: str = DEFAULT_TENANT, **storage: Any) -> LocalStore:  # noqa: A001
    """A store's files, read-only (`tenant`: the folder under the root; `fake` when auth is off).
    For object storage (`s3://bucket/prefix`), `storage` takes the settings of `storage_config`:
    endpoint, region, access_key_id, secret_access_key, insecure, cache_location, cache_size
    (empty ones come from the environment, as AWS tools read it)."""
    known = {f.name for f in fields(Storage)}
    if unknown := sorted(set(storage) - known):
        raise BadRequest(f"unknown storage settings {unknown}: {', '.join(sorted(known))}")
    for one in tenant.split("|"):   # `a|b`: a query over several tenants (exec/multitenant.py)
        _check_tenant(one)
    return LocalStore(str(path), tenant, Storage(**storage))


def _check_tenant(tenant: str) -> None:
    """Tenant ids name folders under the root: Loki's rules (server/deps.py) keep `../x`, `a/b`
    and the like from reading outside them. BadRequest with Loki's words otherwise."""
    problem = tenant_problem(tenant) if tenant else "no org id"
    if problem:
        raise BadRequest(f"cannot open tenant {tenant!r}: {problem}")


def connect(url: str, tenant: str | None = None, headers: dict[str, str] | None = None) -> RemoteStore:
    """A running server (or anything speaking Loki's HTTP API), through its query endpoints."""
    return RemoteStore(url, tenant, headers)


class _Queries:
    """What both kinds of store answer, over `_range` and friends."""

    def query(self, logql: str, start: TimeLike = None, end: TimeLike = None, limit: int = 100,
              direction: str = "backward", step: timedelta | str | None = None) -> pl.DataFrame:
        """A LogQL query over a time range, as Loki's `query_range`."""
        if direction not in ("backward", "forward"):
            raise BadRequest(f"invalid direction {direction!r}: backward or forward")
        lo, hi = _span(start, end)
        step_ns = parse_step({}, lo, hi) if step is None else _duration_ns(step)
        return frame(self._range(logql, lo, hi, limit, direction == "backward", step_ns), direction == "backward")

    def instant(self, logql: str, at: TimeLike = None) -> pl.DataFrame:
        """A metric query at one time, as Loki's `query`."""
        return frame(self._instant(logql, _ns(at, time.time_ns())))

    def labels(self, start: TimeLike = None, end: TimeLike = None) -> list[str]:
        return self._labels(*_span(start, end), None)

    def label_values(self, name: str, start: TimeLike = None, end: TimeLike = None,
                     selector: str | None = None) -> list[str]:
        return self._labels(*_span(start, end), name, selector)

    def series(self, selector: str, start: TimeLike = None, end: TimeLike = None) -> pl.DataFrame:
        """The label sets of the streams the selector matches, a row each."""
        found = self._series(selector, *_span(start, end))
        return pl.DataFrame({"labels": _struct(found)}) if found else pl.DataFrame({"labels": []})

    def _range(self, logql: str, start: int, end: int, limit: int, backward: bool, step_ns: int) -> dict[str, Any]:
        raise NotImplementedError

    def _instant(self, logql: str, at: int) -> dict[str, Any]:
        raise NotImplementedError

    def _labels(self, start: int, end: int, name: str | None, selector: str | None = None) -> list[str]:
        raise NotImplementedError

    def _series(self, selector: str, start: int, end: int) -> list[dict[str, str]]:
        raise NotImplementedError


class LocalStore(_Queries):
    def __init__(self, path: str, tenant: str, storage: Storage | None = None) -> None:
        self.path, self.tenant, self.storage = path, tenant, storage or Storage()
        self.refresh()

    def refresh(self) -> None:
        """Read the index again (files flushed or compacted since)."""
        self._store = Store(self.path, Ingester(wal_enabled=False), storage=self.storage)
        self._querier = Querier(self._store, OPEN_LIMITS)

    def _range(self, logql: str, start: int, end: int, limit: int, backward: bool, step_ns: int) -> dict[str, Any]:
        data = self._querier.query_range(self.tenant, RangeRequest(logql, start, end, limit, backward, step_ns))
        if hasattr(data["result"], "categorized"):   # stream labels apart from metadata and parsed ones
            data = {**data, "result": data["result"].categorized()}
        return data

    def _instant(self, logql: str, at: int) -> dict[str, Any]:
        return self._querier.query_instant(self.tenant, logql, at)

    def _labels(self, start: int, end: int, name: str | None, selector: str | None = None) -> list[str]:
        if name is None:
            return self._querier.labels(self.tenant, start, end)
        return self._querier.label_values(self.tenant, name, start, end, selector)

    def _series(self, selector: str, start: int, end: int) -> list[dict[str, str]]:
        return self._querier.series(self.tenant, [selector], start, end)

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the views and macros of sql/views.sql over this tenant."""
        root = self._store.root
        return views(root.url, self.tenant, None if root.local else root.fs, every=False)

    def sql(self, text: str, params: list[Any] | None = None) -> pl.DataFrame:
        """A SQL query over the views, as Polars (values bound as parameters, never pasted in)."""
        con = self.duckdb()
        try:
            return pl.from_arrow(con.sql(text, params=params or None).to_arrow_table())  # type: ignore[return-value]
        finally:
            con.close()


class RemoteStore(_Queries):
    def __init__(self, url: str, tenant: str | None, headers: dict[str, str] | None) -> None:
        sent = dict(headers or {})
        if tenant:
            sent["X-Scope-OrgID"] = tenant
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=sent, timeout=300)

    def _get(self, path: str, params: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        answer = self._http.get(path, params=params, headers=headers)
        if answer.status_code != 200:
            raise BadRequest(f"{path} answered {answer.status_code}: {answer.text.strip()}")
        return answer.json()["data"]

    def _range(self, logql: str, start: int, end: int, limit: int, backward: bool, step_ns: int) -> dict[str, Any]:
        return self._get("/loki/api/v1/query_range", {  # type: ignore[no-any-return]
            "query": logql, "start": start, "end": end, "limit": limit,
            "direction": "backward" if backward else "forward", "step": f"{step_ns / 1e9:g}"},
            {"X-Loki-Response-Encoding-Flags": "categorize-labels"})

    def _instant(self, logql: str, at: int) -> dict[str, Any]:
        return self._get("/loki/api/v1/query", {"query": logql, "time": at})  # type: ignore[no-any-return]

    def _labels(self, start: int, end: int, name: str | None, selector: str | None = None) -> list[str]:
        path = "/loki/api/v1/labels" if name is None else f"/loki/api/v1/label/{name}/values"
        params: dict[str, Any] = {"start": start, "end": end, **({"query": selector} if selector else {})}
        return list(self._get(path, params) or [])

    def _series(self, selector: str, start: int, end: int) -> list[dict[str, str]]:
        return list(self._get("/loki/api/v1/series", {"match[]": selector, "start": start, "end": end}) or [])

    def close(self) -> None:
        self._http.close()


def views(root: str, tenant: str = "*", filesystem: Any = None, every: bool = True) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views and macros of sql/views.sql over a data folder or an
    object storage URL (one tenant, or '*' for all of them when `every`); `filesystem`: the fsspec
    filesystem DuckDB reads such a URL through (store/objects.py). The tenant is a folder name,
    never a pattern: BadRequest for one Loki refuses (`../x`, `a/b`, `?`...); a `*` in it (`*` too
    when not `every`) matches itself only."""
    if not (every and tenant == "*"):
        _check_tenant(tenant)
        tenant = literal(tenant)
    con = duckdb.connect()
    if filesystem is not None:
        con.register_filesystem(filesystem)
    con.execute("SET VARIABLE root = ?", [root])
    con.execute("SET VARIABLE tenant = ?", [tenant])
    con.execute(VIEWS.read_text())
    return con


# --- answers as frames -------------------------------------------------------------------------------

def frame(data: dict[str, Any], backward: bool = True) -> pl.DataFrame:
    """Loki's `data` object (streams, matrix, vector or scalar) as a Polars frame; a log answer's
    entries in the query's direction across streams (newest first when `backward`)."""
    kind = data["resultType"]
    if kind == "streams":
        return _entries(data["result"], backward)
    if kind == "matrix":
        points = [(v[0], s["metric"], v[1]) for s in data["result"] for v in s["values"]]
    elif kind == "vector":
        points = [(s["value"][0], s["metric"], s["value"][1]) for s in data["result"]]
    else:
        at, value = data["result"]
        points = [(at, {}, value)]
    return pl.DataFrame({"timestamp": _times([round(float(p[0]) * 1e9) for p in points]),
                         "labels": _struct([p[1] for p in points]),
                         "value": pl.Series([float(p[2]) for p in points], dtype=pl.Float64)})


def _entries(streams: list[dict[str, Any]], backward: bool) -> pl.DataFrame:
    """A streams answer's entries (plain, or categorized: [ts, line, {structuredMetadata, parsed}])."""
    rows = [(int(v[0]), s["stream"], v[1], v[2] if len(v) > 2 else {}) for s in streams for v in s["values"]]
    rows.sort(key=lambda r: -r[0] if backward else r[0])
    return pl.DataFrame({"timestamp": _times([r[0] for r in rows]), "labels": _struct([r[1] for r in rows]),
                         "line": pl.Series([r[2] for r in rows], dtype=pl.String),
                         "metadata": _struct([r[3].get("structuredMetadata", {}) for r in rows]),
                         "parsed": _struct([r[3].get("parsed", {}) for r in rows])})


def _times(ns: list[int]) -> pl.Series:
    return pl.Series(ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))


def _struct(labels: list[dict[str, str]]) -> pl.Series:
    names = sorted({k for one in labels for k in one})
    if not names:
        return pl.Series([None] * len(labels), dtype=pl.Struct([]))
    return pl.Series([{n: one.get(n) for n in names} for one in labels],
                     dtype=pl.Struct(dict.fromkeys(names, pl.String)))


# --- times -------------------------------------------------------------------------------------------

def _span(start: TimeLike, end: TimeLike) -> tuple[int, int]:
    now = time.time_ns()
    hi = _ns(end, now)
    lo = _ns(start, hi - _duration_ns(DEFAULT_SINCE), now)
    if hi < lo:
        raise BadRequest("end must not be before start")
    return lo, hi


def _ns(value: TimeLike, default: int, now: int | None = None) -> int:
    """A time as ns since the epoch; durations count back from now."""
    now = time.time_ns() if now is None else now
    if value is None:
        return default
    if isinstance(value, bool):
        raise BadRequest(f"not a time: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, timedelta):
        return now - _duration_ns(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return calendar.timegm(aware.utctimetuple()) * 10**9 + aware.microsecond * 1000
    try:
        return now - parse_duration_ns(value)
    except ValueError:
        pass
    try:
        return _ns(datetime.fromisoformat(value.replace("Z", "+00:00")), default, now)
    except ValueError:
        raise BadRequest(f"not a time: {value!r} (a datetime, a timedelta, a duration such as '1h', "
                         "ns since the epoch or RFC 3339 text)") from None


def _duration_ns(value: timedelta | str) -> int:
    if isinstance(value, timedelta):
        return int(value / timedelta(microseconds=1)) * 1000
    return parse_duration_ns(value)


__all__ = ["LocalStore", "RemoteStore", "connect", "frame", "open"]
