"""The server's Prometheus metrics, named as Loki names the same things."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.lines_received = Counter(
            "loki_distributor_lines_received", "Log lines received, by tenant.", ["tenant"],
            registry=self.registry)
        self.bytes_received = Counter(
            "loki_distributor_bytes_received", "Bytes of log lines received, by tenant.", ["tenant"],
            registry=self.registry)
        self.discarded = Counter(
            "loki_discarded_samples", "Entries rejected, by reason.", ["reason", "tenant"],
            registry=self.registry)
        self.requests = Histogram(
            "loki_request_duration_seconds", "Time spent serving HTTP requests.",
            ["method", "route", "status_code"], registry=self.registry)
        self.queries = Counter(
            "lokiarrow_queries", "Queries answered, by endpoint and outcome.", ["endpoint", "status"],
            registry=self.registry)
