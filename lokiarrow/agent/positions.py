"""Promtail's positions file: how far each file was read (and shipped), kept across restarts.

The file is Promtail's own YAML, so an agent can take over a Promtail DaemonSet's positions:

    positions:
        /var/log/pods/ns_pod_uid/app/0.log: "12345"

Writes are atomic (a `<filename>-new` temp file, fsync, rename, fsync of the directory), so a
crash leaves either the old or the new file, never half of one. Every `sync_period` the file is
saved and the entries of files that no longer exist are dropped, as Promtail does (keys starting
with `cursor-` or `journal-` are not files and are kept).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass

import yaml

from lokiarrow.agent.settings import Section

log = logging.getLogger(__name__)

SECOND_NS = 1_000_000_000
_NOT_FILES = ("cursor-", "journal-")
_PLAIN_KEY = re.compile(r"/[A-Za-z0-9_./@+=,~-]*")


@dataclass(frozen=True)
class PositionsConfig:
    """Promtail's `positions` section, with its defaults."""

    filename: str = "/var/log/positions.yaml"
    sync_period_ns: int = 10 * SECOND_NS
    ignore_invalid_yaml: bool = False

    @classmethod
    def from_section(cls, section: Section) -> PositionsConfig:
        config = cls(
            filename=section.string("filename", cls.filename) or cls.filename,
            sync_period_ns=section.duration_ns("sync_period", cls.sync_period_ns) or cls.sync_period_ns,
            ignore_invalid_yaml=bool(section.boolean("ignore_invalid_yaml", False)),
        )
        section.done()
        return config


def render(positions: dict[str, str]) -> str:
    """The file's text as Promtail (Go yaml.v3, 4-space indent, sorted keys) writes it."""
    if not positions:
        return "positions: {}\n"
    out = ["positions:\n"]
    for key in sorted(positions):
        name = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
        out.append(f"    {name}: {json.dumps(positions[key], ensure_ascii=False)}\n")
    return "".join(out)


def read_file(config: PositionsConfig) -> dict[str, str]:
    """The saved positions; {} when the file is missing or empty (or invalid and ignored)."""
    path = os.path.normpath(config.filename)
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    try:
        data = yaml.safe_load(text)
        if data is None:
            return {}
        if not isinstance(data, dict) or set(data) - {"positions"}:
            raise ValueError("expected a mapping with the single field positions")
        found = data.get("positions") or {}
        if not isinstance(found, dict):
            raise ValueError("positions must be a mapping")
        return {str(k): str(v) for k, v in found.items()}
    except (yaml.YAMLError, ValueError) as exc:
        if config.ignore_invalid_yaml:
            return {}
        raise ValueError(f"invalid yaml positions file [{path}]: {exc}") from None


def write_file(filename: str, positions: dict[str, str]) -> None:
    """Replace the file atomically and durably."""
    target = os.path.normpath(filename)
    temp = target + "-new"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, render(positions).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, target)
    dir_fd = os.open(os.path.dirname(target) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Positions:
    """Offsets per file, thread-safe; `start()` saves them every sync period, `stop()` saves once
    more. A file's offset only ever says how far its lines were shipped (the tailer's contract)."""

    def __init__(self, config: PositionsConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._positions = read_file(config)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, path: str) -> int:
        """The saved byte offset; 0 for an unknown file."""
        with self._lock:
            value = self._positions.get(path)
        return int(value) if value is not None else 0

    def get_string(self, path: str) -> str:
        with self._lock:
            return self._positions.get(path, "")

    def put(self, path: str, offset: int) -> None:
        self.put_string(path, str(offset))

    def put_string(self, path: str, value: str) -> None:
        with self._lock:
            self._positions[path] = value

    def remove(self, path: str) -> None:
        with self._lock:
            self._positions.pop(path, None)

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._positions)

    def save(self) -> None:
        write_file(self.config.filename, self.snapshot())

    def cleanup(self) -> None:
        """Forget the files that are gone."""
        for key in self.snapshot():
            if not key.startswith(_NOT_FILES) and not os.path.exists(key):
                self.remove(key)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="positions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.save()

    def _run(self) -> None:
        while not self._stop.wait(self.config.sync_period_ns / SECOND_NS):
            try:
                self.save()
            except OSError as exc:
                log.error("error writing positions file: %s", exc)
            self.cleanup()
