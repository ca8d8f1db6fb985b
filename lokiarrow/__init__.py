"""lokiarrow: a log store that speaks Grafana Loki's protocols and keeps its data as Parquet."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`lokiarrow.open` and `lokiarrow.connect` (lokiarrow/api.py), imported on first use: the
    server and the agent do not load what notebooks need."""
    if name in ("open", "connect"):
        from lokiarrow import api
        return getattr(api, name)
    raise AttributeError(f"module 'lokiarrow' has no attribute {name!r}")
