"""`lokiarrow sql [path]`: DuckDB over a store's files, with the views and macros of sql/views.sql
(`logs`, `streams`, `chunks`; `label`, `level`, `json_field`, `logql_labels`).

- `-c "…"`: runs the statements, prints the last one's rows as `--format` table, csv, json (one
  object a line) or parquet (to `--output`), and exits 1 on an error.
- Otherwise a console: a statement ends with `;` and may span lines; history is kept in
  ~/.lokiarrow_sql_history; `.tables`, `.schema NAME`, `.help` and `.quit` as DuckDB's shell has them.
Reads only: a running server is not disturbed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import duckdb

HISTORY = Path.home() / ".lokiarrow_sql_history"
HELP = """.tables          the views
.schema NAME     a view's columns
.help            this
.quit            leave (or Ctrl-D)
Statements end with `;`. Views: logs (tenant, day, timestamp, ts, stream_id, labels, line, metadata),
streams (the index), chunks (as stored). Macros: label(labels, name), level(line),
json_field(line, 'a.b'), logql_labels(stream_id)."""


def sql_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="./data",
                        help="the store's data folder (default ./data) or object storage URL (s3://bucket/prefix, "
                             "with AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID... from the environment)")
    parser.add_argument("--tenant", default="*", help="one tenant's data (default: every tenant)")
    parser.add_argument("-c", "--command", dest="sql", help="run these statements and exit")
    parser.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    parser.add_argument("--output", help="write the rows to this file (parquet needs one)")


def command(args: argparse.Namespace) -> int:
    import duckdb

    from lokiarrow.api import views
    from lokiarrow.errors import LokiError
    from lokiarrow.store.fs import Root

    try:
        if "://" in args.path:
            root = Root(args.path)
            root.check()
            con = views(root.url, args.tenant, root.fs)
        elif not Path(args.path).is_dir():
            print(f"error: no store at {args.path}", file=sys.stderr)
            return 1
        else:
            con = views(os.path.abspath(args.path), args.tenant)
    except LokiError as exc:   # an unreadable bucket, or a tenant id that names no folder (`../x`)
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    try:
        if args.sql is not None:
            try:
                return _run_once(con, args.sql, args.format, args.output)
            except (duckdb.Error, OSError) as exc:
                print(f"Error: {exc}", file=sys.stderr)
                return 1
        _console(con, sys.stdin, sys.stdout)
        return 0
    finally:
        con.close()


def _run_once(con: duckdb.DuckDBPyConnection, text: str, fmt: str, output: str | None) -> int:
    import polars as pl

    relation = con.sql(text)
    if relation is None:
        return 0
    if fmt == "table":
        _write_text(str(relation), output)
        return 0
    frame = pl.from_arrow(relation.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    if fmt == "parquet":
        if not output:
            print("error: --format parquet needs --output FILE", file=sys.stderr)
            return 1
        frame.write_parquet(output)
    elif fmt == "csv":
        _write_text(frame.write_csv(), output)
    else:
        _write_text(frame.write_ndjson(), output)
    return 0


def _write_text(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _console(con: duckdb.DuckDBPyConnection, stdin: TextIO, out: TextIO) -> None:
    import duckdb

    interactive = stdin.isatty()
    if interactive:
        _history()
        out.write("lokiarrow sql: DuckDB over the store. .help for help, .quit to leave.\n")
    pending: list[str] = []
    while True:
        try:
            line = input(("lokiarrow> " if not pending else "     ...> ") if interactive else "")
        except EOFError:
            break
        stripped = line.strip()
        if not pending and stripped.startswith("."):
            if stripped in (".quit", ".exit"):
                break
            out.write(_dot(con, stripped) + "\n")
            continue
        if stripped:
            pending.append(line)
        if stripped.endswith(";"):
            try:
                relation = con.sql("\n".join(pending))
                if relation is not None:
                    out.write(f"{relation}\n")
            except duckdb.Error as exc:
                out.write(f"Error: {exc}\n")
            pending = []
        out.flush()


def _dot(con: duckdb.DuckDBPyConnection, text: str) -> str:
    word, _, rest = text.partition(" ")
    if word == ".tables":
        return "  ".join(sorted(r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal")
                                .fetchall()))
    if word == ".schema" and rest.strip():
        rows = con.sql("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                       "ORDER BY column_index", params=[rest.strip()]).fetchall()
        return "\n".join(f"{name} {kind}" for name, kind in rows) or f"no view {rest.strip()}"
    if word == ".help":
        return HELP
    return f"unknown command {word}: .help for help"


def _history() -> None:
    try:
        import readline
    except ImportError:   # not every platform has it: a console without history
        return
    import atexit
    if HISTORY.exists():
        readline.read_history_file(HISTORY)
    atexit.register(readline.write_history_file, HISTORY)
