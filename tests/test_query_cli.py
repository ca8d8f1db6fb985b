"""`lokiarrow query` from the shell: against a running server and against its files, in each
output, errors on stderr with exit 1, and `--tail` following new entries."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lokiarrow.config import Ingester
from lokiarrow.store.fs import Root
from lokiarrow.store.tenant import TenantStore
from tests.conftest import PERMISSIVE, ROOT, Server
from tests.server.pushing import BASE_NS, push
from tests.store.helpers import entries

SPAN = ["--from", str(BASE_NS - 10**9), "--to", str(BASE_NS + 3600 * 10**9)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("cli") / "data", PERMISSIVE, []).start()
    with server.client() as http:
        push(http, {"app": "web"}, [[BASE_NS + i * 10**9, f"line {i}"] for i in range(5)])
        assert http.post("/flush").status_code == 204
    yield server
    server.kill()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lokiarrow.cli", "query", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("where", ["addr", "path"])
def test_outputs_from_a_server_and_from_its_files(served: Server, where: str) -> None:
    place = ["--addr", served.url] if where == "addr" else ["--path", str(served.data_dir)]
    raw = _cli('{app="web"}', *place, *SPAN, "--limit", "3", "-o", "raw")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout.splitlines() == ["line 4", "line 3", "line 2"]
    forward = _cli('{app="web"}', *place, *SPAN, "--limit", "2", "--forward", "-o", "jsonl")
    items = [json.loads(line) for line in forward.stdout.splitlines()]
    assert [i["line"] for i in items] == ["line 0", "line 1"]
    assert items[0]["labels"]["app"] == "web" and items[0]["timestamp"] == "2026-01-19T22:00:00Z"
    table = _cli('{app="web"} |= "line 1"', *place, *SPAN, "-o", "table")
    assert table.stdout == '2026-01-19T22:00:01Z {app="web", detected_level="unknown", service_name="web"} line 1\n'
    assert "\033[" not in table.stdout                               # no colours off a terminal
    coloured = _cli('{app="web"} |= "line 1"', *place, *SPAN, "--color", "always")
    assert "\033[34m{app=" in coloured.stdout
    metric = _cli('sum(count_over_time({app="web"}[1h]))', *place, "--from", str(BASE_NS + 1800 * 10**9),
                  "--to", str(BASE_NS + 1800 * 10**9), "--step", "1m", "-o", "raw")
    assert metric.stdout.strip() == "{} 5"


def test_errors_go_to_stderr(served: Server) -> None:
    bad = _cli('{app="web"', "--addr", served.url)
    assert bad.returncode == 1 and bad.stdout == "" and "parse error" in bad.stderr
    nothing = _cli('{app="web"}', "--addr", "http://127.0.0.1:9", "--tail")
    assert nothing.returncode == 1 and "cannot tail" in nothing.stderr


def test_tail_follows_new_entries(served: Server) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "query", '{app="live"}', "--addr", served.url,
                             "--tail", "-o", "raw"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        with served.client() as http:
            push(http, {"app": "live"}, [[time.time_ns(), "just now"]])
        assert proc.stdout is not None and proc.stdout.readline().strip() == "just now"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_long_local_scan_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal (a pseudo-terminal here), DuckDB's progress bar draws while the files are
    scanned (`--progress-after 0s`: at once), then the answer; piped output never gets it (above)."""
    store = TenantStore(Root(str(tmp_path)), "fake", Ingester())
    store.push(entries([({"app": "a", "n": str(i % 50)}, BASE_NS + i * 10**6, f"line {i} abcabcabc xyz {i * 7}")
                        for i in range(200_000)]))
    store.flush()
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lokiarrow.cli", "query",
                             'sum(count_over_time({app="a"} |~ "(a|b)+c.*9" [1h]))', "--path", str(tmp_path),
                             *SPAN, "--step", "1h", "--progress-after", "0s", "-o", "raw"],
                            cwd=ROOT, stdout=secondary, stderr=subprocess.PIPE)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:   # the other end closed
            break
        if not chunk:
            break
        shown += chunk
    assert proc.wait(60) == 0
    assert b"100%" in shown and b"elapsed" in shown
    assert shown.rstrip().endswith(b"\x1b[34m{}\x1b[0m " + str(sum(1 for i in range(200_000) if _hit(i))).encode())


def _hit(i: int) -> bool:
    return re.search(r"(a|b)+c.*9", f"line {i} abcabcabc xyz {i * 7}") is not None
