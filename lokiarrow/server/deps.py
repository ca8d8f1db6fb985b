"""What every route needs, as FastAPI dependencies: the services, the tenant, the parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from lokiarrow.config import Config
from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.exec.engine import Querier
from lokiarrow.server.telemetry import Telemetry
from lokiarrow.store.store import Store

DEFAULT_TENANT = "fake"
_TENANT = re.compile(r"^[a-zA-Z0-9!\-_.*'()]{1,150}$")


class Unauthorized(LokiError):
    status = 401


@dataclass
class Services:
    config: Config
    store: Store
    querier: Querier
    telemetry: Telemetry


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def tenant(request: Request) -> str:
    """The tenant of a request: `X-Scope-OrgID` when auth is on, Loki's `fake` otherwise."""
    svc = services(request)
    if not svc.config.auth_enabled:
        return DEFAULT_TENANT
    org = request.headers.get("X-Scope-OrgID", "")
    if not org:
        raise Unauthorized("no org id")
    if not _TENANT.match(org) or org in (".", ".."):
        raise BadRequest(f"tenant ID '{org}' is invalid")
    return org


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
ParamsDep = Annotated[dict[str, str], Depends(params)]
