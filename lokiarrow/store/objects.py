"""The filesystem behind a store root URL: a local folder, S3 (or any S3 API), or any fsspec URL.

S3 goes through Arrow's own S3 client (pyarrow.fs.S3FileSystem, wrapped for fsspec), so no
further package is needed. Settings come from `storage_config.aws` (Loki's names) and, where a
setting is empty, from the environment as AWS tools read it: AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL, AWS_REGION or AWS_DEFAULT_REGION, and the usual credential chain
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles).

With an endpoint other than AWS, request checksums are sent only where the API requires them
(AWS_REQUEST_CHECKSUM_CALCULATION=when_required unless set): many S3-compatible servers store the
newer checksum-trailer framing as if it were the object's bytes.
"""

from __future__ import annotations

import os
from typing import Any

import fsspec
import pyarrow.fs as pafs
from fsspec.implementations.arrow import ArrowFSWrapper

from lokiarrow.config import Storage
from lokiarrow.errors import LokiError


def filesystem(url: str, storage: Storage) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem of a root URL and the root's path on it."""
    if url.startswith(("s3://", "s3a://")):
        path = url.split("://", 1)[1].strip("/")
        if not path:
            raise LokiError(f"cannot open the store at {url}: no bucket named (s3://bucket/prefix)")
        return ArrowFSWrapper(s3(storage)), path
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as exc:
        raise LokiError(f"cannot open the store at {url}: {exc}") from None


def _endpoint(storage: Storage) -> str:
    return storage.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL", "")


def _region(storage: Storage) -> str:
    return storage.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3(storage: Storage) -> pafs.S3FileSystem:
    """An S3 client for the settings, the environment filling what they leave empty."""
    endpoint = _endpoint(storage)
    options: dict[str, Any] = {"region": _region(storage)}
    if endpoint:
        os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
        scheme, _, address = endpoint.rpartition("://")
        options["endpoint_override"] = address.rstrip("/")
        options["scheme"] = scheme or ("http" if storage.insecure else "https")
    if storage.access_key_id or storage.secret_access_key:
        options["access_key"] = storage.access_key_id
        options["secret_key"] = storage.secret_access_key
    return pafs.S3FileSystem(**options)


def polars_options(storage: Storage) -> dict[str, str]:
    """The same settings as Polars' `storage_options` (object_store's names), for reading the
    files with `pl.scan_parquet("s3://…")`."""
    options = {"aws_region": _region(storage)}
    endpoint = _endpoint(storage)
    if endpoint:
        if "://" not in endpoint:
            endpoint = f"{'http' if storage.insecure else 'https'}://{endpoint}"
        options["aws_endpoint_url"] = endpoint
        options["aws_allow_http"] = str(endpoint.startswith("http://")).lower()
    if storage.access_key_id:
        options["aws_access_key_id"] = storage.access_key_id
        options["aws_secret_access_key"] = storage.secret_access_key
    return options
