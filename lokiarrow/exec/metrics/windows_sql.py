"""The pieces every range aggregation computed in DuckDB shares: which lines the windows cover,
each line's first and last step, the scan of the chunk files, and grouping labels read from
stream labels or field columns.

The step at time t covers (t - offset - range, t - offset]; a line at ts belongs to the steps k
with ceil((ts + offset - start) / step) <= k <= ceil((ts + offset + range - start) / step) - 1.
Values reach DuckDB as named parameters only.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from lokiarrow.compile.filters import line_filters_sql
from lokiarrow.exec.sources import footer_value
from lokiarrow.logql import ast
from lokiarrow.model import Labels
from lokiarrow.store import rollups
from lokiarrow.store.fields import field_column, is_field_name
from lokiarrow.store.fs import readable

# ceil(x / step) for the x of scanned lines (x > -range), as integer division of a positive number:
# x is shifted by a whole number ($m) of steps first
_CEIL_DIV = "(({x} + $shift + $step - 1) // $step - $m)"
_X = "(ts + $offset - $start)"
# each line's first (k0) and last (k1) step; keep lines with k0 <= k1 and IN_WINDOWS
SPANS = (f"greatest({_CEIL_DIV.format(x=_X)}, 0) AS k0, "
         f"least({_CEIL_DIV.format(x=f'{_X} + $range')} - 1, $last) AS k1")
IN_WINDOWS = "ts + $offset <= $end"


def steps_sql(params: dict[str, object]) -> str:
    """Each line's steps from its k0..k1: one row per step, or k0 itself where windows do not
    overlap (range <= step, or a single step), which spares DuckDB the unnest."""
    if params["range"] <= params["step"] or params["last"] == 0:  # type: ignore[operator]
        return "k0 AS step"
    return "unnest(range(k0, k1 + 1)) AS step"


def covered(rng: ast.LogRange, steps: np.ndarray) -> tuple[int, int]:
    """[lo, hi): the times the windows of all steps cover."""
    return int(steps[0]) - rng.offset_ns - rng.range_ns + 1, int(steps[-1]) - rng.offset_ns + 1


def window_params(rng: ast.LogRange, steps: np.ndarray, step_ns: int) -> dict[str, object]:
    step = max(step_ns, 1)
    m = rng.range_ns // step + 1  # m steps are more than a range: x + m * step > 0
    return {"offset": rng.offset_ns, "start": int(steps[0]), "step": step, "range": rng.range_ns,
            "last": len(steps) - 1, "end": int(steps[-1]), "m": m, "shift": m * step}


def numbered_to_named(sql: str, names: list[str]) -> str:
    """The line filters' `?` placeholders as `$f0`, `$f1`, … (the same in every part)."""
    pieces = sql.split("?")
    if len(pieces) == 1:
        return sql
    out = [pieces[0]]
    for i, piece in enumerate(pieces[1:]):
        out.append(f"${names[i % len(names)]}{piece}")
    return "".join(out)


def chunk_scan(files: list[str], pure: Collection[str], ids: list[int], lo: int, hi: int,
               filters: tuple[ast.LineFilter, ...]) -> tuple[str, dict[str, object]]:
    """`FROM … WHERE …` over the chunk files: the streams, [lo, hi), the line filters. Files in
    `pure` hold wanted streams only and are read without the stream test (it costs more than
    the rest of a count's scan)."""
    where, where_params = line_filters_sql(filters)
    names = [f"f{i}" for i in range(len(where_params))]
    params: dict[str, object] = {"lo": lo, "hi": hi}
    params.update(zip(names, where_params, strict=True))
    reads = []
    if clean := [f for f in files if f in pure]:
        reads.append("SELECT * FROM read_parquet($clean)")
        params["clean"] = readable(clean)
    if mixed := [f for f in files if f not in pure]:
        reads.append("SELECT * FROM read_parquet($files) WHERE stream_id = ANY($ids)")
        params.update(files=readable(mixed), ids=ids)
    sql = numbered_to_named(f"FROM ({' UNION ALL BY NAME '.join(reads)}) WHERE ts >= $lo AND ts < $hi AND {where}",
                            names)
    return sql, params


def rolled_up(files: list[str], from_fields: Collection[str], filters: tuple[ast.LineFilter, ...],
              op: str, rng: ast.LogRange, steps: np.ndarray, step_ns: int) -> dict[str, str]:
    """The files whose rollups (store/rollups.py) count exactly what their lines would, each with
    the rollup column that counts: windows made of whole rollup buckets, every grouping field
    rolled up, and no line filter, or a single `|=`/`!=` of a counted word (for counts, not sizes)."""
    bucket = rollups.BUCKET_NS
    if (int(steps[0]) - rng.offset_ns) % bucket or rng.range_ns % bucket or (len(steps) > 1 and step_ns % bucket):
        return {}
    word = None
    if filters:
        [f, *more] = filters
        if more or f.op not in ("|=", "!=") or f.ip or len(f.values) != 1 or op.startswith("bytes"):
            return {}
        word = f.values[0]
    found = {}
    for path in files:
        rolled = rollups.rolled_of(footer_value(path, rollups.ROLLUP_KEY))
        if rolled is None or not rolled.fields.issuperset(from_fields):
            continue
        if word is None:
            found[path] = "n"
        elif word in rolled.words:
            column = f"w{rolled.words.index(word)}"
            found[path] = column if filters[0].op == "|=" else f"n - {column}"
    return found


def grouping_sources(wanted: tuple[str, ...], stream_labels: list[Labels]) -> tuple[list[str], list[str]] | None:
    """Grouping labels split into those every selected stream has (the stream's value counts: a
    parsed one is renamed) and field columns none has; None when a label is neither."""
    from_streams = [g for g in wanted if all(g in s for s in stream_labels)]
    from_fields = [g for g in wanted if g not in from_streams]
    if any(not is_field_name(g) or any(g in s for s in stream_labels) for g in from_fields):
        return None
    return from_streams, from_fields


def field_key(from_fields: list[str], params: dict[str, object], metadata: set[str] | None = None) -> str:
    """SQL for a row's grouping values from field columns, as one JSON list: structured metadata
    of that name shadows the parsed value, and "" is no label. `metadata`: the structured
    metadata names the rows can carry, where known (then a name not among them is not looked up)."""
    values = []
    for i, g in enumerate(from_fields):
        column = f'"{field_column(g)}"'
        if metadata is None or g in metadata:
            params[f"g{i}"] = g
            column = f"coalesce(map_extract(metadata, $g{i})[1], {column})"
        values.append(f"nullif({column}, '')")
    return f"to_json(list_value({', '.join(values)}))" if values else "'[]'"
