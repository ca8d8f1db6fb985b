"""Discovery: static globs and the pods directory on real files, Kubernetes pods from a real
HTTP server speaking the API's list/watch JSON (tests/agent/fake_kubernetes.py)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lokiarrow.agent.discovery import Target, files, kubernetes
from lokiarrow.agent.discovery.kubernetes import Gone, KubernetesPods, pod_targets
from lokiarrow.agent.discovery.pods_dir import PodsDir
from lokiarrow.agent.discovery.static import Static
from lokiarrow.agent.settings import ConfigError, Section
from tests.agent.fake_kubernetes import FakeKubernetes, pod


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_static_targets_and_globs(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("x\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.log").write_text("y\n")
    (tmp_path / "c.txt").write_text("z\n")
    config = Section({"static_configs": [{"targets": ["localhost"], "labels": {
        "job": "varlogs", "__path__": f"{tmp_path}/**/*.log", "__path_exclude__": f"{tmp_path}/sub/*"}}]}, "")
    static = Static(config.sections("static_configs"))
    [target] = static.targets()
    assert target.labels == {"__address__": "localhost", "job": "varlogs", "__path__": f"{tmp_path}/**/*.log",
                             "__path_exclude__": f"{tmp_path}/sub/*"}
    def matched() -> list[str]:
        return files(target.labels["__path__"], target.labels["__path_exclude__"])

    assert matched() == [f"{tmp_path}/a.log"]
    (tmp_path / "new.log").write_text("n\n")  # a new file appears at the next check
    assert matched() == [f"{tmp_path}/a.log", f"{tmp_path}/new.log"]
    assert files(f"{tmp_path}/**/*.log") == [f"{tmp_path}/a.log", f"{tmp_path}/new.log", f"{tmp_path}/sub/b.log"]
    assert files("") == []


def test_static_unknown_field() -> None:
    config = Section({"static_configs": [{"targets": ["localhost"], "label": {}}]}, "scrape_configs[0]")
    with pytest.raises(ConfigError, match=r"^scrape_configs\[0\]\.static_configs\[0\]\.label: unknown field$"):
        Static(config.sections("static_configs"))


def test_pods_dir(tmp_path: Path) -> None:
    container = tmp_path / "shop_web-7d4b9c-x2x9z_4f1c-aa" / "nginx"
    container.mkdir(parents=True)
    (container / "0.log").write_text("line\n")
    (tmp_path / "not-a-pod").mkdir()
    (tmp_path / "kube-system_dns_77" / "coredns").mkdir(parents=True)
    targets = PodsDir(str(tmp_path)).targets()
    assert [t.labels for t in targets] == [
        {"__meta_kubernetes_namespace": "kube-system", "__meta_kubernetes_pod_name": "dns",
         "__meta_kubernetes_pod_uid": "77", "__meta_kubernetes_pod_container_name": "coredns",
         "__path__": f"{tmp_path}/kube-system_dns_77/coredns/*.log"},
        {"__meta_kubernetes_namespace": "shop", "__meta_kubernetes_pod_name": "web-7d4b9c-x2x9z",
         "__meta_kubernetes_pod_uid": "4f1c-aa", "__meta_kubernetes_pod_container_name": "nginx",
         "__path__": f"{container}/*.log"},
    ]
    assert files(targets[1].labels["__path__"]) == [f"{container}/0.log"]
    assert PodsDir(str(tmp_path / "missing")).targets() == []


WEB = pod("web-5f7d8-abcde", "shop", labels={"app.kubernetes.io/name": "web", "tier": ""},
          annotations={"kubernetes.io/config.hash": "h1"}, owner=("ReplicaSet", "web-5f7d8"),
          ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090, "protocol": "UDP"}],
          uid="11111111-2222")


def test_pod_labels_as_prometheus() -> None:
    targets = pod_targets(WEB)
    common = {
        "__meta_kubernetes_namespace": "shop", "__meta_kubernetes_pod_name": "web-5f7d8-abcde",
        "__meta_kubernetes_pod_ip": "10.0.0.5", "__meta_kubernetes_pod_ready": "true",
        "__meta_kubernetes_pod_phase": "Running", "__meta_kubernetes_pod_node_name": "node-a",
        "__meta_kubernetes_pod_host_ip": "192.168.1.10", "__meta_kubernetes_pod_uid": "11111111-2222",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "web",
        "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name": "true",
        "__meta_kubernetes_pod_label_tier": "", "__meta_kubernetes_pod_labelpresent_tier": "true",
        "__meta_kubernetes_pod_annotation_kubernetes_io_config_hash": "h1",
        "__meta_kubernetes_pod_annotationpresent_kubernetes_io_config_hash": "true",
        "__meta_kubernetes_pod_controller_kind": "ReplicaSet", "__meta_kubernetes_pod_controller_name": "web-5f7d8",
    }
    main = {**common, "__meta_kubernetes_pod_container_name": "main",
            "__meta_kubernetes_pod_container_image": "registry.example/app:1.2",
            "__meta_kubernetes_pod_container_id": "containerd://abc123", "__meta_kubernetes_pod_container_init": "false"}
    assert [t.labels for t in targets] == [
        {**main, "__address__": "10.0.0.5:8080", "__meta_kubernetes_pod_container_port_name": "http",
         "__meta_kubernetes_pod_container_port_number": "8080", "__meta_kubernetes_pod_container_port_protocol": "TCP"},
        {**main, "__address__": "10.0.0.5:9090", "__meta_kubernetes_pod_container_port_name": "",
         "__meta_kubernetes_pod_container_port_number": "9090", "__meta_kubernetes_pod_container_port_protocol": "UDP"},
        {**common, "__address__": "10.0.0.5", "__meta_kubernetes_pod_container_name": "setup",
         "__meta_kubernetes_pod_container_image": "busybox:1.36",
         "__meta_kubernetes_pod_container_id": "containerd://init111", "__meta_kubernetes_pod_container_init": "true"},
    ]
    assert all(t.source == "pod/shop/web-5f7d8-abcde" for t in targets)
    assert pod_targets(pod("pending", ip="")) == []  # no IP yet: no targets, as Prometheus
    assert pod_targets(pod("x", ready="False"))[0].labels["__meta_kubernetes_pod_ready"] == "false"


def names(discovery: KubernetesPods) -> list[tuple[str, str]]:
    return sorted({(t.labels["__meta_kubernetes_namespace"], t.labels["__meta_kubernetes_pod_name"])
                   for t in discovery.targets()})


def discoverer(fake: FakeKubernetes, tmp_path: Path, **extra: object) -> KubernetesPods:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    config = {"role": "pod", "api_server": fake.url, "bearer_token_file": str(token),
              "selectors": [{"role": "pod", "field": "spec.nodeName=node-a"}], **extra}
    return KubernetesPods(Section(config, "scrape_configs[0].kubernetes_sd_configs[0]"))


def test_list_and_watch_node_local(tmp_path: Path) -> None:
    with FakeKubernetes() as fake:
        fake.add(WEB)
        fake.add(pod("db-0", "shop", owner=("StatefulSet", "db")))
        fake.add(pod("elsewhere", "shop", node="node-b"))
        k8s = discoverer(fake, tmp_path)
        version = k8s.list()
        assert names(k8s) == [("shop", "db-0"), ("shop", "web-5f7d8-abcde")]
        path, query, headers = fake.requests[-1]
        assert path == "/api/v1/pods" and query == {"fieldSelector": "spec.nodeName=node-a"}
        assert headers["Authorization"] == "Bearer s3cret"

        fake.add(pod("api-1", "prod", labels={"app": "api"}))
        fake.add(pod("other-node", "prod", node="node-b"))
        changed = WEB | {"metadata": WEB["metadata"] | {"labels": {"app.kubernetes.io/name": "web2"}}}
        fake.modify(changed)
        fake.delete(pod("db-0", "shop"))
        version = k8s.watch("", version, timeout_s=1)
        assert names(k8s) == [("prod", "api-1"), ("shop", "web-5f7d8-abcde")]
        web = next(t for t in k8s.targets() if t.labels["__meta_kubernetes_pod_name"].startswith("web"))
        assert web.labels["__meta_kubernetes_pod_label_app_kubernetes_io_name"] == "web2"
        path, query, _ = fake.requests[-1]
        assert query["watch"] == "1" and query["fieldSelector"] == "spec.nodeName=node-a"
        assert int(version) == fake.version  # the last event seen

        fake.compact()
        with pytest.raises(Gone):
            k8s.watch("", version, timeout_s=1)


def test_run_relists_after_410(tmp_path: Path) -> None:
    with FakeKubernetes() as fake:
        fake.add(pod("a", "ns1"))
        changes: list[int] = []
        k8s = discoverer(fake, tmp_path, namespaces={"names": ["ns1"]})
        k8s.on_change = lambda: changes.append(1)
        stop = threading.Event()
        runner = threading.Thread(target=k8s.run, args=(stop, 0.1))
        runner.start()
        try:
            wait_for(lambda: names(k8s) == [("ns1", "a")])
            fake.add(pod("b", "ns1"))
            fake.add(pod("other-ns", "ns2"))
            wait_for(lambda: names(k8s) == [("ns1", "a"), ("ns1", "b")])
            fake.compact()  # history gone, watches closed: only a new list can see "c"
            fake.add_unseen(pod("c", "ns1"))
            wait_for(lambda: names(k8s) == [("ns1", "a"), ("ns1", "b"), ("ns1", "c")])
            fake.delete(pod("a", "ns1"))
            wait_for(lambda: names(k8s) == [("ns1", "b"), ("ns1", "c")])
        finally:
            stop.set()
            runner.join(timeout=10)
        assert not runner.is_alive()
        lists = [r for r in fake.requests if "watch" not in r[1]]
        assert len(lists) >= 2 and all(r[0] == "/api/v1/namespaces/ns1/pods" for r in lists)
        assert len(changes) >= 4


def test_in_cluster_over_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(account / "tls.key"), "-out", str(account / "ca.crt"),
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    (account / "token").write_text("in-cluster-token")
    monkeypatch.setattr(kubernetes, "SERVICE_ACCOUNT", str(account))
    with FakeKubernetes(tls=(str(account / "ca.crt"), str(account / "tls.key"))) as fake:
        fake.add(pod("a", "ns1"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", fake.url.rsplit(":", 1)[1])
        k8s = KubernetesPods(Section({"role": "pod"}, "kubernetes_sd_configs[0]"))
        assert k8s.connection.server == fake.url
        k8s.list()
        assert names(k8s) == [("ns1", "a")]
        assert fake.requests[-1][2]["Authorization"] == "Bearer in-cluster-token"


@pytest.mark.parametrize(("config", "message"), [
    ({"role": "node", "api_server": "http://x"}, r"^k\[0\]\.role: role 'node' is not supported \(only pod\)$"),
    ({"role": "pod", "api_server": "http://x", "tls_config": {"ca": "x"}}, r"^k\[0\]\.tls_config\.ca: unknown field$"),
    ({"role": "pod", "api_server": "http://x", "selectors": [{"role": "node", "field": "a=b"}]},
     r"^k\[0\]\.selectors\[0\]\.role: selector role 'node' is not pod"),
    ({"role": "pod", "api_server": "http://x", "kubeconfig_file": "/k"},
     r"^k\[0\]\.kubeconfig_file: not supported by lokiarrow's agent$"),
    ({"role": "pod"}, r"^k\[0\]: unable to load in-cluster configuration"),
    ({"role": "pod", "api_server": "http://x", "bearer_token": "a", "bearer_token_file": "b"},
     r"^k\[0\]: at most one of bearer_token & bearer_token_file"),
])
def test_invalid_kubernetes_config(config: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match=message):
        KubernetesPods(Section(config, "k[0]"))


def test_target_is_plain_data() -> None:
    assert Target({"a": "1"}, "s") == Target({"a": "1"}, "s")
