"""Every LogQL query the test suite sends is valid to Grafana's own grammar, @grafana/lezer-logql.

Grafana's query editor parses with this grammar (node/parse_logql.js reports its error nodes), so
a query it rejects is one a user could not have typed there, and a `format_query` answer it
rejects would be marked as an error in the editor. The queries are collected from:
1. the conformance cases Loki answered with 200 (those it refused are left out);
2. tests/logql/identity.logql (canonical forms the printer must give back);
3. every string constant of the test folders in SCANNED (server, querier, LogQL parser and printer,
   SQL, ingest) that looks like a query and that lokiarrow's `format_query` accepts (the constants
   it refuses are the tests' bad inputs or are not LogQL at all).
Each accepted query and lokiarrow's `format_query` form of it must parse without error nodes.

Lezer lags Loki: LEZER_LAGS lists, with the reason, the queries Loki accepts and lezer 0.4.2 does not.
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.harness import load_jsonl

TESTS = Path(__file__).resolve().parents[1]
NODE = Path(__file__).resolve().parent / "node"
SCANNED = ("server", "exec", "logql", "sql", "ingest")

# Queries Loki accepts that lezer-logql 0.4.2 marks as errors, with the reason (Loki's lexer and
# grammar, pkg/logql/syntax lex.go and expr.y, against lezer's).
GO_COMMENTS = "Loki's scanner skips Go comments (// and /* */); lezer knows only # comments"
LEZER_LAGS: dict[str, str] = {
    '{a="b"} # |= "x"\n |= "y" // z\n /* w */': GO_COMMENTS,
    '{app="foo"}\n  |= "x"  // go comment\n': GO_COMMENTS,
    '{app="foo"} | d>=5s, s<1KB x=ip("1.2.3.4")':
        "Loki's grammar joins label filters written side by side with `and` (labelFilter labelFilter); "
        "lezer wants `,`, `and` or `or` between them",
    '{é="b"}': "Loki's identifiers are Go text/scanner identifiers (Unicode letters); lezer's are ASCII",
}


def lezer_errors(queries: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{query: lezer's error nodes} for each query."""
    if not (NODE / "node_modules" / "@grafana" / "lezer-logql").is_dir():
        pytest.fail("the npm packages are missing: run `npm ci` in tests/clients/node (./run.sh test does)")
    done = subprocess.run(["node", "parse_logql.js"], cwd=NODE, input=json.dumps(queries),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stderr}"
    return {r["query"]: r["errors"] for r in json.loads(done.stdout)}


def conformance_queries() -> list[str]:
    queries: list[str] = []
    for case in load_jsonl("cases.jsonl.gz"):
        if case["expected"]["status"] != 200:
            continue
        params = case["params"]
        matches = params.get("match[]", [])
        queries += [params["query"]] if "query" in params else []
        queries += [matches] if isinstance(matches, str) else matches
    return queries


def identity_queries() -> list[str]:
    text = (TESTS / "logql" / "identity.logql").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def scanned_constants() -> list[str]:
    """String constants of the scanned test folders that could be LogQL (a selector or a call)."""
    found: set[str] = set()
    for folder in SCANNED:
        for path in sorted((TESTS / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and looks_like_logql(node.value):
                    found.add(node.value)
    return sorted(found)


def looks_like_logql(text: str) -> bool:
    head = text.lstrip()
    return head.startswith("{") or (head[:1].isalpha() and "(" in head and "{" in head)


def formatted(client: httpx.Client, query: str) -> str | None:
    """lokiarrow's `format_query` of a query, None when it refuses it."""
    r = client.get("/loki/api/v1/format_query", params={"query": query})
    assert r.status_code in (200, 400), f"{query!r}: {r.status_code} {r.text}"
    return str(r.json()["data"]) if r.status_code == 200 else None


def test_the_collected_queries_cover_the_suite() -> None:
    assert len(conformance_queries()) >= 200
    assert len(identity_queries()) >= 40
    assert len(scanned_constants()) >= 300


def test_every_query_the_suite_sends_is_valid_logql_to_lezer(client: httpx.Client) -> None:
    from_conformance = conformance_queries() + identity_queries()
    accepted = {q for q in scanned_constants() if formatted(client, q) is not None}
    queries = sorted(set(from_conformance) | accepted)
    printed: dict[str, str] = {}
    for query in queries:
        canonical = formatted(client, query)
        assert canonical is not None or query not in from_conformance, f"format_query refused {query!r}"
        if canonical is not None:
            printed[query] = canonical
    errors = lezer_errors(sorted(set(queries) | set(printed.values())))
    rejected = {q: e for q, e in errors.items() if e and q not in LEZER_LAGS}
    assert not rejected, json.dumps(rejected, indent=1, ensure_ascii=False)
    assert all(q in errors and errors[q] for q in LEZER_LAGS), "a lag in LEZER_LAGS no longer happens"


@pytest.mark.parametrize("query", ['{app="a"', '{app="a"} |= ', 'sum(rate({app="a"}[5m]) by (x)', "{app=}"])
def test_lezer_reports_broken_queries(query: str) -> None:
    assert lezer_errors([query])[query], f"lezer accepted {query!r}"
