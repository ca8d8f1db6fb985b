"""The agent at work: targets -> files -> lines -> stages -> clients, positions moved on acknowledgement.

1. Every `target_config.sync_period` (and whenever a Kubernetes watch changes something) each job's
   targets are discovered, relabeled (a target whose rules drop it, or without `__path__`, is
   left out) and handed to the tailer with their labels (`__`-prefixed ones dropped).
2. The tailer's batches of lines run through their job's pipeline, each line an entry stamped
   with the time it was read (a `timestamp` stage may change it).
3. The entries go to every client. A batch of lines is acknowledged to the tailer (which moves
   its position) once every client has acknowledged, or given up on, every entry made from it,
   and no stage holds any of its lines (a multiline block, a CRI partial line), so a crash
   re-reads what was not shipped and never skips a line.
4. At stop: the pipelines' held entries are flushed, the clients send what is pending, and the
   positions are written once more.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from lokiarrow.agent import relabel, stages
from lokiarrow.agent.client import Client, ClientConfig
from lokiarrow.agent.config import AgentConfig, ScrapeConfig
from lokiarrow.agent.discovery import PATH_EXCLUDE_LABEL, PATH_LABEL, Discoverer
from lokiarrow.agent.discovery.kubernetes import KubernetesPods
from lokiarrow.agent.discovery.pods_dir import PodsDir
from lokiarrow.agent.discovery.static import Static
from lokiarrow.agent.entry import Entry
from lokiarrow.agent.metrics import AgentMetrics
from lokiarrow.agent.positions import Positions, PositionsConfig
from lokiarrow.agent.tailer import Batch, Tailer, Target

log = logging.getLogger(__name__)

JOB_LABEL = "__lokiarrow_job__"  # which job a tailed file belongs to; never sent
STOP_TIMEOUT_S = 10.0


class _Countdown:
    """Calls `then` once, when `left` falls to zero. For a read batch (`then` acknowledges it to
    the tailer) `left` counts the shipments and stage holds of its lines; for a shipment (one
    list of entries sent to every client) the entries the clients have not reported yet.
    Thread-safe: clients report from their own threads."""

    __slots__ = ("left", "lock", "then")

    def __init__(self, left: int, then: Callable[[], object]) -> None:
        self.left = left
        self.then = then
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.left += 1

    def done(self, n: int = 1) -> None:
        with self.lock:
            self.left -= n
            finished = self.left == 0
        if finished:
            self.then()


@dataclass
class Job:
    config: ScrapeConfig
    discoverers: list[Discoverer]
    rules: list[relabel.Rule]
    pipeline: stages.Pipeline
    held: dict[int, _Countdown] = field(default_factory=dict)   # read batches its stages hold lines of


class Agent:
    def __init__(self, config: AgentConfig, registry: CollectorRegistry, dry_run: bool = False) -> None:
        self.config = config
        self.dry_run = dry_run
        self.metrics = AgentMetrics(registry)
        self.positions = Positions(PositionsConfig.from_section(config.positions))
        self.tailer = Tailer(self.positions, poll_interval=config.min_poll_ns / 1e9)
        self.metrics.watch_files(self.tailer.stats)
        self._changed = threading.Event()
        self.jobs = [self._job(scrape) for scrape in config.scrape_configs]
        self.clients = [] if dry_run else [
            Client(ClientConfig.read(section), self.metrics, on_batch=self._shipped) for section in config.clients]

    def _job(self, scrape: ScrapeConfig) -> Job:
        found: list[Discoverer] = []
        if scrape.static_configs:
            found.append(Static(scrape.static_configs))
        found += [PodsDir.read(s) for s in scrape.pods_dir_sd_configs]
        found += [KubernetesPods(s, on_change=self._changed.set) for s in scrape.kubernetes_sd_configs]
        return Job(scrape, found, relabel.parse(scrape.relabel_configs), stages.build(scrape.pipeline_stages))

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set, then finish cleanly."""
        self.positions.start()
        watchers = [threading.Thread(target=d.run, args=(stop,), daemon=True, name="kubernetes")
                    for job in self.jobs for d in job.discoverers if isinstance(d, KubernetesPods)]
        for w in watchers:
            w.start()
        self.sync()
        self.tailer.start()
        next_sync = time.monotonic() + self.config.sync_period_ns / 1e9
        try:
            while not stop.is_set():
                try:
                    batch = self.tailer.batches.get(timeout=0.1)
                except queue.Empty:
                    batch = None
                if batch is not None:
                    self._ship(batch)
                self._flush_held()
                if self._changed.is_set() or time.monotonic() >= next_sync:
                    self._changed.clear()
                    self.sync()
                    next_sync = time.monotonic() + self.config.sync_period_ns / 1e9
        finally:
            self.tailer.stop()
            self._flush_held(time.time_ns() + 10**18)  # everything held is due now
            for client in self.clients:
                client.stop(timeout=STOP_TIMEOUT_S)
            self.positions.stop()

    def sync(self) -> None:
        """Discover, relabel and hand the targets to the tailer."""
        targets = []
        for i, job in enumerate(self.jobs):
            for found in (t for d in job.discoverers for t in d.targets()):
                labels = relabel.apply(job.rules, found.labels)
                if labels is None or not labels.get(PATH_LABEL):
                    continue
                targets.append(Target(labels[PATH_LABEL], {**relabel.drop_internal(labels), JOB_LABEL: str(i)},
                                      labels.get(PATH_EXCLUDE_LABEL, "")))
        self.tailer.set_targets(targets)

    def _ship(self, batch: Batch) -> None:
        job = self.jobs[int(batch.labels[JOB_LABEL])]
        labels = {k: v for k, v in batch.labels.items() if k != JOB_LABEL}
        read = _Countdown(1, batch.ack)   # the 1 is this call's, given up at its end
        origins = [read]
        entries = [out for line in batch.lines
                   for out in job.pipeline.process(Entry(dict(labels), batch.read_ns, line, origins=origins))]
        self.metrics.read_lines.labels(batch.path).inc(len(batch.lines))
        self._send(entries)
        self._track_held(job)
        read.done()

    def _flush_held(self, now_ns: int | None = None) -> None:
        """Entries stages held (multiline, cri partials) that are due."""
        now = time.time_ns() if now_ns is None else now_ns
        for job in self.jobs:
            self._send(job.pipeline.flush(now))
            self._track_held(job)

    def _send(self, entries: list[Entry]) -> None:
        """Entries to every client, as one shipment holding the read batches they came from."""
        if self.dry_run:
            self._print(entries)
        if not entries or self.dry_run or not self.clients:
            return
        lists = {id(e.origins): e.origins for e in entries}   # a read block's entries share one list
        origins = list({id(o): o for found in lists.values() for o in found}.values())
        for origin in origins:
            origin.add()

        def shipped() -> None:
            for origin in origins:
                origin.done()
        shipment = _Countdown(len(entries) * len(self.clients), shipped)
        for client in self.clients:
            client.send(entries, shipment)

    @staticmethod
    def _track_held(job: Job) -> None:
        """Hold the read batches whose lines the job's stages hold now; let go of the others
        (after `_send`, so that a released entry's shipment holds them first)."""
        now = {id(o): o for o in job.pipeline.held_origins()}
        for key, origin in now.items():
            if key not in job.held:
                origin.add()
        for key, origin in job.held.items():
            if key not in now:
                origin.done()
        job.held = now

    def _shipped(self, marks: list[tuple[Any, int]], acknowledged: bool) -> None:
        # dropped batches move positions too (the client counted them): Promtail's at-least-once
        # ends at max_retries
        for shipment, entries in marks:
            shipment.done(entries)

    def _print(self, entries: list[Entry]) -> None:
        """`-dry-run`: the entries on stdout instead of to a server."""
        for e in entries:
            sys.stdout.write(orjson.dumps({"labels": e.labels, "ts": e.ts, "line": e.line}).decode() + "\n")
        sys.stdout.flush()
