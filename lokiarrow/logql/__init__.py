"""The LogQL language: tokens → syntax tree (parser) → canonical text (printer).

Public entry points: `parser.parse_expr`, `parser.parse_matchers`, `parser.parse_labels`
and `printer.format_expr`; the node classes live in `ast`.
"""
