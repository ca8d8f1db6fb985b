"""The agent: a Promtail replacement (`lokiarrow agent -config.file promtail.yaml`).

A line's way through it, one module each:
  discovery/   targets: files to read with their labels (static globs, the /var/log/pods layout,
               Kubernetes pods from the API server), as Promtail's `__meta_*` / `__path__` labels
  relabel.py   Prometheus relabeling of a target's labels; `__`-prefixed labels dropped after it
  tailer.py    follows each target's files (rotation, truncation, deletion), from positions.py
  stages/      Promtail's pipeline stages, run on each entry (entry.py) in order
  client.py    batches entries per tenant and pushes them (protobuf + snappy) with retries
  config.py    Promtail's YAML, each section read by the module that uses it (settings.py)
"""
