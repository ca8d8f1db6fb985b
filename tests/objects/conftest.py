"""A real S3 API on 127.0.0.1: moto's server (PyPI, in .venv-s3: see tests/objects/s3-server.txt),
started once for the session, with a `logs` bucket."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow.fs as pafs
import pytest

from tests.conftest import ROOT, free_port

MOTO = ROOT / ".venv-s3" / "bin" / "moto_server"
BUCKET = "logs"
REGION = "us-west-2"         # moto creates buckets in any region but us-east-1 only without a location
KEY, SECRET = "testing-key", "testing-secret"


@dataclass
class S3:
    endpoint: str

    def prefix(self) -> str:
        """A fresh store root in the bucket."""
        return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"

    def client(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(access_key=KEY, secret_key=SECRET, endpoint_override=self.endpoint,
                                 region=REGION, allow_bucket_creation=True)

    def create_bucket(self) -> None:
        self.client().create_dir(BUCKET)

    def keys(self, root: str) -> list[str]:
        """Every object under a store root, relative to it."""
        base = root.removeprefix("s3://")
        found = self.client().get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(f.path[len(base) + 1:] for f in found if f.type == pafs.FileType.File)

    def config(self, root: str, extra: str = "") -> str:
        """The YAML that points a server at a store root in the bucket."""
        return (f"common: {{path_prefix: {root}}}\nstorage_config:\n  aws: {{endpoint: {self.endpoint}, "
                f"region: {REGION}, access_key_id: {KEY}, secret_access_key: {SECRET}}}\n{extra}")


def cache_downloads(url: str) -> float:
    """How many files a server has copied from the bucket to its disk cache (its /metrics)."""
    text = httpx.get(f"{url}/metrics").text
    return float(next(x for x in text.splitlines() if x.startswith("lokiarrow_object_cache_downloads_total ")).split()[1])


def start_s3_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    """moto's S3 server on a port (it keeps objects in memory: a restart starts empty), answering."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the S3 server did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    port = free_port()
    proc = start_s3_server(port, tmp_path_factory.mktemp("s3") / "moto.log")
    server = S3(f"http://127.0.0.1:{port}")
    server.create_bucket()
    yield server
    proc.terminate()
    proc.wait(10)
