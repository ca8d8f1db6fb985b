"""deploy/kubernetes/: every object checked against the Kubernetes object schema, then the wiring.

No cluster runs here, so the manifests are checked for what they declare:
1. each document is validated by the `kubernetes` package's model for its kind (pydantic models
   generated from the API's OpenAPI definitions: strict types, unknown fields refused), and dumps
   back by its API names to the very same document, so a snake_case or misplaced key fails too;
2. the references between objects resolve (selectors, service account, role binding, ConfigMap,
   volume mounts, probe ports), the agent reads /var/log/pods read-only and the server has 10Gi;
   the gateway runs deploy/gateway/'s files as they are, with a value for each of their variables;
3. the ConfigMap's promtail.yaml loads with the agent's config reader and holds the Helm chart's
   kubernetes-pods job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes.client.models as k8s
import pytest
import yaml
from pydantic import ValidationError

from lokiarrow.agent import config
from tests.conftest import ROOT

MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
API_VERSIONS = {  # kind -> the apiVersion that serves it
    "Namespace": "v1", "ServiceAccount": "v1", "ConfigMap": "v1", "Service": "v1", "Secret": "v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1", "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "DaemonSet": "apps/v1", "StatefulSet": "apps/v1", "Deployment": "apps/v1",
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _objects() -> list[dict[str, Any]]:
    return [d for path in MANIFESTS for d in _documents(path)]


def _find(kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in _objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _port(service: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [p for p in service["spec"]["ports"] if p["name"] == name]
    return found


def validate(doc: dict[str, Any]) -> None:
    """Raise if `doc` is not a valid object of its kind."""
    kind = doc.get("kind")
    if kind not in API_VERSIONS:
        raise ValueError(f"unexpected kind {kind!r}")
    if doc.get("apiVersion") != API_VERSIONS[kind]:
        raise ValueError(f"{kind} is served by {API_VERSIONS[kind]}, not {doc.get('apiVersion')}")
    model = getattr(k8s, f"V1{kind}").model_validate(doc)
    if model.model_dump(by_alias=True, exclude_none=True, mode="json") != doc:
        raise ValueError(f"{kind} {doc['metadata']['name']}: keys not in the API's spelling")


def test_there_are_manifests() -> None:
    kinds = {o["kind"] for o in _objects()}
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
            "StatefulSet", "Service", "Deployment", "Secret"} <= kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_object_matches_the_schema(path: Path) -> None:
    for doc in _documents(path):
        validate(doc)
        assert doc["metadata"]["name"]


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagee="x"), "imagee"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="3101"),
     "containerPort"),
    (lambda d: d["spec"]["template"]["spec"].pop("containers"), "containers"),
    (lambda d: d["spec"]["template"]["spec"].update(
        service_account_name=d["spec"]["template"]["spec"].pop("serviceAccountName")), "API's spelling"),
    (lambda d: d.update(apiVersion="extensions/v1beta1"), "apps/v1"),
])
def test_the_validation_catches_mistakes(change: Any, problem: str) -> None:
    doc = _find("DaemonSet", "lokiarrow-agent")
    change(doc)
    with pytest.raises((ValidationError, ValueError), match=problem):
        validate(doc)


def test_the_agent_daemonset_is_wired() -> None:
    ds = _find("DaemonSet", "lokiarrow-agent")
    spec = ds["spec"]["template"]["spec"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    account = _find("ServiceAccount", spec["serviceAccountName"])
    binding = _find("ClusterRoleBinding", "lokiarrow-agent")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    role = _find(binding["roleRef"]["kind"], binding["roleRef"]["name"])
    granted = {(r, v) for rule in role["rules"] if rule["apiGroups"] == [""]
               for r in rule["resources"] for v in rule["verbs"]}
    assert {("pods", "list"), ("pods", "watch"), ("nodes", "list"), ("nodes", "watch")} <= granted

    volumes = {v["name"]: v for v in spec["volumes"]}
    [container] = spec["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} <= volumes.keys()
    pods = mounts["/var/log/pods"]
    assert pods["readOnly"] is True and volumes[pods["name"]]["hostPath"]["path"] == "/var/log/pods"
    env = {e["name"]: e for e in container["env"]}
    assert env["HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"

    # the config the container is started with is the ConfigMap's, and its positions live on a hostPath
    flags = dict(a.split("=", 1) for a in container["command"][2:])
    assert container["command"][:2] == ["lokiarrow", "agent"]
    config_dir, config_file = flags["-config.file"].rsplit("/", 1)
    configmap = _find("ConfigMap", volumes[mounts[config_dir]["name"]]["configMap"]["name"])
    agent = config.parse(configmap["data"][config_file], expand=True)
    positions = agent.positions.string("filename") or ""
    positions_mount = mounts[positions.rsplit("/", 1)[0]]
    assert not positions_mount.get("readOnly") and "hostPath" in volumes[positions_mount["name"]]

    # the probe asks /ready on the port the agent listens on
    probe = container["readinessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert probe["path"] == "/ready" and ports[probe["port"]] == agent.server.http_listen_port


def test_the_configmap_holds_the_helm_charts_job() -> None:
    configmap = _find("ConfigMap", "lokiarrow-agent")
    agent = config.parse(configmap["data"]["promtail.yaml"], expand=True)
    [job] = agent.scrape_configs
    assert job.job_name == "kubernetes-pods"
    assert [s.value for s in job.kubernetes_sd_configs] == [{"role": "pod"}]
    assert [s.value for s in job.pipeline_stages] == [{"cri": {}}]
    rules = [s.value for s in job.relabel_configs]
    assert {"action": "replace", "replacement": "$1", "separator": "/",
            "source_labels": ["namespace", "app"], "target_label": "job"} in rules
    assert [r["replacement"] for r in rules if r["target_label"] == "__path__"] == ["/var/log/pods/*$1/*.log"] * 2
    assert [r["target_label"] for r in rules[:4]] == ["__tmp_controller_name", "app", "instance", "component"]
    [client] = agent.clients
    service = _find("Service", "lokiarrow")
    port = _port(service, "http")
    assert client.value["url"] == (f"http://{service['metadata']['name']}.{service['metadata']['namespace']}"
                                   f".svc.cluster.local:{port['port']}/loki/api/v1/push")


def test_the_server_keeps_its_data_on_a_10gi_volume() -> None:
    service = _find("Service", "lokiarrow")
    sts = _find("StatefulSet", "lokiarrow")
    template = sts["spec"]["template"]
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    port = _port(service, "http")
    [container] = template["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["port"] == 3100 and named[port["targetPort"]] == 3100
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]


def test_the_gateway_runs_deploy_gateway_as_it_is() -> None:
    gateway = ROOT / "deploy" / "gateway"
    deployment = _find("Deployment", "lokiarrow-gateway")
    service = _find("Service", "lokiarrow-gateway")
    template = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    [container] = template["spec"]["containers"]
    port = _port(service, "http")
    assert {p["name"]: p["containerPort"] for p in container["ports"]}[port["targetPort"]] == 8080

    # the files, byte for byte: the ConfigMap and the Secret must not drift from deploy/gateway/
    configmap = _find("ConfigMap", "lokiarrow-gateway")
    assert configmap["data"] == {name: (gateway / name).read_text() for name in ("nginx.conf.template", "tenants.map")}
    users = _find("Secret", "lokiarrow-gateway-users")
    assert users["stringData"] == {"htpasswd": (gateway / "htpasswd").read_text()}

    # every ${GATEWAY_*} of the template has a value; the files it names are where they are mounted
    env = {e["name"]: e["value"] for e in container["env"]}
    wanted = set(re.findall(r"\$\{(GATEWAY_[A-Z_]+)\}", configmap["data"]["nginx.conf.template"]))
    assert wanted and wanted <= env.keys()
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    mounted: dict[str, str] = {}   # file path in the container -> ConfigMap or Secret it comes from
    for m in container["volumeMounts"]:
        source = volumes[m["name"]]
        if "configMap" in source:
            mounted |= {f"{m['mountPath']}/{i['path']}": source["configMap"]["name"] for i in source["configMap"]["items"]}
        else:
            mounted[f"{m['mountPath']}/htpasswd"] = source["secret"]["secretName"]
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    assert mounted["/etc/nginx/templates/nginx.conf.template"] == configmap["metadata"]["name"]
    assert mounted[env["GATEWAY_TENANTS"]] == configmap["metadata"]["name"]
    assert mounted[env["GATEWAY_HTPASSWD"]] == users["metadata"]["name"]

    # writers and readers: the server's Service
    server = _find("Service", "lokiarrow")
    server_port = _port(server, "http")
    url = f"http://{server['metadata']['name']}.{server['metadata']['namespace']}.svc.cluster.local:{server_port['port']}"
    for pool in ("GATEWAY_WRITE_SERVERS", "GATEWAY_READ_SERVERS", "GATEWAY_BACKEND_SERVERS"):
        assert env[pool] == f"server {url.split('//')[1]};", pool
    grpc = _port(server, "grpc")
    for pool in ("GATEWAY_GRPC_WRITE_SERVERS", "GATEWAY_GRPC_READ_SERVERS"):
        assert env[pool] == f"server {url.split('//')[1].split(':')[0]}:{grpc['port']};", pool
    server_container = _find("StatefulSet", "lokiarrow")["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in server_container["ports"]}[grpc["targetPort"]] == 9095
    assert {p["name"]: p["containerPort"] for p in container["ports"]}[_port(service, "grpc")["targetPort"]] == \
        int(env["GATEWAY_GRPC_PORT"])
