"""Settings, named as Loki names them, read from Loki's YAML sections and Loki's CLI flags.

Only the settings lokiarrow acts on are modelled; other sections of a Loki config file are
accepted and ignored so an existing file can be pointed at lokiarrow unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml

from lokiarrow.errors import BadRequest
from lokiarrow.units import parse_bytes, parse_duration_ns

# words whose lines store/rollups.py counts per minute: severity words (those Loki's level detection
# looks for in lines), which users also search for most
DEFAULT_ROLLUP_WORDS = ("error", "Error", "ERROR", "warn", "fail", "exception", "timeout", "panic", "fatal")
DEFAULT_SERVICE_NAME_LABELS = (
    "service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
    "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name",
)


@dataclass(frozen=True)
class Limits:
    """Per-tenant limits (`limits_config`), Loki's defaults."""

    ingestion_rate_mb: float = 4.0
    ingestion_burst_size_mb: float = 6.0
    max_line_size: int = 256 * 1024          # bytes; 0 = unlimited
    max_line_size_truncate: bool = False
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    reject_old_samples: bool = True
    reject_old_samples_max_age: int = 7 * 86_400 * 10**9   # ns
    creation_grace_period: int = 10 * 60 * 10**9           # ns
    max_entries_limit_per_query: int = 5000
    max_query_series: int = 500
    max_query_length: int = 721 * 3600 * 10**9            # ns; 0 = unlimited
    allow_structured_metadata: bool = True
    max_structured_metadata_size: int = 64 * 1024
    max_structured_metadata_entries_count: int = 128
    discover_service_name: tuple[str, ...] = DEFAULT_SERVICE_NAME_LABELS
    discover_log_levels: bool = True
    max_global_streams_per_user: int = 5000
    retention_period: int = 0                              # ns; 0 = keep forever
    retention_stream: tuple[dict[str, Any], ...] = ()      # {selector, priority, period} rules
    max_concurrent_tail_requests: int = 10                 # live tails per tenant
    per_stream_rate_limit: int = 3 << 20                   # bytes/s per stream (Loki's 3MB)
    per_stream_rate_limit_burst: int = 15 << 20            # bytes (Loki's 15MB)
    query_timeout: int = 60 * 10**9                        # ns; 0 = no timeout
    split_queries_by_interval: int = 24 * 3600 * 10**9     # ns parts of a split query_range (frontend.downstream_url)
    max_query_bytes_read: int = 0                          # bytes a query may read (index estimate); 0 = unlimited


@dataclass(frozen=True)
class Ingester:
    """When the head is flushed to Parquet (`ingester`), and the WAL (`ingester.wal`)."""

    flush_max_rows: int = 100_000            # flush when the head holds this many entries
    flush_max_bytes: int = 32 * 1024 * 1024  # ... or this many bytes of lines (bounds memory)
    max_chunk_age: int = 5 * 60 * 10**9      # ... or when its oldest entry arrived this long ago (ns)
    flush_check_period: int = 10**9          # how often the age is checked (ns)
    wal_enabled: bool = True
    wal_dir: str = ""                        # `ingester.wal.dir`; empty: beside the data, or ./wal for object storage
    chunk_retain_period: int = 60 * 10**9    # ns a writer still names flushed files to readers (their index lags)
    row_group_size: int = 128 * 1024
    field_columns: int = 8                   # at most this many parsed-field columns per chunk file
    rollup_words: tuple[str, ...] = DEFAULT_ROLLUP_WORDS  # lines holding each are counted per minute


@dataclass(frozen=True)
class Compactor:
    """Loki's `compactor` section, as lokiarrow's compactor (store/compactor.py) reads it."""

    compaction_interval: int = 10 * 60 * 10**9       # ns between runs inside `serve`; 0: none
    retention_enabled: bool = False                  # retention, and the delete requests API
    delete_request_cancel_period: int = 24 * 3600 * 10**9   # ns a delete request can be cancelled
    retention_delete_delay: int = 2 * 3600 * 10**9   # ns before replaced or expired files are deleted
    target_chunk_bytes: int = 256 << 20              # lines per compacted chunk file (lokiarrow's own)


@dataclass(frozen=True)
class QuerierSettings:
    """Loki's `querier` section: what lokiarrow reads of it."""

    multi_tenant_queries_enabled: bool = False       # `X-Scope-OrgID: a|b` (exec/multitenant.py)
    # -target=read: the writers asked for their unflushed entries (http://host:port, or
    # dns+host:port for every address a name resolves to), and how often the index is re-read
    writers: tuple[str, ...] = ()
    index_refresh_interval: int = 10 * 10**9


@dataclass(frozen=True)
class Storage:
    """Where the store's files live beyond `common.path_prefix`: object storage credentials
    (`storage_config.aws`, Loki's names) and the local disk cache of files read from it."""

    endpoint: str = ""                 # S3 API address, e.g. http://127.0.0.1:9000 (empty: AWS)
    region: str = ""
    access_key_id: str = ""            # empty: the environment's (AWS_ACCESS_KEY_ID, ...)
    secret_access_key: str = ""
    insecure: bool = False             # http:// to an endpoint given without a scheme
    cache_location: str = "cache"      # local copies of chunk and index files read from object storage
    cache_size: int = 10 << 30         # bytes the cache may hold (least recently used files leave first)


@dataclass(frozen=True)
class Frontend:
    """Loki's `frontend` section: where split parts of a query go (empty: answered in-process)."""

    downstream_url: str = ""


@dataclass(frozen=True)
class Config:
    target: str = "all"
    auth_enabled: bool = False
    http_listen_address: str = "0.0.0.0"
    http_listen_port: int = 3100
    http_server_read_timeout: int = 30 * 10**9        # ns to read a whole request, headers and body; 0: none
    http_server_read_header_timeout: int = 0          # ns to read the headers; 0: the read timeout
    http_server_write_timeout: int = 30 * 10**9       # ns an answer may wait for its client to read it; 0: none
    grpc_listen_address: str = "0.0.0.0"
    grpc_listen_port: int = 9095              # 0: any free port
    path_prefix: str = "./data"
    limits: Limits = field(default_factory=Limits)
    ingester: Ingester = field(default_factory=Ingester)
    runtime_config_file: str | None = None   # per-tenant `overrides` (lokiarrow/overrides.py)
    runtime_config_period: int = 10 * 10**9  # ns: how often the file is looked at
    compactor: Compactor = field(default_factory=Compactor)
    querier: QuerierSettings = field(default_factory=QuerierSettings)
    storage: Storage = field(default_factory=Storage)
    frontend: Frontend = field(default_factory=Frontend)


_DURATION_FIELDS = {"reject_old_samples_max_age", "creation_grace_period", "max_query_length",
                    "retention_period", "max_chunk_age", "flush_check_period", "query_timeout",
                    "compaction_interval", "retention_delete_delay", "delete_request_cancel_period",
                    "split_queries_by_interval", "chunk_retain_period", "index_refresh_interval"}
_BYTES_FIELDS = {"max_line_size", "max_structured_metadata_size", "flush_max_bytes", "target_chunk_bytes",
                 "cache_size"}
_BYTE_SIZE_FIELDS = {"per_stream_rate_limit", "per_stream_rate_limit_burst", "max_query_bytes_read"}   # Loki's flagext.ByteSize
_BYTE_SIZE = re.compile(r"(\d+)\s*([a-z]*)")
_BYTE_SIZE_UNITS = {"": 0, "b": 0, "byte": 0, "k": 10, "kb": 10, "kilo": 10, "kilobyte": 10, "kilobytes": 10,
                    "m": 20, "mb": 20, "mega": 20, "megabyte": 20, "megabytes": 20,
                    "g": 30, "gb": 30, "giga": 30, "gigabyte": 30, "gigabytes": 30,
                    "t": 40, "tb": 40, "tera": 40, "terabyte": 40, "terabytes": 40,
                    "p": 50, "pb": 50, "peta": 50, "petabyte": 50, "petabytes": 50, "e": 60, "eb": 60}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def smallest_positive(values: Iterable[int]) -> int:
    """The smallest value above 0, or 0 (Loki's SmallestPositiveNonZeroDurationPerTenant: a query
    over several tenants is bounded by the strictest of them)."""
    return min((v for v in values if v > 0), default=0)


def parse_byte_size(text: str) -> int:
    """A size as Loki's flagext.ByteSize reads it: a whole number and a binary unit, any case
    (`3MB` is 3 MiB, `512KB`, `1000`); ValueError otherwise (Loki refuses `1.5MB` and `1MiB` too)."""
    m = _BYTE_SIZE.fullmatch(text.strip().lower())
    if m is None or m.group(2) not in _BYTE_SIZE_UNITS:
        raise ValueError(f'invalid byte size "{text}"')
    return int(m.group(1)) << _BYTE_SIZE_UNITS[m.group(2)]


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Turn a YAML value into the type of the field's default, reading durations and sizes."""
    if name in _DURATION_FIELDS and isinstance(value, str):
        return parse_duration_ns(value)
    if name in _DURATION_FIELDS and isinstance(value, int | float):
        return int(value * 10**9)
    if name in _BYTES_FIELDS and isinstance(value, str):
        return parse_bytes(value)
    if name in _BYTE_SIZE_FIELDS:
        return parse_byte_size(str(value))
    if isinstance(default, tuple):
        if value is not None and not isinstance(value, list):
            raise BadRequest(f"cannot parse config: {name} must be a list")
        return tuple(value or ())
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def apply_section(obj: Any, section: dict[str, Any] | None) -> Any:
    """`obj` (a settings dataclass) with the YAML section's known keys applied, read as its types."""
    if not section:
        return obj
    known = {f.name: getattr(obj, f.name) for f in fields(obj)}
    changes = {k: _coerce(k, v, known[k]) for k, v in section.items() if k in known}
    return replace(obj, **changes)


def _duration_setting(section: dict[str, Any], name: str, default: int) -> int:
    """A duration of a section read without a settings dataclass (`server`), in ns."""
    value = section.get(name)
    if value is None:
        return default
    return parse_duration_ns(value) if isinstance(value, str) else int(value * 10**9)


def expand_env(text: str) -> str:
    """Replace `${VAR}` and `${VAR:-default}` as Loki's `-config.expand-env` does."""
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), text)


def from_yaml(text: str, base: Config | None = None) -> Config:
    """Read a Loki-style YAML config; sections lokiarrow does not use are ignored."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise BadRequest(f"cannot parse config: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("cannot parse config: the top level must be a mapping")
    cfg = base or Config()
    server = doc.get("server") or {}
    common = doc.get("common") or {}
    ingester = dict(doc.get("ingester") or {})
    wal = ingester.pop("wal", None) or {}
    if "enabled" in wal:
        ingester["wal_enabled"] = wal["enabled"]
    if "dir" in wal:
        ingester["wal_dir"] = wal["dir"]
    storage = doc.get("storage_config") or {}
    aws = {**((common.get("storage") or {}).get("s3") or {}), **(storage.get("aws") or {})}
    runtime = doc.get("runtime_config") or {}
    period = runtime.get("period")
    return replace(
        cfg,
        runtime_config_file=str(runtime["file"]) if runtime.get("file") else cfg.runtime_config_file,
        runtime_config_period=(parse_duration_ns(str(period)) if period is not None else cfg.runtime_config_period),
        target=str(doc.get("target", cfg.target)),
        auth_enabled=bool(doc.get("auth_enabled", cfg.auth_enabled)),
        http_listen_address=str(server.get("http_listen_address", cfg.http_listen_address)),
        http_listen_port=int(server.get("http_listen_port", cfg.http_listen_port)),
        http_server_read_timeout=_duration_setting(server, "http_server_read_timeout", cfg.http_server_read_timeout),
        http_server_read_header_timeout=_duration_setting(server, "http_server_read_header_timeout",
                                                          cfg.http_server_read_header_timeout),
        http_server_write_timeout=_duration_setting(server, "http_server_write_timeout", cfg.http_server_write_timeout),
        grpc_listen_address=str(server.get("grpc_listen_address", cfg.grpc_listen_address)),
        grpc_listen_port=int(server.get("grpc_listen_port", cfg.grpc_listen_port)),
        path_prefix=str(common.get("path_prefix", cfg.path_prefix)),
        limits=apply_section(cfg.limits, doc.get("limits_config")),
        ingester=apply_section(cfg.ingester, ingester),
        compactor=apply_section(cfg.compactor, doc.get("compactor")),
        querier=apply_section(cfg.querier, doc.get("querier")),
        storage=apply_section(cfg.storage, {**aws, **{k: v for k, v in storage.items() if k.startswith("cache_")}}),
        frontend=apply_section(cfg.frontend, doc.get("frontend")),
    )
