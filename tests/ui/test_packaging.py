"""The explorer's files ship inside the package: every file under lokiarrow/web is named by the
package data that a wheel takes, and served."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch

from lokiarrow.server.routes_ui import assets
from tests.conftest import ROOT

WEB = ROOT / "lokiarrow" / "web"


def test_every_web_file_is_package_data_and_served() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lokiarrow"]
    on_disk = sorted(str(p.relative_to(WEB)) for p in WEB.rglob("*") if p.is_file())
    assert on_disk, "no files found under lokiarrow/web"
    unshipped = [f for f in on_disk if not any(fnmatch(f"web/{f}", pattern) for pattern in patterns)]
    assert not unshipped, f"add them to [tool.setuptools.package-data]: {unshipped}"
    assert sorted(assets().files) == on_disk
