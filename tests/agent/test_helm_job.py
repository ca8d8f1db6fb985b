"""The official Helm chart's `kubernetes-pods` job, as the chart renders it with its default
values (grafana/helm-charts, charts/promtail/values.yaml), over pods discovered from a real HTTP
server speaking the Kubernetes API: labels and `__path__` as Promtail gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lokiarrow.agent import config, relabel
from lokiarrow.agent.discovery import files
from lokiarrow.agent.discovery.kubernetes import KubernetesPods
from tests.agent.fake_kubernetes import FakeKubernetes, pod

# config.file of the chart, rendered with the default values, plus the DaemonSet's node filter.
CHART_CONFIG = """
server:
  log_level: info
  log_format: logfmt
  http_listen_port: 3101

clients:
  - url: http://loki-gateway/loki/api/v1/push

positions:
  filename: /run/promtail/positions.yaml

scrape_configs:
  # See also https://github.com/grafana/loki/blob/master/production/ksonnet/promtail/scrape_config.libsonnet for reference
  - job_name: kubernetes-pods
    pipeline_stages:
      - cri: {}
    kubernetes_sd_configs:
      - role: pod
        api_server: ${API_SERVER}
        selectors:
          - role: pod
            field: spec.nodeName=${HOSTNAME}
    relabel_configs:
      - source_labels:
          - __meta_kubernetes_pod_controller_name
        regex: ([0-9a-z-.]+?)(-[0-9a-f]{8,10})?
        action: replace
        target_label: __tmp_controller_name
      - source_labels:
          - __meta_kubernetes_pod_label_app_kubernetes_io_name
          - __meta_kubernetes_pod_label_app
          - __tmp_controller_name
          - __meta_kubernetes_pod_name
        regex: ^;*([^;]+)(;.*)?$
        action: replace
        target_label: app
      - source_labels:
          - __meta_kubernetes_pod_label_app_kubernetes_io_instance
          - __meta_kubernetes_pod_label_instance
        regex: ^;*([^;]+)(;.*)?$
        action: replace
        target_label: instance
      - source_labels:
          - __meta_kubernetes_pod_label_app_kubernetes_io_component
          - __meta_kubernetes_pod_label_component
        regex: ^;*([^;]+)(;.*)?$
        action: replace
        target_label: component
      - action: replace
        source_labels:
        - __meta_kubernetes_pod_node_name
        target_label: node_name
      - action: replace
        source_labels:
        - __meta_kubernetes_namespace
        target_label: namespace
      - action: replace
        replacement: $1
        separator: /
        source_labels:
        - namespace
        - app
        target_label: job
      - action: replace
        source_labels:
        - __meta_kubernetes_pod_name
        target_label: pod
      - action: replace
        source_labels:
        - __meta_kubernetes_pod_container_name
        target_label: container
      - action: replace
        replacement: /var/log/pods/*$1/*.log
        separator: /
        source_labels:
        - __meta_kubernetes_pod_uid
        - __meta_kubernetes_pod_container_name
        target_label: __path__
      - action: replace
        replacement: /var/log/pods/*$1/*.log
        regex: true/(.*)
        separator: /
        source_labels:
        - __meta_kubernetes_pod_annotationpresent_kubernetes_io_config_hash
        - __meta_kubernetes_pod_annotation_kubernetes_io_config_hash
        - __meta_kubernetes_pod_container_name
        target_label: __path__

limits_config:

tracing:
  enabled: false
"""

PODS = [
    # app.kubernetes.io/* labels win
    pod("web-5f7d8c9b4d-x2x9z", "shop", uid="u-web", owner=("ReplicaSet", "web-5f7d8c9b4d"),
        labels={"app.kubernetes.io/name": "storefront", "app.kubernetes.io/instance": "shop-prod",
                "app.kubernetes.io/component": "frontend", "app": "ignored"}),
    # plain app/instance/component labels next
    pod("worker-0", "jobs", uid="u-worker", owner=("StatefulSet", "worker"),
        labels={"app": "queue", "instance": "q1", "component": "consumer"}),
    # no labels: the controller's name without its pod-template hash
    pod("api-6d5f9b7c8f-abcde", "prod", uid="u-api", owner=("ReplicaSet", "api-6d5f9b7c8f")),
    # no labels and no controller: the pod's name; a static pod's path uses its config hash
    pod("etcd-node-a", "kube-system", uid="u-etcd", annotations={"kubernetes.io/config.hash": "c0ffee"}),
    pod("on-another-node", "prod", node="node-b"),
]

WANT = {
    "web-5f7d8c9b4d-x2x9z": ({"app": "storefront", "instance": "shop-prod", "component": "frontend",
                              "job": "shop/storefront", "namespace": "shop"}, "/var/log/pods/*u-web/main/*.log"),
    "worker-0": ({"app": "queue", "instance": "q1", "component": "consumer", "job": "jobs/queue",
                  "namespace": "jobs"}, "/var/log/pods/*u-worker/main/*.log"),
    "api-6d5f9b7c8f-abcde": ({"app": "api", "job": "prod/api", "namespace": "prod"},
                             "/var/log/pods/*u-api/main/*.log"),
    "etcd-node-a": ({"app": "etcd-node-a", "job": "kube-system/etcd-node-a", "namespace": "kube-system"},
                    "/var/log/pods/*c0ffee/main/*.log"),
}


@pytest.fixture
def relabelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    with FakeKubernetes() as fake:
        for p in PODS:
            fake.add(p)
        monkeypatch.setenv("API_SERVER", fake.url)
        monkeypatch.setenv("HOSTNAME", "node-a")
        [job] = config.parse(CHART_CONFIG, expand=True).scrape_configs
        [sd] = job.kubernetes_sd_configs
        discovery = KubernetesPods(sd)
        discovery.list()
        rules = relabel.parse(job.relabel_configs)
        out = [relabel.apply(rules, t.labels) for t in discovery.targets()]
    return [labels for labels in out if labels is not None]


def test_helm_kubernetes_pods_job(relabelled: list[dict[str, str]]) -> None:
    main = [labels for labels in relabelled if labels.get("container") == "main"]
    assert sorted(labels["pod"] for labels in main) == sorted(WANT)
    for labels in main:
        want, path = WANT[labels["pod"]]
        assert relabel.drop_internal(labels) == {**want, "pod": labels["pod"], "container": "main",
                                                 "node_name": "node-a"}
        assert labels["__path__"] == path
    init = [labels for labels in relabelled if labels.get("container") == "setup"]
    assert {labels["__path__"] for labels in init if labels["pod"] == "worker-0"} == {
        "/var/log/pods/*u-worker/setup/*.log"}


def test_helm_path_matches_kubelet_layout(relabelled: list[dict[str, str]], tmp_path: Path) -> None:
    """The built glob finds the kubelet's files (the /var/log/pods prefix moved under tmp)."""
    logs = tmp_path / "var/log/pods/jobs_worker-0_u-worker/main"
    logs.mkdir(parents=True)
    (logs / "0.log").write_text("x\n")
    (logs / "1.log").write_text("y\n")
    [worker] = [la for la in relabelled if la.get("pod") == "worker-0" and la["container"] == "main"]
    assert files(str(tmp_path) + worker["__path__"]) == [str(logs / "0.log"), str(logs / "1.log")]
