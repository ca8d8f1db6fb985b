"""What every route needs, as FastAPI dependencies: the services, the tenant, the parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from lokiarrow.config import Config
from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.exec.engine import Querier
from lokiarrow.exec.multitenant import tenant_ids
from lokiarrow.overrides import TenantLimits
from lokiarrow.server.telemetry import Telemetry
from lokiarrow.store.store import Store

DEFAULT_TENANT = "fake"
_UNSUPPORTED = re.compile(r"[^a-zA-Z0-9!\-_.*'()]")


class Unauthorized(LokiError):
    status = 401


@dataclass
class Services:
    config: Config
    store: Store
    querier: Querier
    telemetry: Telemetry
    limits: TenantLimits   # limits(tenant): limits_config with the tenant's runtime overrides


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def org_header(request: Request) -> str:
    """The `X-Scope-OrgID` header as Go reads it: its bytes as UTF-8, a bad byte as U+FFFD (so a
    refusal names the character sent, not its Latin-1 reading)."""
    raw = request.headers.get("X-Scope-OrgID", "")
    return raw.encode("latin-1").decode("utf-8", errors="replace")


def tenant(request: Request) -> str:
    return tenant_of(services(request).config.auth_enabled, org_header(request))


def query_tenant(request: Request) -> str:
    """The tenant of a query: as `tenant`, or with `querier.multi_tenant_queries_enabled`
    several ids joined by `|` (each checked; returned sorted, each once: exec/multitenant.py)."""
    config = services(request).config
    org = org_header(request)
    if config.auth_enabled and config.querier.multi_tenant_queries_enabled and "|" in org:
        return "|".join(tenant_of(True, t) for t in tenant_ids(org))
    return tenant_of(config.auth_enabled, org)


def tenant_of(auth_enabled: bool, org: str) -> str:
    """The tenant of a call (HTTP or gRPC): its `X-Scope-OrgID` when auth is on, Loki's `fake`
    otherwise."""
    if not auth_enabled:
        return DEFAULT_TENANT
    if not org:
        raise Unauthorized("no org id")
    problem = tenant_problem(org)
    if problem:
        raise BadRequest(problem)
    return org


MAX_TENANT_LENGTH = 150


def tenant_problem(org: str) -> str | None:
    """Why a tenant id is refused, in Loki's words (dskit's ValidTenantID), or None. Tenant ids
    name folders of the store: the rules keep them inside their tenant's tree."""
    bad = _UNSUPPORTED.search(org)
    if bad:
        return f"tenant ID '{org}' contains unsupported character '{bad.group()}'"
    if len(org.encode()) > MAX_TENANT_LENGTH:
        return f"tenant ID is too long: max {MAX_TENANT_LENGTH} characters"
    if org in (".", ".."):
        return "tenant ID is '.' or '..'"
    return None


async def params(request: Request) -> dict[str, str]:
    """Query-string and (for POST) form parameters, one value each."""
    values = dict(request.query_params)
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        values.update({k: str(v) for k, v in form.items()})
    return values


ServicesDep = Annotated[Services, Depends(services)]
TenantDep = Annotated[str, Depends(tenant)]
QueryTenantDep = Annotated[str, Depends(query_tenant)]   # reads that may span several tenants
ParamsDep = Annotated[dict[str, str], Depends(params)]
