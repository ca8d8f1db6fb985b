"""The built-in log explorer: `/` and its static files, shipped inside the package (`lokiarrow/web`).

The files are read once and served from memory, so no request names a path on disk. Assets live
under `ui/<digest>/`, the digest of every file: their URLs change with their content, so browsers
may keep them for a year (`immutable`); the page itself names the current digest and is revalidated
on every load (`no-cache` with an ETag). An asset asked for under an older digest is still served,
uncached, so a page loaded before an upgrade keeps working.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import Response

from lokiarrow.errors import NotFound

router = APIRouter()
PAGE = "index.html"
ASSET_PREFIX = "ui"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8"}
YEAR_S = 365 * 24 * 3600
# the page talks to its own origin only (fetch and the tail's WebSocket); nothing else is loaded
SECURITY = {"Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                                       "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class Assets:
    digest: str
    files: dict[str, bytes]   # path under web/ -> content


@cache
def assets() -> Assets:
    root = files("lokiarrow") / "web"
    found: dict[str, bytes] = {}
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                pending.append((entry, name + "/"))
            elif entry.name.endswith(tuple(TYPES)):
                found[name] = entry.read_bytes()
    digest = hashlib.sha256()
    for name in sorted(found):
        digest.update(name.encode() + b"\0" + found[name])
    return Assets(digest.hexdigest()[:16], found)


def _type(name: str) -> str:
    return TYPES["." + name.rsplit(".", 1)[-1]]


@router.get("/")
async def page(request: Request) -> Response:
    current = assets()
    etag = f'"{current.digest}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", **SECURITY}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    body = current.files[PAGE].replace(b"{{ASSETS}}", f"{ASSET_PREFIX}/{current.digest}".encode())
    return Response(body, media_type=_type(PAGE), headers=headers)


@router.get(f"/{ASSET_PREFIX}/{{digest}}/{{name:path}}")
async def asset(digest: str, name: str) -> Response:
    current = assets()
    body = current.files.get(name)
    if body is None or name == PAGE:
        raise NotFound("404 page not found")
    cache_control = f"public, max-age={YEAR_S}, immutable" if digest == current.digest else "no-cache"
    return Response(body, media_type=_type(name), headers={"Cache-Control": cache_control, **SECURITY})
