"""The explorer with `auth_enabled`: a tenant named in the page, or one the gateway's login maps to
(real NGINX in front), in a real Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Server
from tests.gateway.gateway import Gateway
from tests.server.pushing import push
from tests.ui.conftest import screenshot

USERS = {"alice": "alice-pw"}
TENANTS = {"alice": "team-a"}


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    srv = start_server(args=["-auth.enabled=true"])
    now = time.time_ns()
    for tenant in ("team-a", "team-b"):
        with srv.client(tenant) as c:
            push(c, {"app": "shop"}, [[now - i * 10**9, f"{tenant} line {i}"] for i in range(3)])
    return srv


@pytest.fixture
def gateway(tmp_path: Path, server: Server) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "gw", server.url, USERS, TENANTS).start()
    yield gw
    gw.stop()


def run(page: Page, query: str) -> None:
    page.locator("#query").fill(query)
    page.locator("#query").press("Escape")
    page.locator("#run").click()


def test_the_tenant_named_in_the_page_is_the_one_read(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    run(page, '{app="shop"}')
    expect(page.locator("#error-text")).to_have_text("no org id")     # Loki's 401 without a tenant
    page.locator("#tenant").fill("team-b")
    page.locator("#tenant").press("Tab")
    run(page, '{app="shop"}')
    expect(page.locator("#log-lines .line")).to_have_text(["team-b line 0", "team-b line 1", "team-b line 2"])
    page.locator("#query").fill("{ap")                     # completion asks as the tenant too
    page.locator("#query").press("Control+Space")
    expect(page.locator("#completions li")).to_have_text(["app"])
    page.locator("#live").click()      # a browser sends no headers on a WebSocket: the page says so
    expect(page.locator("#error-text")).to_contain_text("cannot send X-Scope-OrgID on a WebSocket")
    page.reload()                                             # the tenant is remembered
    expect(page.locator("#tenant")).to_have_value("team-b")
    page.locator("#tenant").fill("bad/tenant")
    page.locator("#tenant").press("Tab")
    run(page, '{app="shop"}')
    expect(page.locator("#error-text")).to_have_text("tenant ID 'bad/tenant' contains unsupported character '/'")


def test_through_the_gateway_the_login_names_the_tenant(browser: Browser, gateway: Gateway) -> None:
    context = browser.new_context(http_credentials={"username": "alice", "password": "alice-pw"},
                                  viewport={"width": 1280, "height": 700})
    try:
        page = context.new_page()
        page.goto(gateway.url + "/")
        run(page, '{app="shop"}')
        expect(page.locator("#log-lines .line")).to_have_text(["team-a line 0", "team-a line 1", "team-a line 2"])
        page.locator("#live").click()                         # the WebSocket passes the login too
        expect(page.locator("#live-status")).to_have_text(re.compile("Following"))
        with httpx_as(gateway, "alice", "alice-pw") as alice:
            push(alice, {"app": "shop"}, [[time.time_ns(), "team-a live line"]])
        expect(page.locator("#log-lines .line").first).to_have_text("team-a live line")
        screenshot(page, "through-the-gateway")
    finally:
        context.close()


def httpx_as(gateway: Gateway, user: str, password: str) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, auth=(user, password), timeout=30)
