"""LogQL metric queries: range aggregations over log lines, then vector aggregations and binary
operations over the series, evaluated at the query's steps.

- `series`: what an expression evaluates to (a sparse matrix of points, or a scalar).
- `ranges`: `count_over_time`, `rate`, `…_over_time` over the lines (and unwrapped values) in each
  step's window, computed in DuckDB.
- `vectors`: `sum`, `avg`, `topk`, … across series; `binary`: `+ - * / % ^`, comparisons, `and
  or unless` with vector matching; `label_replace`.
- `evaluate`: walks the expression tree.
"""
