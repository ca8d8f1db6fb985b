"""Inputs the fuzzers found that once broke a contract, kept as regression cases: (target, input)."""

from __future__ import annotations

from typing import Any

REGRESSIONS: list[tuple[str, Any]] = [
    # a stage given a list where it takes a mapping reached the builder as a list (AttributeError)
    ("promtail_config", "scrape_configs:\n- job_name: a\n  pipeline_stages:\n  - limit: [1, a]\n"),
    ("promtail_config", "scrape_configs:\n- job_name: a\n  pipeline_stages:\n  - tenant: []\n"),
    # ceil/floor/round of an infinite or NaN number (OverflowError, ValueError)
    ("template", ("{{ ceil .level }}{{ floor .level }}", {"level": "1e400"})),
    ("template", ("{{ round .level 2 }}", {"level": "NaN"})),
    ("template", ("{{ round .level 400 }}{{ round 1.5 -400 }}", {"level": "1"})),
    # decimal arithmetic on infinities and quotients longer than the context (InvalidOperation)
    ("template", ("{{ subf .level .level }}{{ mulf .level 2 }}", {"level": "1e400"})),
    ("template", ("{{ divf 1e308 .level }}", {"level": "-5"})),
    # strings of absurd sizes (MemoryError, OverflowError)
    ("template", ("{{ indent 9223372036854775807 .level }}", {"level": "x"})),
    ("template", ("{{ nindent 1e308 .level }}", {"level": "x"})),
    ("template", ("{{ repeat 100000000 \"abc\" }}{{ alignRight 100000000 \"a\" }}", {"level": "x"})),
    # a time beyond what can be formatted (OverflowError)
    ("template", ("{{ date .level 9223372036854775807 }}", {"level": "x"})),
    # a `\x99` subject of a regex function reached RE2 (UnicodeEncodeError)
    ("template", ('{{ "\\x99" | count "a" | regexReplaceAllLiteral "[" "x" }}{{ regexReplaceAll "a" "\\x99" "\\xff" }}',
                  {"level": "x"})),
    # a limit stage's burst of 1e400 (OverflowError)
    ("promtail_config", "scrape_configs:\n- job_name: a\n  pipeline_stages:\n  - limit: {rate: 10, burst: 1e400}\n"),
    ("promtail_config", "scrape_configs:\n- job_name: a\n  pipeline_stages:\n  - limit: {rate: .nan, burst: 1}\n"),
    # a multi-character char constant reached ord() (TypeError)
    ("template", ("{{- 'hasPrefix .app' .app -}}", {"level": "x"})),
    # a `\x99` string literal: raw bytes that are not UTF-8 (UnicodeEncodeError in len, b64enc, urlencode)
    ("template", ('{{ len "\\x99" }}{{ b64enc "\\x99" }}{{ urlencode "\\xff" }}{{ regexReplaceAll "\\x99" .a "b" }}',
                  {"level": "x"})),
    # a regex that is not UTF-8 reached RE2 (UnicodeEncodeError); a filter for such bytes reached Arrow
    ("logql_parser", '{app=~"\\x99999999999999999999999999999941"} | kep app'),
    ("logql_parser", 'label_replace(rate({app="a"} |~ "\\xff" | regexp "\\x99" [1m]), "a", "b", "c", "\\x99")'),
    ("logql_query", '{app="a"} |= "\\x99" | x="\\x99" | line_format "\\x99{{.app}}" | label_format y="\\xff"'),
    ("logql_query", '{app="a"} | line_format "{{ \\"\\\\x99\\" | upper }}"'),
    # a null line or timestamp in a JSON push passed the bulk path as an Arrow null (AttributeError)
    ("push_json", (b'{"streams": [{"stream": {"a": "1"}, "values": [["0", "aaaa"], ["0", null]]}]}',
                   "application/json", None)),
    ("push_json", (b'{"streams": [{"stream": {"a": "1"}, "values": [[null, "x"]]}]}', "application/json", None)),
]
