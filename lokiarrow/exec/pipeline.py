"""A log query's pipeline after the scan, over Arrow batches: parsers, label filters, formatting.

1. `begin`: each row's labels as columns: the stream's labels (one lookup per stream, then a
   take), then structured metadata (a name that is also a stream label gets `_extracted`).
2. Stages in order, each over the whole batch: line filters (Arrow masks), parsers
   (`exec/parsers`; within one pipeline the first value a name gets is kept), label filters
   (`exec/label_filters`), `line_format` / `label_format` (templates, per row), `drop` / `keep`,
   `decolorize`.
3. `finish`: each row's final label set as a map column `labels` (ordered by name), with `__error__` and
   `__error_details__` where a stage failed; empty values are left out, as Loki leaves them out.
   Entries the pipeline made identical (labels, time, line) are kept once.

The leading line filters are not run here: the scan applies them (SQL or Arrow) before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.compile.filters import line_filters_mask, sql_expressible
from lokiarrow.errors import Unsupported
from lokiarrow.exec import parsers
from lokiarrow.exec.label_filters import FilterState, evaluate
from lokiarrow.logql import ast
from lokiarrow.logql.template import TemplateExecError, compile_template
from lokiarrow.model import Labels, Matcher

_PARSERS = (ast.JsonParser, ast.LogfmtParser, ast.RegexpParser, ast.PatternParser, ast.UnpackParser,
            ast.Decolorize)
LABELS_TYPE = pa.map_(pa.string(), pa.string())


def split(stages: tuple[ast.Stage, ...]) -> tuple[tuple[ast.LineFilter, ...], tuple[ast.Stage, ...]]:
    """The leading line filters (for the scan) and the rest of the pipeline (for `run`)."""
    k = 0
    while k < len(stages) and isinstance(stages[k], ast.LineFilter) and sql_expressible(stages[k]):  # type: ignore[arg-type]
        k += 1
    return tuple(stages[:k]), tuple(stages[k:])  # type: ignore[arg-type]


@dataclass
class Rows:
    """A batch in flight: the scanned rows, their labels as columns, their errors."""

    table: pa.Table
    labels: dict[str, pa.Array]
    error: pa.Array
    details: pa.Array

    def keep(self, mask: np.ndarray | pa.Array) -> Rows:
        arrow_mask = pa.array(mask) if isinstance(mask, np.ndarray) else mask
        return Rows(self.table.filter(arrow_mask), {k: v.filter(arrow_mask) for k, v in self.labels.items()},
                    self.error.filter(arrow_mask), self.details.filter(arrow_mask))

    def set_line(self, line: pa.Array) -> None:
        i = self.table.column_names.index("line")
        self.table = self.table.set_column(i, "line", line)


def begin(table: pa.Table, labels_of: dict[int, Labels]) -> Rows:
    n = table.num_rows
    sids = table.column("stream_id")
    streams = pc.unique(sids)
    positions = pc.index_in(sids, value_set=streams)
    stream_labels = [labels_of[s] for s in streams.to_pylist()]
    names = sorted({name for labels in stream_labels for name in labels})
    columns: dict[str, pa.Array] = {}
    for name in names:
        per_stream = pa.array([labels.get(name) for labels in stream_labels], pa.string())
        columns[name] = per_stream.take(positions)
    if "metadata" in table.column_names and n:
        metadata = table.column("metadata").combine_chunks()
        keys = pc.unique(metadata.keys).to_pylist()
        for key in keys:
            if key is None:
                continue
            value = pc.map_lookup(metadata, pa.scalar(key, pa.string()), "first")
            stream = columns.get(key)
            if stream is None:
                columns[key] = value
                continue
            # per row: only where the entry's stream has that label is the metadata renamed
            shadowed = stream.is_valid()
            columns[key] = pc.coalesce(stream, pc.if_else(shadowed, None, value))
            extracted = pc.if_else(shadowed, value, None)
            old = columns.get(f"{key}_extracted")
            columns[f"{key}_extracted"] = extracted if old is None else pc.coalesce(old, extracted)
    nulls = pa.nulls(n, pa.string())
    return Rows(table, columns, nulls, nulls)


def run(stages: tuple[ast.Stage, ...], rows: Rows) -> Rows:
    parsed_names: set[str] = set()
    for stage in stages:
        if rows.table.num_rows == 0:
            return rows
        if isinstance(stage, ast.LineFilter):
            mask = line_filters_mask(rows.table.column("line"), [stage])
            rows = rows.keep(mask) if mask is not None else rows
        elif isinstance(stage, _PARSERS):
            _parse(stage, rows, parsed_names)
        elif isinstance(stage, ast.LabelFilterStage):
            state = FilterState(rows.labels, rows.error, rows.details)
            mask = evaluate(stage.filter, state, np.ones(rows.table.num_rows, dtype=bool))
            rows.error, rows.details = state.error, state.details
            rows = rows.keep(mask)
        elif isinstance(stage, ast.LineFormat):
            rows.set_line(pa.array(_render(stage.template, "line", rows), pa.string()))
        elif isinstance(stage, ast.LabelFormat):
            _label_format(stage, rows)
        elif isinstance(stage, ast.DropLabels):
            _drop_or_keep(stage.labels, rows, drop=True)
        elif isinstance(stage, ast.KeepLabels):
            _drop_or_keep(stage.labels, rows, drop=False)
        else:
            raise Unsupported(f"pipeline stage {type(stage).__name__}")
    return rows


def _parse(stage: ast.Stage, rows: Rows, parsed_names: set[str]) -> None:
    # only `| json a="b"` reads which names earlier parser stages set (for its "" defaults)
    reads_parsed = isinstance(stage, ast.JsonParser) and bool(stage.extractions)
    names = [name for name in rows.labels if reads_parsed or name not in parsed_names]
    result = _parse_by_existing(stage, rows, names, parsed_names)
    override = parsers.overrides(stage)
    for name, column in result.columns.items():
        old = rows.labels.get(name)  # a row that had the name got `_extracted` instead, or keeps one value
        if old is None:
            rows.labels[name] = column
        else:
            rows.labels[name] = pc.coalesce(column, old) if override else pc.coalesce(old, column)
        parsed_names.add(name)
    rows.error = pc.coalesce(rows.error, result.error)
    rows.details = pc.if_else(pc.is_null(rows.details), result.error_details, rows.details)
    if result.line is not None:
        rows.set_line(result.line)


def _parse_by_existing(stage: ast.Stage, rows: Rows, names: list[str], parsed_names: set[str]) -> parsers.Parsed:
    """Run a parser with, for each row, the label names that row has: a parsed name that one of
    them already holds gets `_extracted` (those not from parser stages) or is known `present`
    (those from earlier parser stages). Rows are grouped by which of `names` they have."""
    lines = rows.table.column("line").combine_chunks()
    n = len(lines)
    present = np.stack([rows.labels[name].is_valid().to_numpy(zero_copy_only=False) for name in names], axis=1) \
        if names and n else np.zeros((n, 0), dtype=bool)
    patterns, group_of = np.unique(present, axis=0, return_inverse=True)

    def run(rows_lines: pa.Array, pattern: np.ndarray) -> parsers.Parsed:
        have = {name for name, has in zip(names, pattern, strict=True) if has}
        return parsers.parse(rows_lines, stage, have - parsed_names, frozenset(have & parsed_names))

    if len(patterns) <= 1:
        return run(lines, patterns[0] if len(patterns) else np.zeros(len(names), dtype=bool))
    group_of = group_of.reshape(-1)
    order = np.argsort(group_of, kind="stable")
    parts = []
    for k, pattern in enumerate(patterns):
        parts.append(run(lines.take(pa.array(np.flatnonzero(group_of == k))), pattern))
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    back_indices = pa.array(back)

    def joined(pieces: list[pa.Array]) -> pa.Array:
        return pa.concat_arrays([p.cast(pa.string()) for p in pieces]).take(back_indices)

    sizes = [len(p.error) for p in parts]
    columns = {}
    for name in dict.fromkeys(name for p in parts for name in p.columns):
        columns[name] = joined([p.columns.get(name, pa.nulls(size, pa.string())) for p, size in zip(parts, sizes,
                                                                                                      strict=True)])
    line = None
    if any(p.line is not None for p in parts):
        originals = [lines.take(pa.array(np.flatnonzero(group_of == k))) for k in range(len(parts))]
        line = joined([p.line if p.line is not None else o for p, o in zip(parts, originals, strict=True)])
    return parsers.Parsed(columns, joined([p.error for p in parts]), joined([p.error_details for p in parts]), line)


def _row_dicts(rows: Rows) -> list[dict[str, str]]:
    names = list(rows.labels)
    values = [rows.labels[n].to_pylist() for n in names]
    return [{n: v for n, v in zip(names, row, strict=True) if v is not None} for row in zip(*values, strict=True)] \
        if names else [{} for _ in range(rows.table.num_rows)]


def _render(template: str, name: str, rows: Rows) -> list[str | None]:
    compiled = compile_template(template, name)
    lines = rows.table.column("line").to_pylist()
    stamps = rows.table.column("ts").to_pylist()
    errors = rows.error.to_pylist()
    details = rows.details.to_pylist()
    out: list[str | None] = []
    for i, (data, line, ts) in enumerate(zip(_row_dicts(rows), lines, stamps, strict=True)):
        try:
            out.append(compiled.render(data, line, ts))
        except TemplateExecError as exc:
            out.append(line if name == "line" else "")
            if errors[i] is None:
                errors[i], details[i] = "TemplateFormatErr", str(exc)
    rows.error, rows.details = pa.array(errors, pa.string()), pa.array(details, pa.string())
    return out


def _label_format(stage: ast.LabelFormat, rows: Rows) -> None:
    updates: dict[str, pa.Array] = {}
    renamed: set[str] = set()
    for fmt in stage.formats:
        if fmt.rename:
            source = rows.labels.get(fmt.value)
            updates[fmt.name] = source if source is not None else pa.nulls(rows.table.num_rows, pa.string())
            renamed.add(fmt.value)
        else:
            updates[fmt.name] = pa.array(_render(fmt.value, "label", rows), pa.string())
    for name in renamed - set(updates):
        rows.labels.pop(name, None)
    rows.labels.update(updates)


def _drop_or_keep(targets: tuple[str | Matcher, ...], rows: Rows, drop: bool) -> None:
    n = rows.table.num_rows
    for name in list(rows.labels) + ["__error__", "__error_details__"]:
        column = _column(rows, name)
        listed = [t for t in targets if (t if isinstance(t, str) else t.name) == name]
        if not listed:
            if not drop and name not in ("__error__", "__error_details__"):
                rows.labels.pop(name, None)
            continue
        hit = np.zeros(n, dtype=bool)
        values = column.to_pylist()
        for t in listed:
            if isinstance(t, str):
                hit[:] = True
            else:
                hit |= np.array([v is not None and t.matches(v) for v in values], dtype=bool)
        remove = hit if drop else ~hit
        if not remove.any():
            continue
        cleared = pc.if_else(pa.array(remove), pa.nulls(n, pa.string()), column)
        _set_column(rows, name, cleared)


def _column(rows: Rows, name: str) -> pa.Array:
    if name == "__error__":
        return rows.error
    if name == "__error_details__":
        return rows.details
    return rows.labels[name]


def _set_column(rows: Rows, name: str, column: pa.Array) -> None:
    if name == "__error__":
        rows.error = column
    elif name == "__error_details__":
        rows.details = column
    else:
        rows.labels[name] = column


def finish(rows: Rows) -> pa.Table:
    """The rows with their final label sets as a `labels` map column (built column-wise), each
    row's labels ordered by name."""
    n = rows.table.num_rows
    named = sorted([*rows.labels.items(), ("__error__", rows.error), ("__error_details__", rows.details)],
                   key=lambda item: item[0])
    row_parts, key_parts, value_parts = [], [], []
    for j, (name, column) in enumerate(named):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        column = column.cast(pa.string())
        present = pc.and_(pc.is_valid(column), pc.not_equal(column, ""))  # empty values are left out
        at = np.flatnonzero(pc.fill_null(present, False).to_numpy(zero_copy_only=False))
        if len(at) == 0:
            continue
        row_parts.append(at * len(named) + j)   # sort key: row, then the label's place
        key_parts.append(pa.array([name] * len(at), pa.string()))
        value_parts.append(column.take(pa.array(at)))
    if row_parts:
        sort_key = np.concatenate(row_parts)
        order = pa.array(np.argsort(sort_key, kind="stable"))
        keys = pa.concat_arrays(key_parts).take(order)
        values = pa.concat_arrays(value_parts).take(order)
        offsets = np.searchsorted(np.sort(sort_key) // len(named), np.arange(n + 1)).astype(np.int32)
        labels = pa.MapArray.from_arrays(pa.array(offsets), keys, values, type=LABELS_TYPE)
    else:
        labels = pa.array([[] for _ in range(n)], LABELS_TYPE)
    table = rows.table.append_column("labels", labels)
    keep = _first_of_identical(table)
    return table if keep is None else table.filter(pa.array(keep))


def _first_of_identical(table: pa.Table) -> np.ndarray | None:
    """Entries that became identical (same labels, time and line) are one entry, as in Loki:
    a mask keeping the first of each, or None when none repeat. Only rows sharing a timestamp
    can repeat, so only those are compared."""
    stamps = table.column("ts").to_numpy()
    if len(stamps) < 2:
        return None
    _, first, counts = np.unique(stamps, return_index=True, return_counts=True)
    if counts.max() == 1:
        return None
    shared = np.flatnonzero(np.isin(stamps, stamps[first[counts > 1]]))
    keep = np.ones(len(stamps), dtype=bool)
    seen: set[tuple[object, ...]] = set()
    subset = table.take(pa.array(shared))
    for i, key in zip(shared.tolist(), zip(subset.column("labels").to_pylist(), subset.column("ts").to_pylist(),
                                           subset.column("line").to_pylist(), strict=True), strict=True):
        frozen = (tuple(key[0]), key[1], key[2])
        if frozen in seen:
            keep[i] = False
        seen.add(frozen)
    return None if keep.all() else keep
