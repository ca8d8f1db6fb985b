"""Inputs coverage-guided fuzzing (bench/fuzz_atheris.py) found that once broke a contract, kept as
regression cases: (generator target, input), replayed by tests/fuzz/test_atheris.py through the
target's check in tests/fuzz/generators.py."""

from __future__ import annotations

from typing import Any

REGRESSIONS: list[tuple[str, Any]] = [
    # a time zone name too long for a file name reached zoneinfo (OSError: File name too long)
    ("template", ('{{ range $i, $v := . }}{{ $v }}{{ break }}{{ end }}{{ with $x := "a" }}{{ $x | toDateInZone "-006" "'
                  + "\ufffd" * 116 + 'UTC" }}{{ end }}', {"app": "x=1 y=2", "level": "1"})),
    # ... and a zone name that is a folder of the zone database (IsADirectoryError), in a template and a stage
    ("template", ('{{ toDateInZone "2006" "America" "2020" }}', {"app": "a", "level": "1"})),
    ("promtail_config", "scrape_configs:\n- job_name: a\n  pipeline_stages:\n"
                        "  - timestamp: {source: ts, format: RFC3339, location: Etc}\n"),
    # unknown keys that YAML read as null or as a number were sorted with strings (TypeError)
    ("promtail_config", "s\ufffderver:\n hl ipt_tsten{_port: 0\n?"),
    ("promtail_config", "server:\n  1: a\n  b: 2\n"),
    # `eq` of a missing label (nil in the Promtail dialect) and the data map fell through to `<` (TypeError)
    ("template", ("{\x01\x00\x00\x00{ { wspace{pace{  }}{{- eq .right . -}}wspace{pace{  }}{{- eq }}{;-}}",
                  {"app": "\x00", "level": ""})),
    ("template", ("{{ eq .missing . }}{{ ne . .missing }}", {"app": "a", "level": "1"})),
]
