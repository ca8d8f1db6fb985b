"""lokiarrow: a log store that speaks Grafana Loki's protocols and keeps its data as Parquet."""

__version__ = "0.1.0"
