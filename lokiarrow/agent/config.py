"""Promtail's whole YAML: the top level and each scrape config checked here, every other section
kept raw (a `Section`) for the module that reads it.

1. expand `${VAR}` / `${VAR:-default}` when asked (`-config.expand-env`), then parse the YAML;
2. read `server`, `target_config`, `limits_config` and `global` here (small, the command's own);
3. keep `positions` for positions.py, each of `clients` for client.py, and per scrape config its
   `relabel_configs` (relabel.py), `static_configs`/`kubernetes_sd_configs` (discovery/), and
   `pods_dir_sd_configs` (lokiarrow's own: the kubelet's log folder, discovery/pods_dir.py);
4. read each kept section once with its owner's reader (positions, clients, relabel rules) and
   build every `pipeline_stages` list with stages.build, so that a mistake fails at start-up.
Any unknown key fails with its path, as `scrape_configs[0].job_nam: unknown field`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from lokiarrow.agent.settings import ConfigError, Section
from lokiarrow.config import expand_env

# Promtail's scrape configs that read from elsewhere than files: named so that the error says
# lokiarrow lacks them rather than that they are typos.
UNSUPPORTED_SCRAPE = (
    "journal", "syslog", "gcplog", "windows_events", "kafka", "gelf", "cloudflare", "heroku_drain",
    "loki_push_api", "azure_event_hubs", "file_sd_configs", "consul_sd_configs",
    "consulagent_sd_configs", "docker_sd_configs", "digitalocean_sd_configs", "ec2_sd_configs",
    "azure_sd_configs", "gce_sd_configs", "openstack_sd_configs", "dns_sd_configs",
)
LOG_LEVELS = ("debug", "info", "warn", "error")


@dataclass
class ServerConfig:
    http_listen_port: int = 9080  # Promtail's default
    http_listen_address: str = ""
    log_level: str = "info"
    disable: bool = False


@dataclass
class ScrapeConfig:
    """One job; the raw sections belong to discovery, relabel.py and the stages."""

    job_name: str
    relabel_configs: list[Section]
    static_configs: list[Section]
    kubernetes_sd_configs: list[Section]
    pods_dir_sd_configs: list[Section]
    pipeline_stages: list[Section]
    path: str
    encoding: str = ""


@dataclass
class LimitsConfig:
    readline_rate_enabled: bool = False
    readline_rate: float = 10000.0
    readline_burst: int = 10000
    readline_rate_drop: bool = True
    max_streams: int = 0
    max_line_size: int = 0
    max_line_size_truncate: bool = False


@dataclass
class AgentConfig:
    server: ServerConfig
    positions: Section
    clients: list[Section]
    scrape_configs: list[ScrapeConfig]
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    sync_period_ns: int = 10_000_000_000  # target_config.sync_period
    min_poll_ns: int = 250_000_000  # global.file_watch_config
    max_poll_ns: int = 250_000_000


def load(path: str, expand: bool = False) -> AgentConfig:
    """Read `-config.file`; a missing file is a ConfigError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from None
    return parse(text, expand)


def parse(text: str, expand: bool = False) -> AgentConfig:
    if expand:
        text = expand_env(text)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"cannot parse config: {exc}") from None
    top = Section(doc, "")
    config = AgentConfig(
        server=_server(top.section("server")),
        positions=top.section("positions"),
        clients=top.sections("clients"),
        scrape_configs=[_scrape(s) for s in top.sections("scrape_configs")],
        limits=_limits(top.section("limits_config")),
    )
    if top.raw("client") is not None:  # Promtail's deprecated single client
        config.clients.append(top.section("client"))
    target = top.section("target_config")
    config.sync_period_ns = target.duration_ns("sync_period", config.sync_period_ns) or config.sync_period_ns
    target.done()
    watch = top.section("global").section("file_watch_config")
    config.min_poll_ns = watch.duration_ns("min_poll_frequency", config.min_poll_ns) or config.min_poll_ns
    config.max_poll_ns = watch.duration_ns("max_poll_frequency", config.max_poll_ns) or config.max_poll_ns
    watch.done()
    glob = top.section("global")
    glob.raw("file_watch_config")
    glob.done()
    _ignored(top, "options", "tracing", "wal")
    top.done()
    seen: set[str] = set()
    for s in config.scrape_configs:
        if s.job_name in seen:
            raise ConfigError(s.path + ".job_name", f"found multiple scrape configs with job name {s.job_name!r}")
        seen.add(s.job_name)
    _check_owned(config)
    return config


def _server(s: Section) -> ServerConfig:
    out = ServerConfig(
        http_listen_port=s.integer("http_listen_port", 9080) or 0,
        http_listen_address=s.string("http_listen_address", "") or "",
        log_level=s.string("log_level", "info") or "info",
        disable=bool(s.boolean("disable", False)),
    )
    if out.log_level not in LOG_LEVELS:
        raise ConfigError(s.at("log_level"), f"unrecognized log level {out.log_level!r}")
    if not 0 <= out.http_listen_port <= 65535:
        raise ConfigError(s.at("http_listen_port"), f"invalid port {out.http_listen_port}")
    for key in ("grpc_listen_port", "grpc_listen_address", "log_format", "register_instrumentation",
                "graceful_shutdown_timeout", "http_server_read_timeout", "http_server_write_timeout",
                "http_server_idle_timeout", "health_check_target", "enable_runtime_reload",
                "http_path_prefix", "external_url", "profiling_enabled"):
        s.raw(key)  # Promtail's server settings with no effect here
    s.done()
    return out


def _limits(s: Section) -> LimitsConfig:
    d = LimitsConfig()
    rate = s.raw("readline_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise ConfigError(s.at("readline_rate"), f"must be a number, not {rate!r}")
    out = LimitsConfig(
        readline_rate_enabled=bool(s.boolean("readline_rate_enabled", d.readline_rate_enabled)),
        readline_rate=float(rate) if rate is not None else d.readline_rate,
        readline_burst=s.integer("readline_burst", d.readline_burst) or 0,
        readline_rate_drop=bool(s.boolean("readline_rate_drop", d.readline_rate_drop)),
        max_streams=s.integer("max_streams", d.max_streams) or 0,
        max_line_size=s.size("max_line_size", d.max_line_size) or 0,
        max_line_size_truncate=bool(s.boolean("max_line_size_truncate", d.max_line_size_truncate)),
    )
    s.done()
    return out


def _scrape(s: Section) -> ScrapeConfig:
    from lokiarrow.agent import relabel, stages
    from lokiarrow.agent.discovery.pods_dir import PodsDir

    name = s.string("job_name") or ""
    for key in UNSUPPORTED_SCRAPE:
        if s.raw(key) is not None:
            raise ConfigError(s.at(key), "not supported by lokiarrow's agent (files only)")
    out = ScrapeConfig(
        job_name=name,
        relabel_configs=s.sections("relabel_configs"),
        static_configs=s.sections("static_configs"),
        kubernetes_sd_configs=s.sections("kubernetes_sd_configs"),
        pods_dir_sd_configs=s.sections("pods_dir_sd_configs"),
        pipeline_stages=s.sections("pipeline_stages"),
        path=s.path,
        encoding=s.string("encoding", "") or "",
    )
    _ignored(s, "decompression")
    s.done()
    if not name:
        raise ConfigError(s.at("job_name"), "job_name must be set")
    relabel.parse(out.relabel_configs)
    for pods in out.pods_dir_sd_configs:
        PodsDir.read(pods)
    stages.build(out.pipeline_stages, s.at("pipeline_stages"))
    return out


def _check_owned(config: AgentConfig) -> None:
    """Read the sections other modules own, for their errors only (a Section may be read again)."""
    from lokiarrow.agent.client import ClientConfig
    from lokiarrow.agent.positions import PositionsConfig

    PositionsConfig.from_section(config.positions)
    for client in config.clients:
        ClientConfig.read(client)


def _ignored(s: Section, *keys: str) -> None:
    for key in keys:
        s.raw(key)
