"""Promtail's YAML read by lokiarrow/agent/config.py: the docs' and the Helm chart's configs load,
mistakes fail with the field's path, and `-config.expand-env` expands as Promtail does."""

from __future__ import annotations

from pathlib import Path

import pytest

from lokiarrow.agent import config
from lokiarrow.agent.settings import ConfigError

# Promtail's docs, "Example Static Config" (an empty pipeline_stages included)
DOCS_STATIC = """
server:
  http_listen_port: 9080
  grpc_listen_port: 0

positions:
  filename: /var/log/positions.yaml

clients:
  - url: https://logs-prod-us-central1.grafana.net/loki/api/v1/push

scrape_configs:
 - job_name: system
   pipeline_stages:
   static_configs:
   - targets:
      - localhost
     labels:
      job: varlogs
      host: yourhost
      __path__: /var/log/*.log
"""

# Promtail's docs: pipelines with nested match stages, a timestamp and several clients
DOCS_PIPELINE = """
server:
  http_listen_address: 127.0.0.1
  http_listen_port: 9080
  log_level: debug
positions:
  filename: /tmp/positions.yaml
  sync_period: 10s
clients:
  - url: http://localhost:3100/loki/api/v1/push
    tenant_id: team-a
    batchwait: 1s
    batchsize: 1048576
    backoff_config:
      min_period: 500ms
      max_period: 5m
      max_retries: 10
    external_labels:
      cluster: dev
  - url: http://other:3100/loki/api/v1/push
target_config:
  sync_period: 5s
limits_config:
  readline_rate_enabled: true
  readline_rate: 100.5
  readline_burst: 200
  max_line_size: 256KB
global:
  file_watch_config:
    min_poll_frequency: 250ms
    max_poll_frequency: 1s
scrape_configs:
  - job_name: kubernetes-pods-name
    kubernetes_sd_configs:
      - role: pod
    pipeline_stages:
      - cri: {}
      - match:
          selector: '{app="loki"}'
          stages:
            - json:
                expressions:
                  level:
                  component:
            - labels:
                level:
                component:
      - match:
          selector: '{app="nginx"} |~ "health"'
          action: drop
      - timestamp:
          source: time
          format: RFC3339Nano
      - output:
          source: msg
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_label_name]
        target_label: __service__
      - action: labelmap
        regex: __meta_kubernetes_pod_label_(.+)
"""

HELM = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "agent.yaml"


def test_the_docs_static_config_loads() -> None:
    cfg = config.parse(DOCS_STATIC)
    assert cfg.server.http_listen_port == 9080
    assert cfg.positions.string("filename") == "/var/log/positions.yaml"
    assert [c.value["url"] for c in cfg.clients] == ["https://logs-prod-us-central1.grafana.net/loki/api/v1/push"]
    [job] = cfg.scrape_configs
    assert job.job_name == "system" and job.pipeline_stages == []
    [static] = job.static_configs
    assert static.path == "scrape_configs[0].static_configs[0]"
    assert static.mapping("labels")["__path__"] == "/var/log/*.log"


def test_the_docs_pipeline_config_loads() -> None:
    cfg = config.parse(DOCS_PIPELINE)
    assert (cfg.server.http_listen_address, cfg.server.log_level) == ("127.0.0.1", "debug")
    assert cfg.sync_period_ns == 5_000_000_000
    assert (cfg.min_poll_ns, cfg.max_poll_ns) == (250_000_000, 1_000_000_000)
    assert cfg.limits.readline_rate_enabled and cfg.limits.readline_rate == 100.5
    assert (cfg.limits.readline_burst, cfg.limits.max_line_size) == (200, 256_000)
    assert [c.path for c in cfg.clients] == ["clients[0]", "clients[1]"]
    [job] = cfg.scrape_configs
    assert [list(s.value) for s in job.pipeline_stages] == [["cri"], ["match"], ["match"], ["timestamp"], ["output"]]
    assert [s.path for s in job.relabel_configs] == ["scrape_configs[0].relabel_configs[0]",
                                                     "scrape_configs[0].relabel_configs[1]"]


def test_defaults_are_promtails() -> None:
    cfg = config.parse("")
    assert cfg.server.http_listen_port == 9080
    assert cfg.sync_period_ns == 10_000_000_000
    assert cfg.clients == [] and cfg.scrape_configs == []


def test_the_deprecated_single_client_is_a_client() -> None:
    cfg = config.parse("client:\n  url: http://a/loki/api/v1/push\n")
    assert [(c.path, c.value["url"]) for c in cfg.clients] == [("client", "http://a/loki/api/v1/push")]


@pytest.mark.parametrize(("text", "message"), [
    ("server:\n  http_listen_prot: 1\n", "server.http_listen_prot: unknown field"),
    ("sever: {}\n", "sever: unknown field"),
    ("server:\n  http_listen_port: '9080x'\n", "server.http_listen_port: must be an integer, not '9080x'"),
    ("server:\n  http_listen_port: 70000\n", "server.http_listen_port: invalid port 70000"),
    ("server:\n  log_level: loud\n", "server.log_level: unrecognized log level 'loud'"),
    ("server: 3\n", "server: must be a mapping, not int"),
    ("- a\n", "must be a mapping, not list"),
    ("server: [\n", "cannot parse config"),
    ("target_config:\n  sync_period: 10x\n", "target_config.sync_period: invalid duration '10x'"),
    ("limits_config:\n  readline_rate: fast\n", "limits_config.readline_rate: must be a number, not 'fast'"),
    ("global:\n  file_watch_config:\n    min_poll: 1s\n", "global.file_watch_config.min_poll: unknown field"),
    ("scrape_configs: {}\n", "scrape_configs: must be a list, not dict"),
    ("scrape_configs:\n- job_nam: a\n", "scrape_configs[0].job_nam: unknown field"),
    ("scrape_configs:\n- static_configs: []\n", "scrape_configs[0].job_name: job_name must be set"),
    ("scrape_configs:\n- job_name: a\n- job_name: a\n",
     "scrape_configs[1].job_name: found multiple scrape configs with job name 'a'"),
    ("scrape_configs:\n- job_name: a\n  relabel_configs: {}\n",
     "scrape_configs[0].relabel_configs: must be a list, not dict"),
    ("scrape_configs:\n- job_name: a\n  static_configs:\n  - 3\n",
     "scrape_configs[0].static_configs[0]: must be a mapping, not int"),
    ("scrape_configs:\n- job_name: a\n  journal: {}\n",
     "scrape_configs[0].journal: not supported by lokiarrow's agent (files only)"),
    ("scrape_configs:\n- job_name: a\n  pipeline_stages:\n  - jsn: {}\n",
     "scrape_configs[0].pipeline_stages[0].jsn: unknown stage"),
    ("scrape_configs:\n- job_name: a\n  pipeline_stages:\n  - json:\n      expressions: 3\n",
     "scrape_configs[0].pipeline_stages[0].json.expressions: must be a mapping, not int"),
    ("scrape_configs:\n- job_name: a\n  pipeline_stages:\n  - match:\n      selector: '{a=\"b\"}'\n"
     "      stages:\n      - timestamp: {source: t, format: RFC3339, bogus: 1}\n",
     "scrape_configs[0].pipeline_stages[0].match.stages[0].timestamp.bogus: unknown field"),
    ("clients:\n- url: http://a\n  batchwiat: 1s\n", "clients[0].batchwiat: unknown field"),
    ("scrape_configs:\n- job_name: a\n  pods_dir_sd_configs: [{root: /x}]\n",
     "scrape_configs[0].pods_dir_sd_configs[0].root: unknown field"),
    ("scrape_configs:\n- job_name: a\n  pods_dir_sd_configs: [{path: ''}]\n",
     "scrape_configs[0].pods_dir_sd_configs[0].path: must name the kubelet's pod log folder"),
    ("clients:\n- tenant_id: a\n", "clients[0].url: missing client URL"),
    ("client:\n  url: http://a\n  batchwait: soon\n", "client.batchwait: invalid duration 'soon'"),
    ("positions:\n  filname: /tmp/p.yaml\n", "positions.filname: unknown field"),
    ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: replce\n",
     "scrape_configs[0].relabel_configs[0].action: unknown relabel action 'replce'"),
    ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - source_labels: [a]\n    regex: '(a'\n",
     "scrape_configs[0].relabel_configs[0].regex: error parsing regexp"),
])
def test_mistakes_fail_with_their_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse(text)
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize("stage", [
    "- regex: {expression: '(?P<'}", "- multiline: {firstline: '(a'}", "- match: {selector: '{a=\"b\"}', stages: [], "
    "action: drop}\n  - drop: {expression: '(a'}", "- replace: {expression: '[a'}"])
def test_a_bad_stage_regex_is_a_config_error_and_nothing_on_stderr(stage: str, capfd: pytest.CaptureFixture[str]) -> None:
    text = "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - source_labels: [a]\n    regex: '(?P<'\n"
    for document in (text, f"scrape_configs:\n- job_name: a\n  pipeline_stages:\n  {stage}\n"):
        with pytest.raises(ConfigError, match=r"error parsing regexp: [A-Za-z ]+[)\]]?: `"):
            config.parse(document)
    assert capfd.readouterr().err == ""      # RE2's own log stays quiet: the error says it


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope.yaml"):
        config.load(str(tmp_path / "nope.yaml"))


def test_expand_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKI_URL", "http://loki:3100/loki/api/v1/push")
    monkeypatch.setenv("PORT", "9181")
    monkeypatch.delenv("UNSET_TENANT", raising=False)
    text = ("server:\n  http_listen_port: ${PORT}\nclients:\n- url: ${LOKI_URL}\n"
            "  tenant_id: ${UNSET_TENANT:-fallback}\n  external_labels:\n    host: '${UNSET_TENANT}'\n")
    path = tmp_path / "promtail.yaml"
    path.write_text(text)
    cfg = config.load(str(path), expand=True)
    assert cfg.server.http_listen_port == 9181
    [client] = cfg.clients
    assert client.value == {"url": "http://loki:3100/loki/api/v1/push", "tenant_id": "fallback",
                            "external_labels": {"host": ""}}
    # without the flag, ${…} stays as written, and a port of "${PORT}" is not an integer
    with pytest.raises(ConfigError, match=r"server.http_listen_port: must be an integer, not '\$\{PORT\}'"):
        config.load(str(path))


def test_the_kubernetes_configmap_config_loads() -> None:
    import yaml

    [configmap] = [d for d in yaml.safe_load_all(HELM.read_text()) if d and d["kind"] == "ConfigMap"]
    cfg = config.parse(configmap["data"]["promtail.yaml"], expand=True)
    assert [j.job_name for j in cfg.scrape_configs] == ["kubernetes-pods"]
    assert len(cfg.scrape_configs[0].relabel_configs) == 11
