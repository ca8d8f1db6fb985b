"""The agent's Prometheus metrics, under Promtail's names and labels, in a registry of its own.

A registry per agent (not the process-wide default) keeps tests and several agents in one process
apart; `/metrics` renders `AgentMetrics.registry`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.read_bytes = Counter("promtail_read_bytes", "Number of bytes read.", ["path"], registry=r)
        self.file_bytes = Gauge("promtail_file_bytes_total", "Number of bytes total.", ["path"], registry=r)
        self.read_lines = Counter("promtail_read_lines", "Number of lines read.", ["path"], registry=r)
        self.files_active = Gauge("promtail_files_active_total", "Number of active files.", registry=r)
