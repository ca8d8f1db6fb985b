"""A real NGINX running deploy/gateway/nginx.conf.template, rendered for the test's ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from string import Template

import httpx

from tests.conftest import ROOT, free_port

TEMPLATE = ROOT / "deploy" / "gateway" / "nginx.conf.template"


def render(values: dict[str, str]) -> str:
    """The template with our ${GATEWAY_*} values; NGINX's own $variables stay as they are."""
    text = Template(TEMPLATE.read_text()).safe_substitute(values)
    assert "${GATEWAY_" not in text, "a template variable has no value"
    return text


def servers(addresses: Sequence[str]) -> str:
    """A pool's `server HOST:PORT;` lines, from addresses or URLs (`http://HOST:PORT`)."""
    return " ".join(f"server {address.split('://')[-1]};" for address in addresses)


class Gateway:
    """`upstream` (a server's URL) is every HTTP pool unless `writers`, `readers` or `backend` name
    a pool's own servers; `grpc_upstream` (HOST:PORT) every gRPC pool unless `grpc_writers` or
    `grpc_readers` do."""

    def __init__(self, folder: Path, upstream: str, users: dict[str, str], tenants: dict[str, str],
                 tenant_rate: str = "1000r/s", tenant_burst: int = 1000, client_rate: str = "1000r/s",
                 client_burst: int = 1000, grpc_upstream: str = "127.0.0.1:9",
                 writers: Sequence[str] = (), readers: Sequence[str] = (), backend: Sequence[str] = (),
                 grpc_writers: Sequence[str] = (), grpc_readers: Sequence[str] = ()) -> None:
        self.folder = folder
        run = folder / "run"
        run.mkdir(parents=True)
        htpasswd = folder / "htpasswd"
        for i, (user, password) in enumerate(users.items()):
            subprocess.run(["htpasswd", "-b" + ("c" if i == 0 else ""), "-B", str(htpasswd), user, password],
                           check=True, capture_output=True)
        tenant_map = folder / "tenants.map"
        tenant_map.write_text("".join(f"{user} {tenant};\n" for user, tenant in tenants.items()))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{free_port()}"   # the gRPC listener (`grpc_upstream` behind it)
        self.conf = folder / "nginx.conf"
        self.conf.write_text(render({
            "GATEWAY_RUN_DIR": str(run), "GATEWAY_TENANTS": str(tenant_map), "GATEWAY_HTPASSWD": str(htpasswd),
            "GATEWAY_PORT": str(self.port), "GATEWAY_INNER_PORT": str(free_port()),
            "GATEWAY_WRITE_SERVERS": servers(writers or [upstream]),
            "GATEWAY_READ_SERVERS": servers(readers or [upstream]),
            "GATEWAY_BACKEND_SERVERS": servers(backend or [upstream]), "GATEWAY_MAX_BODY": "16m",
            "GATEWAY_CLIENT_RATE": client_rate, "GATEWAY_CLIENT_BURST": str(client_burst),
            "GATEWAY_TENANT_RATE": tenant_rate, "GATEWAY_TENANT_BURST": str(tenant_burst),
            "GATEWAY_GRPC_PORT": self.grpc_target.rsplit(":", 1)[1], "GATEWAY_GRPC_INNER_PORT": str(free_port()),
            "GATEWAY_GRPC_WRITE_SERVERS": servers(grpc_writers or [grpc_upstream]),
            "GATEWAY_GRPC_READ_SERVERS": servers(grpc_readers or [grpc_upstream])}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        # as root, NGINX's workers would run as nobody, who cannot read the test's private tmp dir
        directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        args = [nginx, "-p", str(self.folder), "-c", str(self.conf), "-g", directives]
        subprocess.run([*args, "-t", "-q"], check=True, capture_output=True)
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/ready", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
