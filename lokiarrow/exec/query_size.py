"""Loki's `max_query_bytes_read`: a query that would read more than its tenant's limit is refused
up front with Loki's 400, before any file is opened.

The size is the index's estimate (exec/index_queries.py `bytes_of`, what index/stats answers) of
the bytes of lines the query's selectors hold over the spans it reads: a log query's [start, end];
each `{…}[range] offset o` of a metric query over [start - range - o, end - o]. As in Loki, a log
query without a line or label filter is not bounded (it stops at its limit of lines), and a query
of several tenants gets the smallest of their limits against the sum of their bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from lokiarrow.errors import BadRequest
from lokiarrow.exec.index_queries import bytes_of
from lokiarrow.exec.writers import Want
from lokiarrow.logql import ast
from lokiarrow.logql.parser import parse_expr
from lokiarrow.store.tenant import Snapshot
from lokiarrow.units import humanized_bytes

TOO_MANY_BYTES = ("the query would read too many bytes (query: {}, limit: {}); consider adding more specific "
                  "stream selectors or reduce the time range of the query")


def check_query_bytes(snapshot_of: Callable[[str, Want], Snapshot], tenant: str, query: str, start: int, end: int,
                      limit: int) -> None:
    """BadRequest when the query would read more than `limit` bytes (`snapshot_of(tenant, want)`:
    the querier's view of a tenant's data)."""
    expr = parse_expr(query)
    if isinstance(expr, ast.LogExpr):
        if not any(isinstance(s, ast.LineFilter | ast.LabelFilterStage) for s in expr.stages):
            return
        spans = [(list(expr.matchers), start, end)]
    else:
        spans = [(list(r.selector.matchers), start - r.range_ns - r.offset_ns, end - r.offset_ns)
                 for r in ast.log_ranges(expr)]
    total = 0
    for one in tenant.split("|"):
        for matchers, lo, hi in spans:
            total += bytes_of(snapshot_of(one, Want(lo, hi + 1)), matchers, lo, hi)
    if total > limit:
        raise BadRequest(TOO_MANY_BYTES.format(humanized_bytes(total), humanized_bytes(limit)))
