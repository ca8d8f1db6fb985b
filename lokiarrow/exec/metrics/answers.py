"""Metric answers in Loki's JSON: `matrix` for range queries, `vector` / `scalar` for instant ones.

Points are `[<unix seconds>, "<value>"]`: seconds as a number (milliseconds kept when present),
the value as Go's strconv.FormatFloat(v, 'f', -1, 64) writes it (shortest, no exponent), with
`+Inf`, `-Inf` and `NaN` as Prometheus spells them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lokiarrow.exec.metrics.series import Matrix, Scalar


def format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    if v.is_integer() and abs(v) < 1e16:  # where repr would still write it out
        return str(int(v))
    shortest = repr(v)  # the same shortest digits; numpy only where Python would use an exponent
    return shortest if "e" not in shortest else np.format_float_positional(v, trim="-")


def format_time(ns: int) -> float | int:
    ms = ns // 10**6
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def matrix(m: Matrix | Scalar, steps: np.ndarray) -> list[dict[str, Any]]:
    if isinstance(m, Scalar):
        return [{"metric": {}, "values": [[format_time(int(t)), format_value(m.value)] for t in steps]}]
    out = []
    times = [format_time(int(t)) for t in m.steps]
    for sid, group in m.points.sort("sid", "step").group_by("sid", maintain_order=True):
        steps_k = group.get_column("step").to_list()
        values = group.get_column("v").to_list()
        out.append({"metric": dict(m.labels[int(sid[0])]),  # type: ignore[arg-type]
                    "values": [[times[k], format_value(v)] for k, v in zip(steps_k, values, strict=True)]})
    return out


def vector(m: Matrix, order: str | None) -> list[dict[str, Any]]:
    """The points of the one step; `order` "asc"/"desc" sorts by value (sort / sort_desc)."""
    points = m.points
    if order is not None:
        points = points.sort("v", descending=order == "desc", nulls_last=True)
    t = format_time(int(m.steps[0])) if len(m.steps) else 0
    return [{"metric": dict(m.labels[sid]), "value": [t, format_value(v)]}
            for sid, v in zip(points.get_column("sid").to_list(), points.get_column("v").to_list(), strict=True)]


def scalar(s: Scalar, at: int) -> list[Any]:
    return [format_time(at), format_value(s.value)]
