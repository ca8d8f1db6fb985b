"""`lokiarrow agent -config.file promtail.yaml`: Promtail's command line.

Flags keep Promtail's names (`-config.file`, `-config.expand-env`, `-dry-run`, `-check-syntax`,
`-server.http-listen-port`). A bad config exits 1 with the field's path on stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import replace

from prometheus_client import CollectorRegistry

from lokiarrow.agent.config import AgentConfig, load
from lokiarrow.agent.runtime import Agent
from lokiarrow.agent.settings import ConfigError

log = logging.getLogger("lokiarrow.agent")


def agent_parser(parser: argparse.ArgumentParser) -> None:
    from lokiarrow.cli import _bool, _flag

    _flag(parser, "config.file", help="Promtail YAML configuration file")
    _flag(parser, "config.expand-env", type=_bool, nargs="?", const=True, default=False,
          help="expand ${VAR} and ${VAR:-default} in the config file")
    _flag(parser, "dry-run", type=_bool, nargs="?", const=True, default=False,
          help="print entries to stdout instead of sending them")
    _flag(parser, "check-syntax", type=_bool, nargs="?", const=True, default=False,
          help="check the config file and exit")
    _flag(parser, "server.http-listen-port", type=int, help="HTTP port (default 9080)")
    _flag(parser, "server.http-listen-address", help="HTTP address (default all)")
    _flag(parser, "log.level", default="info", help="debug, info, warn or error")


def command(args: argparse.Namespace) -> int:
    """Load the config, serve /ready and /metrics, run until SIGTERM or SIGINT."""
    if not args.config_file:
        print("Invalid config file: -config.file must be set", file=sys.stderr)
        return 1
    try:
        config = load(args.config_file, args.config_expand_env)
    except ConfigError as exc:
        print(f"Invalid config file {args.config_file}: {exc}", file=sys.stderr)
        return 1
    if args.check_syntax:
        print("Valid config file! No syntax issues found")
        return 0
    server = config.server
    if args.server_http_listen_port is not None:
        server = replace(server, http_listen_port=args.server_http_listen_port)
    if args.server_http_listen_address is not None:
        server = replace(server, http_listen_address=args.server_http_listen_address)
    config.server = server
    level = config.server.log_level if args.log_level == "info" else args.log_level  # the flag wins
    logging.getLogger().setLevel(level.upper().replace("WARN", "WARNING"))

    from lokiarrow.agent.http import AgentHTTP

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    registry = CollectorRegistry()
    http = None
    if not server.disable:
        try:
            http = AgentHTTP(server.http_listen_address, server.http_listen_port, registry).start()
        except OSError as exc:
            print(f"cannot listen on port {server.http_listen_port}: {exc.strerror}", file=sys.stderr)
            return 1
        log.info("agent listening on port %d", http.port)
    try:
        run(config, registry, stop, dry_run=args.dry_run)
    finally:
        if http is not None:
            http.stop()
    return 0


def run(config: AgentConfig, registry: CollectorRegistry, stop: threading.Event, dry_run: bool = False) -> None:
    """The agent's work (lokiarrow/agent/runtime.py), returning once `stop` is set and the
    pending entries and positions are written."""
    Agent(config, registry, dry_run).run(stop)
