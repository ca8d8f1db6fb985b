"""Kubernetes pods from the kubelet's log directory, with no API server.

The kubelet writes `<root>/<namespace>_<pod>_<uid>/<container>/<restart>.log`; each container
directory becomes one target whose `__path__` is `<dir>/*.log` and whose `__meta_kubernetes_*`
labels are read from the names. Rescanned at each call, so new pods appear at the next sync.

A scrape config asks for it with `pods_dir_sd_configs: [{path: /var/log/pods}]` (lokiarrow's
own, beside Promtail's discoveries; `path` defaults to /var/log/pods).
"""

from __future__ import annotations

import os

from lokiarrow.agent.discovery import PATH_LABEL, Target
from lokiarrow.agent.settings import ConfigError, Section

DEFAULT_ROOT = "/var/log/pods"


class PodsDir:
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root

    @classmethod
    def read(cls, s: Section) -> PodsDir:
        root = s.string("path", DEFAULT_ROOT) or ""
        s.done()
        if not root:
            raise ConfigError(s.at("path"), "must name the kubelet's pod log folder")
        return cls(root)

    def targets(self) -> list[Target]:
        out: list[Target] = []
        try:
            pods = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return out
        for pod in pods:
            parts = pod.name.split("_")
            if len(parts) != 3 or not all(parts) or not pod.is_dir():
                continue
            namespace, name, uid = parts
            for container in sorted(os.scandir(pod.path), key=lambda e: e.name):
                if not container.is_dir():
                    continue
                labels = {
                    "__meta_kubernetes_namespace": namespace,
                    "__meta_kubernetes_pod_name": name,
                    "__meta_kubernetes_pod_uid": uid,
                    "__meta_kubernetes_pod_container_name": container.name,
                    PATH_LABEL: os.path.join(container.path, "*.log"),
                }
                out.append(Target(labels, f"pod/{namespace}/{name}"))
        return out
