"""Targets to read: label sets with `__path__` and Promtail's `__meta_*` labels.

Three sources, one module each: static.py (`static_configs`), pods_dir.py
(`pods_dir_sd_configs`: the /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log layout, no
API needed) and kubernetes.py (`kubernetes_sd_configs` role pod, list + watch on the API
server). Relabeling (relabel.py) runs on a target's labels afterwards; the tailer expands its
`__path__` glob with `files`.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Protocol

PATH_LABEL = "__path__"
PATH_EXCLUDE_LABEL = "__path_exclude__"


@dataclass(frozen=True)
class Target:
    """One discovered target: its labels before relabeling, and where it came from (a source
    such as `pod/default/web-0`, so a watch event can replace or remove its targets)."""

    labels: dict[str, str]
    source: str = ""


class Discoverer(Protocol):
    """A source of targets; `targets()` is the current set, cheap, callable from any thread."""

    def targets(self) -> list[Target]: ...


def files(pattern: str, exclude: str = "") -> list[str]:
    """The regular files a target's `__path__` glob matches now (`**` crosses directories),
    without those its `__path_exclude__` glob matches; sorted."""
    if not pattern:
        return []
    found = {p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)}
    if exclude:
        found -= set(glob.glob(exclude, recursive=True))
    return sorted(found)
