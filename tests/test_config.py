from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lokiarrow.cli import load_config, serve_parser
from lokiarrow.config import Config, expand_env, from_yaml
from lokiarrow.errors import BadRequest


def test_loki_sections_and_units_are_read() -> None:
    cfg = from_yaml("""
auth_enabled: true
server: {http_listen_port: 3200}
common: {path_prefix: /var/lib/loki}
limits_config:
  reject_old_samples_max_age: 1w
  creation_grace_period: 87600h
  max_line_size: 512KB
  discover_service_name: [svc]
ingester:
  max_chunk_age: 2m
  wal: {enabled: false}
  rollup_words: [error, oops]
schema_config: {configs: []}   # a section lokiarrow does not use: ignored
""")
    assert cfg.auth_enabled and cfg.http_listen_port == 3200 and cfg.path_prefix == "/var/lib/loki"
    assert cfg.limits.reject_old_samples_max_age == 7 * 86_400 * 10**9
    assert cfg.limits.creation_grace_period == 87_600 * 3600 * 10**9
    assert cfg.limits.max_line_size == 512_000
    assert cfg.limits.discover_service_name == ("svc",)
    assert cfg.ingester.max_chunk_age == 120 * 10**9 and not cfg.ingester.wal_enabled
    assert cfg.ingester.rollup_words == ("error", "oops")


def test_defaults_are_lokis() -> None:
    cfg = Config()
    assert (cfg.http_listen_port, cfg.path_prefix, cfg.auth_enabled) == (3100, "./data", False)
    assert cfg.limits.max_label_names_per_series == 15 and cfg.limits.max_line_size == 256 * 1024
    assert cfg.limits.max_entries_limit_per_query == 5000


def test_bad_yaml_is_a_clear_error() -> None:
    with pytest.raises(BadRequest, match="cannot parse config"):
        from_yaml("server: [unclosed")
    with pytest.raises(BadRequest, match="rollup_words must be a list"):
        from_yaml("ingester: {rollup_words: error}")


def test_expand_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKI_PORT", "3300")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    assert expand_env("port: ${LOKI_PORT} dir: ${UNSET_VAR:-/tmp/x}") == "port: 3300 dir: /tmp/x"


def test_flags_override_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "loki.yaml"
    config.write_text("server: {http_listen_port: ${PORT}}\ncommon: {path_prefix: /from/file}\n")
    monkeypatch.setenv("PORT", "3400")
    parser = argparse.ArgumentParser()
    serve_parser(parser)
    args = parser.parse_args([f"-config.file={config}", "-config.expand-env=true",
                              "-common.path-prefix", "/from/flag", "-auth.enabled"])
    cfg = load_config(args)
    assert cfg.http_listen_port == 3400 and cfg.path_prefix == "/from/flag" and cfg.auth_enabled
