"""Conditions on the raw line that a pipeline's label filters imply, for the scan to apply first.

`{…} | json | level="error"` can only keep a line whose text contains `error`: a parser copies
values out of the line, so the value is in it, unless the line wrote it with escapes (`\\u0065`,
`\\"`) or the label comes from the entry's structured metadata instead. The scan keeps a line when
it contains the value, or contains a backslash, or has metadata of that name; the pipeline then
decides exactly. On selective filters this skips most lines before any parsing.

Only `name="value"` filters qualify, in `and` chains, right after parser stages that copy text
(json, logfmt, regexp, pattern), on names that are not stream labels of the selected streams.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lokiarrow.logql import ast
from lokiarrow.store.schema import METADATA_SET_COLUMN

_COPYING_PARSERS = (ast.JsonParser, ast.LogfmtParser, ast.RegexpParser, ast.PatternParser)


@dataclass(frozen=True)
class Prefilter:
    value: str   # the line must contain this ...
    name: str    # ... unless it has a backslash or metadata named this (or its unsuffixed form)

    def metadata_names(self) -> tuple[str, ...]:
        base = self.name.removesuffix("_extracted")
        return (self.name,) if base == self.name else (self.name, base)


def prefilters(stages: tuple[ast.Stage, ...], stream_label_names: set[str]) -> tuple[Prefilter, ...]:
    found: list[Prefilter] = []
    parsed = False
    for stage in stages:
        if isinstance(stage, _COPYING_PARSERS):
            parsed = True
            continue
        if not parsed or not isinstance(stage, ast.LabelFilterStage):
            break
        found += [p for p in _equalities(stage.filter) if p.name not in stream_label_names]
    return tuple(found)


def _equalities(f: ast.LabelFilter) -> Iterable[Prefilter]:
    if isinstance(f, ast.AndFilter):
        yield from _equalities(f.left)
        yield from _equalities(f.right)
    elif isinstance(f, ast.LabelMatch):
        m = f.matcher
        if m.op == "=" and m.value and not m.name.startswith("__"):
            yield Prefilter(m.value, m.name)


def metadata_has_sql(names: Iterable[str]) -> tuple[str, list[object]]:
    """True where a row's structured metadata may have any of these names, over the scan's
    `metadata_set` column (the metadata as DuckDB's to_json writes it: `{"name":"value",...}`,
    no spaces). A name JSON writes verbatim is looked up as the text `"name":` (a value holding
    that text only lets more rows through); others by the parsed keys."""
    parts: list[str] = []
    params: list[object] = []
    for name in names:
        if any(c in name for c in '"\\') or any(ord(c) < 0x20 for c in name):
            parts.append(f"coalesce(list_contains(json_keys({METADATA_SET_COLUMN}), ?), FALSE)")
            params.append(name)
        else:
            parts.append(f"contains({METADATA_SET_COLUMN}, ?)")
            params.append(f'"{name}":')
    return f"({' OR '.join(parts) or 'FALSE'})", params


def prefilter_sql(p: Prefilter) -> tuple[str, list[object]]:
    meta, names = metadata_has_sql(p.metadata_names())
    return f"(contains(line, ?) OR contains(line, '\\') OR {meta})", [p.value, *names]


def prefilter_mask(table: pa.Table, p: Prefilter) -> pa.Array:
    line = table.column("line")
    mask = pc.or_(pc.match_substring(line, p.value), pc.match_substring(line, "\\"))
    if "metadata" in table.column_names and table.num_rows:
        metadata = table.column("metadata").combine_chunks()
        for name in p.metadata_names():
            has = pc.is_valid(pc.map_lookup(metadata, pa.scalar(name, pa.string()), "first"))
            mask = pc.or_(mask, has)
    return mask
