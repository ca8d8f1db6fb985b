"""The agent's Prometheus metrics, under Promtail's names and labels, in a registry of its own.

A registry per agent (not the process-wide default) keeps tests and several agents in one process
apart; `/metrics` renders `AgentMetrics.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from lokiarrow.agent.tailer import FileStats

# Promtail's reasons for dropping a batch (clients/pkg/promtail/client).
REASON_GENERIC = "ingester_error"
REASON_RATE_LIMITED = "rate_limited"


class AgentMetrics:
    """Client (shipping) and file (reading) metrics, as Promtail names them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.encoded_bytes = Counter("promtail_encoded_bytes", "Number of bytes encoded and ready to send.",
                                     ["host"], registry=r)
        self.sent_bytes = Counter("promtail_sent_bytes", "Number of bytes sent.", ["host"], registry=r)
        self.sent_entries = Counter("promtail_sent_entries", "Number of log entries sent to the ingester.",
                                    ["host"], registry=r)
        self.dropped_bytes = Counter("promtail_dropped_bytes",
                                     "Number of bytes dropped because failed to be sent to the ingester "
                                     "after all retries.", ["host", "reason", "tenant"], registry=r)
        self.dropped_entries = Counter("promtail_dropped_entries",
                                       "Number of log entries dropped because failed to be sent to the "
                                       "ingester after all retries.", ["host", "reason", "tenant"], registry=r)
        self.request_duration = Histogram("promtail_request_duration_seconds", "Duration of send requests.",
                                          ["status_code", "host"], registry=r)
        self.batch_retries = Counter("promtail_batch_retries", "Number of times batches has had to be retried.",
                                     ["host", "tenant"], registry=r)
        self.read_lines = Counter("promtail_read_lines", "Number of lines read.", ["path"], registry=r)

    def watch_files(self, stats: Callable[[], list[FileStats]]) -> None:
        """Export the files being read, as `stats()` tells at each scrape."""
        self.registry.register(_FileCollector(stats))


class _FileCollector:
    """Per file: Promtail's gauges (bytes read, file size, active files), and the shipped position
    (what the positions file will hold) with the lag behind the file's end."""

    def __init__(self, stats: Callable[[], list[FileStats]]) -> None:
        self.stats = stats

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        files = self.stats()
        read = GaugeMetricFamily("promtail_read_bytes_total", "Number of bytes read.", labels=["path"])
        size = GaugeMetricFamily("promtail_file_bytes_total", "Number of bytes total.", labels=["path"])
        shipped = GaugeMetricFamily("lokiarrow_agent_file_position_bytes",
                                    "Offset up to which the file's lines were shipped.", labels=["path"])
        lag = GaugeMetricFamily("lokiarrow_agent_file_lag_bytes", "Bytes of the file not shipped yet.",
                                labels=["path"])
        for f in files:
            read.add_metric([f.path], f.read)
            size.add_metric([f.path], f.size)
            shipped.add_metric([f.path], f.position)
            lag.add_metric([f.path], f.lag)
        yield from (read, size, shipped, lag)
        yield GaugeMetricFamily("promtail_files_active_total", "Number of active files.", value=len(files))
