"""The explorer page at `/`, in a real Chromium against a real server with data in it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PERMISSIVE, Server
from tests.server.pushing import push
from tests.ui.conftest import screenshot

S = 10**9
LEVELS = {0: "error", 3: "warn"}   # web line i: by i % 6, else info
Entry = tuple[int, str, dict[str, str]]


@dataclass(frozen=True)
class Data:
    """The lines pushed, timed back from when the module's server starts: the page reads relative
    ranges (the last hour) against the browser's clock, and the suite may reach this module late."""

    web: list[Entry]
    db: list[Entry]

    @classmethod
    def at(cls, now: int) -> Data:
        web = [(now - (60 - i) * 45 * S, f"level={LEVELS.get(i % 6, 'info')} msg=\"request {i}\" path=/api/{i % 4} "
                f"status={500 if i % 6 == 0 else 200}", {"trace_id": f"t{i:03d}"}) for i in range(60)]
        db = [(now - (20 - i) * 120 * S - 17 * S, f'{{"level":"warn","msg":"slow query {i}","ms":{1000 + i}}}', {})
              for i in range(20)]
        return cls(web, db)


ODD_TEAM = 'x.y"z'   # a value that needs quoting, and escaping in a regex


@pytest.fixture(scope="module")
def data() -> Data:
    return Data.at(time.time_ns())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data: Data) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("explorer") / "data"
    folder.mkdir()
    srv = Server(folder, PERMISSIVE, []).start()
    with srv.client() as c:
        push(c, {"app": "web", "env": "prod"}, [[ts, line, meta] for ts, line, meta in data.web])
        push(c, {"app": "db", "env": "prod"}, [[ts, line] for ts, line, _ in data.db])
        push(c, {"kind": "odd", "team": ODD_TEAM}, [[time.time_ns() - 60 * S, "a line of an oddly named team"]])
    yield srv
    srv.kill()


def open_page(page: Page, server: Server, **params: str) -> Page:
    page.goto(f"{server.url}/" + (f"?{httpx.QueryParams(params)}" if params else ""))
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page


def run(page: Page, query: str) -> None:
    box = page.locator("#query")
    box.fill(query)
    box.press("Escape")
    page.locator("#run").click()


def shown_lines(page: Page) -> list[str]:
    return page.locator("#log-lines .line").all_inner_texts()


def shown_times(page: Page) -> list[int]:
    return [int(ts) for ts in page.locator("#log-lines li.entry").evaluate_all("els => els.map(e => e.dataset.ts)")]


def newest_first(entries: list[Entry]) -> list[str]:
    return [line for _, line, _ in sorted(entries, key=lambda e: -e[0])]


def test_page_and_assets_are_served_from_the_package_with_caching_headers(server: Server) -> None:
    with server.client() as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert c.get("/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
        assets = re.findall(r'(?:src|href)="(ui/[0-9a-f]{16}/[^"]+)"', page.text)
        assert {a.rsplit("/", 1)[-1] for a in assets} == {"icon.svg", "explorer.css", "main.js"}
        for path in assets:
            asset = c.get("/" + path)
            assert asset.status_code == 200, path
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        main = next(a for a in assets if a.endswith("main.js"))
        assert c.get("/" + main).headers["content-type"].startswith("text/javascript")
        stale = c.get("/ui/0000000000000000/js/main.js")    # a page from before an upgrade
        assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
        for missing in ("/ui/0000000000000000/js/none.js", "/ui/0000000000000000/index.html",
                        "/ui/0000000000000000/../routes_ui.py", "/ui/0000000000000000/%2e%2e/cli.py"):
            assert c.get(missing, follow_redirects=True).status_code == 404, missing


def test_completion_then_lines_newest_first_and_the_volume_by_level(page: Page, server: Server, data: Data) -> None:
    open_page(page, server)
    box = page.locator("#query")
    box.click()
    box.type("{")
    names = page.locator("#completions li")
    expect(names.filter(has_text=re.compile("^app$"))).to_be_visible()
    assert {"app", "env", "service_name"} <= set(names.all_inner_texts())
    box.type("ap")
    expect(names).to_have_text(["app"])
    box.press("Enter")                                   # takes the name; its values follow
    expect(box).to_have_value("{app=")
    expect(names).to_have_text(["db", "web"])
    names.filter(has_text="web").click()
    expect(box).to_have_value('{app="web"')
    box.type("}")
    box.press("Enter")                                    # runs the query
    expect(page.locator("#log-lines li.entry")).to_have_count(60)
    assert shown_lines(page) == newest_first(data.web)
    assert shown_times(page) == sorted((ts for ts, _, _ in data.web), reverse=True)
    expect(page.locator("#common-labels")).to_have_text('{app="web", env="prod", service_name="web"}')
    expect(page.locator("#log-lines .labels")).to_have_count(0)      # one stream: said once, above
    legend = page.locator("#volume-legend li")
    expect(legend).to_have_count(3)
    counts = dict(legend.evaluate_all("els => els.map(e => [e.dataset.level, Number(e.dataset.count)])"))
    assert counts == {"error": 10, "info": 40, "warn": 10}
    bars = page.locator("#volume-chart rect").evaluate_all(
        "els => els.map(e => [e.dataset.level, Number(e.dataset.count)])")
    assert sum(n for _, n in bars) == 60
    assert {level for level, _ in bars} == {"error", "info", "warn"}
    levels = page.locator("#log-lines li.entry").evaluate_all("els => els.map(e => e.dataset.level)")
    assert levels[:6] == ["info", "info", "warn", "info", "info", "error"]   # lines 59..54
    screenshot(page, "lines-and-volume")
    # a bar zooms into its bucket: as many lines as the bucket's bars count
    error_bar = page.locator('#volume-chart rect[data-level="error"]').first
    bucket = error_bar.get_attribute("data-time")
    in_bucket = sum(n for _, n in page.locator(f'#volume-chart rect[data-time="{bucket}"]').evaluate_all(
        "els => els.map(e => [e.dataset.level, Number(e.dataset.count)])"))
    error_bar.click()
    expect(page.locator("#range")).to_have_value("custom")
    expect(page.locator("#log-lines li.entry")).to_have_count(in_bucket)
    assert "error" in page.locator("#log-lines li.entry").evaluate_all("els => els.map(e => e.dataset.level)")


def test_completed_values_are_quoted_and_escaped_for_regex_matchers(page: Page, server: Server) -> None:
    open_page(page, server)
    box = page.locator("#query")
    box.click()
    box.type('{team=~"x.')                       # a value begun inside its quotes
    options = page.locator("#completions li")
    expect(options).to_have_text([ODD_TEAM])
    box.press("ArrowDown")                       # one option: the keys wrap around to it
    box.press("Tab")
    expect(box).to_have_value('{team=~"x\\\\.y\\"z"')
    box.type("}")
    box.press("Enter")
    expect(page.locator("#log-lines .line")).to_have_text(["a line of an oddly named team"])
    box.fill("{team!=")
    box.press("Control+Space")
    options.first.click()
    expect(box).to_have_value('{team!="x.y\\"z"')


def test_a_line_opens_to_its_labels_metadata_and_parsed_fields(page: Page, server: Server, data: Data) -> None:
    open_page(page, server, query='{app="web"} | logfmt', **{"from": "now-1h", "to": "now"})
    first = page.locator("#log-lines li.entry").first
    expect(first.locator(".line")).to_have_text(data.web[-1][1])
    expect(first.locator(".details")).to_have_count(0)
    first.locator(".summary").click()
    details = first.locator(".details")
    expect(details).to_be_visible()
    table = dict(zip(details.locator(".structured-metadata th").all_inner_texts(),
                     details.locator(".structured-metadata td").all_inner_texts(), strict=True))
    assert table["trace_id"] == "t059" and table["detected_level"] == "info"
    parsed = dict(zip(details.locator(".parsed-fields th").all_inner_texts(),
                      details.locator(".parsed-fields td").all_inner_texts(), strict=True))
    assert parsed == {"level": "info", "msg": "request 59", "path": "/api/3", "status": "200"}
    stream = dict(zip(details.locator(".stream-labels th").all_inner_texts(),
                      details.locator(".stream-labels td").all_inner_texts(), strict=True))
    assert stream["app"] == "web" and stream["env"] == "prod"
    screenshot(page, "line-details")
    first.locator(".summary").click()
    expect(first.locator(".details")).to_have_count(0)


def test_load_more_continues_where_the_lines_end(page: Page, server: Server, data: Data) -> None:
    open_page(page, server, query='{env="prod"} # the comment runs to the end of the line', limit="25")
    entries = page.locator("#log-lines li.entry")
    expect(entries).to_have_count(25)
    legend = page.locator("#volume-legend li")
    expect(legend).to_have_count(3)
    assert dict(legend.evaluate_all("els => els.map(e => [e.dataset.level, Number(e.dataset.count)])")) == {
        "error": 10, "info": 40, "warn": 30}
    more = page.locator("#load-more")
    counts = [25]
    while more.is_visible() and len(counts) < 10:
        more.click()
        expect(entries).not_to_have_count(counts[-1])
        counts.append(entries.count())
    expect(more).to_be_hidden()
    # each page repeats the line it starts at (`end` is exclusive, so it asks one nanosecond past it)
    assert counts == [25, 49, 73, 80]
    assert shown_lines(page) == newest_first(data.web + data.db)
    labels = page.locator("#log-lines li.entry .labels").all_inner_texts()
    assert set(labels) == {'{app="web", service_name="web"}', '{app="db", service_name="db"}'}
    expect(page.locator("#common-labels")).to_have_text('{env="prod"}')


def test_a_metric_query_draws_a_graph(page: Page, server: Server) -> None:
    open_page(page, server)
    run(page, 'sum by (app) (count_over_time({env="prod"}[10m]))')
    paths = page.locator("#graph-chart path")
    expect(paths).to_have_count(2)
    assert sorted(paths.evaluate_all("els => els.map(e => e.dataset.series)")) == ['{app="db"}', '{app="web"}']
    assert all(int(n) > 10 for n in paths.evaluate_all("els => els.map(e => e.dataset.points)"))
    expect(page.locator("#graph-legend li")).to_have_count(2)
    expect(page.locator("#logs")).to_be_hidden()
    expect(page.locator("#volume")).to_be_hidden()
    screenshot(page, "metric-graph")


@pytest.mark.parametrize("query", ['{app="web"} |= ', '{app=}', 'sum(rate({app="web"}[5m])\n  by (app'])
def test_a_parse_error_is_shown_at_its_position(page: Page, server: Server, query: str) -> None:
    with server.client() as c:
        expected = c.get("/loki/api/v1/query_range", params={"query": query}).text.strip()
    line, col = map(int, re.search(r"line (\d+), col (\d+)", expected).groups())   # type: ignore[union-attr]
    open_page(page, server)
    run(page, query)
    expect(page.locator("#error-text")).to_have_text(expected)
    source_line = query.split("\n")[line - 1]
    expect(page.locator("#error-context")).to_have_text(source_line[:col - 1] + (source_line[col - 1:] or " "))
    expect(page.locator("mark.error-at")).to_have_text(source_line[col - 1:col] or " ")
    expect(page.locator("#query")).to_have_class(re.compile("invalid"))
    expect(page.locator("#logs")).to_be_hidden()
    if query == "{app=}":
        screenshot(page, "parse-error")


def test_links_carry_the_query_and_range(page: Page, server: Server, data: Data) -> None:
    open_page(page, server)
    page.locator("#range").select_option("now-15m")
    run(page, '{app="db"}')
    expect(page.locator("#log-lines li.entry")).to_have_count(7)   # 120 s apart, the newest 137 s ago
    params = parse_qs(urlparse(page.url).query)
    assert params == {"query": ['{app="db"}'], "from": ["now-15m"], "to": ["now"]}
    other = page.context.new_page()
    other.goto(page.url)
    expect(other.locator("#query")).to_have_value('{app="db"}')
    expect(other.locator("#range")).to_have_value("now-15m")
    expect(other.locator("#log-lines li.entry")).to_have_count(7)
    # an absolute range: the db lines between the 5th and the 10th, both included
    start_ms, end_ms = data.db[5][0] // 10**6, data.db[10][0] // 10**6 + 1
    open_page(page, server, query='{app="db"}', **{"from": str(start_ms), "to": str(end_ms)})
    expect(page.locator("#range")).to_have_value("custom")
    expect(page.locator("#log-lines li.entry")).to_have_count(6)
    assert shown_lines(page) == newest_first(data.db[5:11])


def test_an_absolute_range_typed_in_and_the_back_button(page: Page, server: Server, data: Data) -> None:
    open_page(page, server)
    page.locator("#query").fill('{app="db"}')
    page.locator("#from").fill(utc(data.db[5][0] // S))
    page.locator("#to").fill(utc(data.db[10][0] // S + 1))
    page.locator("#to").press("Enter")
    expect(page.locator("#log-lines li.entry")).to_have_count(6)
    expect(page.locator("#range")).to_have_value("custom")
    run(page, '{app="web"} |= "status=500"')
    start, end = data.db[5][0] // S * S, (data.db[10][0] // S + 1) * S
    errors = [line for ts, line, _ in data.web if start <= ts < end and "status=500" in line]
    assert errors
    expect(page.locator("#log-lines .line")).to_have_text(errors[::-1])
    page.go_back()
    expect(page.locator("#query")).to_have_value('{app="db"}')
    expect(page.locator("#log-lines li.entry")).to_have_count(6)


def utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def test_a_bad_time_range_is_refused_in_place(page: Page, server: Server) -> None:
    open_page(page, server, query='{app="db"}', **{"from": "yesterday"})
    expect(page.locator("#error-text")).to_contain_text('cannot read the time "yesterday"')
    open_page(page, server, query='{app="db"}', **{"from": "now", "to": "now-1h"})
    expect(page.locator("#error-text")).to_contain_text("the range must start before it ends")


def test_live_tail_shows_new_lines_as_they_arrive(page: Page, server: Server) -> None:
    open_page(page, server)
    page.locator("#query").fill('{app="live"}')
    page.locator("#live").click()
    expect(page.locator("#live-status")).to_have_text(re.compile("Following"))
    expect(page.locator("#live")).to_have_attribute("aria-pressed", "true")
    with server.client() as c:
        for i in range(3):
            push(c, {"app": "live"}, [[time.time_ns(), f"level=warn live line {i}"]])
            expect(page.locator("#log-lines li.entry")).to_have_count(i + 1)
    assert shown_lines(page) == ["level=warn live line 2", "level=warn live line 1", "level=warn live line 0"]
    assert page.locator("#log-lines li.entry").first.get_attribute("data-level") == "warn"
    screenshot(page, "live-tail")
    page.locator("#live").click()
    expect(page.locator("#live-status")).to_have_text("Live tail stopped")
    expect(page.locator("#live")).to_have_attribute("aria-pressed", "false")
    with server.client() as c:
        push(c, {"app": "live"}, [[time.time_ns(), "after the stop"]])
    page.wait_for_timeout(1500)
    expect(page.locator("#log-lines li.entry")).to_have_count(3)


def test_a_tail_the_server_refuses_is_reported(page: Page, server: Server) -> None:
    open_page(page, server)
    page.locator("#query").fill('sum(count_over_time({app="live"}[1m]))')
    page.locator("#live").click()
    expect(page.locator("#error-text")).to_contain_text("Live tail ended")
    expect(page.locator("#live")).to_have_attribute("aria-pressed", "false")


def test_the_page_talks_to_its_server_only(page: Page, server: Server) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    open_page(page, server, query='{app="web"}')
    expect(page.locator("#log-lines li.entry")).to_have_count(60)
    page.locator("#live").click()
    expect(page.locator("#live-status")).to_have_text(re.compile("Following"))
    origin = urlparse(server.url).netloc
    assert requests and all(urlparse(u).netloc == origin for u in requests), requests
    assert any(u.startswith(f"ws://{origin}/loki/api/v1/tail?") for u in requests)
