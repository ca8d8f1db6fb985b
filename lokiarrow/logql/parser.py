"""LogQL text → syntax tree, with Loki's grammar and Loki's error texts.

Loki's parser is goyacc-generated, so a syntax error reads `syntax error: unexpected X` plus
`, expecting A or B` when the parser state it failed in can shift at most four tokens. This
recursive-descent parser follows the same grammar and, at each point where it can fail, passes
the tokens that state of Loki's automaton would expect (an empty tuple where that state expects
more than four, or reduces first and fails in a state that does).

Steps: 1. parse, raising at once on syntax errors, lexer errors, and the errors Loki raises
while parsing (bad regexes in matchers, `regexp` stages), and noting the errors Loki defers;
2. `validate.validate_tree` raises the first deferred error in Loki's order.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import re2

from lokiarrow.errors import BadRequest, ParseError, Unsupported
from lokiarrow.logql import ast
from lokiarrow.logql.promlabels import parse_label_pairs, parse_labels
from lokiarrow.logql.quoting import to_utf8
from lokiarrow.logql.tokens import CONVERSIONS, RANGE_OPS, VECTOR_OPS, Lexer, Token, display, expected_text
from lokiarrow.logql.validate import (
    check_line_regex,
    check_regex_utf8,
    go_parse_float,
    range_aggregation_error,
    utf8_error,
    validate_tree,
    vector_aggregation_error,
)
from lokiarrow.model import QUIET_RE2, Matcher, MatchOp, go_regex_error

__all__ = ["parse_expr", "parse_matchers", "parse_labels", "parse_label_pairs"]

MAX_INPUT_BYTES = 131072

MATCH_OPS: dict[str, MatchOp] = {"EQ": "=", "NEQ": "!=", "RE": "=~", "NRE": "!~"}
LINE_FILTER_OPS: dict[str, ast.LineFilterOp] = {"PIPE_EXACT": "|=", "NEQ": "!=", "PIPE_MATCH": "|~",
                                                "NRE": "!~", "PIPE_PATTERN": "|>", "NPA": "!>"}
COMPARE_OPS: dict[str, ast.CompareOp] = {"EQ": "==", "CMP_EQ": "==", "NEQ": "!=", "GT": ">", "GTE": ">=",
                                         "LT": "<", "LTE": "<="}
# Binary operators: token → (operator, precedence, right associative).
BINARY_OPS = {
    "OR": ("or", 1, False), "AND": ("and", 2, False), "UNLESS": ("unless", 2, False),
    "CMP_EQ": ("==", 3, False), "NEQ": ("!=", 3, False), "LT": ("<", 3, False), "LTE": ("<=", 3, False),
    "GT": (">", 3, False), "GTE": (">=", 3, False), "ADD": ("+", 4, False), "SUB": ("-", 4, False),
    "MUL": ("*", 5, False), "DIV": ("/", 5, False), "MOD": ("%", 5, False), "POW": ("^", 6, True),
}
LOGICAL_OPS = frozenset({"or", "and", "unless"})
RANGE_OP_NAMES = {kind: name for name, kind in RANGE_OPS.items()}
VECTOR_OP_NAMES = {kind: name for name, kind in VECTOR_OPS.items()}
CONVERSION_NAMES = {kind: name for name, kind in CONVERSIONS.items()}
STRING_FILTER_OPS = ("EQ", "NEQ")  # the label-filter operators that also take a string or ip()
FILTER_START = ("IDENTIFIER", "OPEN_PARENTHESIS")


def parse_expr(text: str) -> ast.Expr:
    """Parse and validate a whole LogQL query (Loki's `syntax.ParseExpr`)."""
    return _parse(text, validate=True)


def parse_matchers(text: str, validate: bool = True) -> tuple[Matcher, ...]:
    """Parse a lone stream selector `{…}` (Loki's `syntax.ParseMatchers`).

    With validate, a selector that matches every stream fails as in a query; Loki's `/series`
    passes validate=False (and then refuses an empty group itself).
    """
    expr = _parse(text, validate)
    if not isinstance(expr, ast.LogExpr) or expr.stages:
        raise BadRequest("only label matchers are supported")
    return expr.matchers


def parse_log_selector(text: str, validate: bool = True) -> ast.LogExpr:
    """Parse a log query, a selector and its pipeline (Loki's `syntax.ParseLogSelector`; Promtail's
    `match` stage passes validate=False, so `{app=~".*"}` is allowed there)."""
    expr = _parse(text, validate)
    if not isinstance(expr, ast.LogExpr):
        raise BadRequest("only log selector is supported")
    return expr


def _parse(text: str, validate: bool) -> ast.Expr:
    size = len(text.encode("utf-8", "surrogateescape"))
    if size >= MAX_INPUT_BYTES:
        raise ParseError(f"input size too long ({size} > {MAX_INPUT_BYTES})")
    parser = _Parser(text)
    try:
        expr = parser.parse_root()
        if validate:
            validate_tree(expr, parser.deferred)
    except RecursionError:
        raise Unsupported("queries nested this deeply") from None
    return _valid_utf8(expr) if "\\" in text else expr


def _valid_utf8(node: Any) -> Any:
    """`node` with the raw bytes of `\\xNN` escapes that are not UTF-8 (kept as surrogate escapes
    while parsing, for Loki's regex errors) as U+FFFD, as the push decoders store such bytes:
    Arrow and DuckDB take UTF-8 only, and a filter for a byte then finds what that byte became."""
    if isinstance(node, str):
        return to_utf8(node)
    if isinstance(node, tuple):
        return tuple(_valid_utf8(item) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changed = {f.name: _valid_utf8(getattr(node, f.name)) for f in dataclasses.fields(node)
                   if f.init and not f.name.startswith("_")}
        return dataclasses.replace(node, **changed)
    return node


class _Parser:
    """One parse: a lazily lexed token stream and one `_parse_<construct>` method per grammar rule."""

    def __init__(self, text: str) -> None:
        self._lexer = Lexer(text)
        self._token: Token | None = None
        self.deferred: dict[int, ParseError] = {}  # id(node) → the error Loki reports at validation

    # --- tokens ----------------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        """The lookahead, lexed only when the parser needs it (as goyacc does)."""
        if self._token is None:
            self._token = self._lexer.next()
        return self._token

    def _take(self) -> Token:
        token = self.tok
        self._token = None
        return token

    def _expect(self, kind: str, expected: tuple[str, ...]) -> Token:
        if self.tok.kind != kind:
            raise self._unexpected(expected)
        return self._take()

    def _unexpected(self, expected: tuple[str, ...] = ()) -> ParseError:
        tok = self.tok
        return ParseError(f"syntax error: unexpected {display(tok.kind)}{expected_text(expected)}", tok.line, tok.col)

    def _defer(self, node: ast.Node, msg: str) -> None:
        self.deferred[id(node)] = ParseError(msg)

    # --- queries ---------------------------------------------------------------------------------

    def parse_root(self) -> ast.Expr:
        expr = self._parse_expr()
        if self.tok.kind != "$end":
            raise self._unexpected()
        return expr

    def _parse_expr(self, min_prec: int = 0, left: ast.Expr | None = None) -> ast.Expr:
        """Precedence climbing over binary operators; left may be an operand already parsed."""
        if left is None:
            left = self._parse_operand()
        while self.tok.kind in BINARY_OPS:
            op, prec, right_assoc = BINARY_OPS[self.tok.kind]
            if prec < min_prec:
                break
            self._take()
            return_bool, matching = self._parse_bin_modifiers()
            right = self._parse_expr(prec if right_assoc else prec + 1)
            left = self._binary(op, left, right, return_bool, matching)
        return left

    def _parse_metric_expr(self, left: ast.Expr | None = None) -> ast.Expr:
        """An expression where the grammar wants a metric one: a bare log query fails at the next token."""
        expr = self._parse_expr(left=left)
        if isinstance(expr, ast.LogExpr):
            raise self._unexpected()
        return expr

    def _parse_operand(self) -> ast.Expr:
        kind = self.tok.kind
        if kind == "OPEN_BRACE":
            return self._parse_log_expr()
        if kind == "OPEN_PARENTHESIS":
            self._take()
            inner = self._parse_expr()
            self._expect("CLOSE_PARENTHESIS", ())
            return inner
        if kind in RANGE_OP_NAMES:
            return self._parse_range_aggregation()
        if kind in VECTOR_OP_NAMES:
            return self._parse_vector_aggregation()
        if kind == "LABEL_REPLACE":
            return self._parse_label_replace()
        if kind == "VECTOR":
            return self._parse_vector()
        if kind in ("NUMBER", "ADD", "SUB"):
            return self._parse_literal()
        raise self._unexpected()

    def _parse_literal(self) -> ast.Literal:
        sign = self._take() if self.tok.kind in ("ADD", "SUB") else None
        number = self._expect("NUMBER", ("NUMBER",)) if sign else self._take()
        return self._literal(number, sign)

    def _literal(self, number: Token, sign: Token | None = None) -> ast.Literal:
        value, error = go_parse_float(number.text)
        node = ast.Literal(-value if sign and sign.kind == "SUB" else value, (sign or number).pos)
        if error:
            self._defer(node, f"unable to parse literal as a float: {error}")
        return node

    def _binary(self, op: str, left: ast.Expr, right: ast.Expr, return_bool: bool,
                matching: ast.VectorMatching | None) -> ast.BinaryOp:
        node = ast.BinaryOp(op, left, right, return_bool, matching, left.pos)
        for side, leg in (("left", left), ("right", right)):
            if isinstance(leg, ast.LogExpr):
                go_type = "*syntax.PipelineExpr" if leg.stages else "*syntax.MatchersExpr"
                self._defer(node, f"unexpected type for {side} leg of binary operation ({op}): {go_type}")
                return node
        for leg in (left, right):
            if id(leg) in self.deferred and isinstance(leg, ast.Literal):
                self.deferred[id(node)] = self.deferred[id(leg)]
                return node
        if op in LOGICAL_OPS:
            for side, leg in (("left", left), ("right", right)):
                if isinstance(leg, ast.Literal):
                    msg = f"unexpected literal for {side} leg of logical/set binary operation ({op}): {leg.value:f}"
                    self._defer(node, msg)
                    return node
        return node

    def _parse_bin_modifiers(self) -> tuple[bool, ast.VectorMatching | None]:
        """`[bool] [on|ignoring (labels) [group_left|group_right [(labels)]]]` after an operator."""
        return_bool = self.tok.kind == "BOOL"
        if return_bool:
            self._take()
        if self.tok.kind not in ("ON", "IGNORING"):
            return return_bool, None
        on = self._take().kind == "ON"
        self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",))
        labels = self._parse_label_list()
        card: ast.Cardinality = "one-to-one"
        include: tuple[str, ...] = ()
        if self.tok.kind in ("GROUP_LEFT", "GROUP_RIGHT"):
            card = "many-to-one" if self._take().kind == "GROUP_LEFT" else "one-to-many"
            if self.tok.kind == "OPEN_PARENTHESIS":
                self._take()
                include = self._parse_label_list()
        if not on and not labels and card == "one-to-one":
            return return_bool, None  # `ignoring ()` changes nothing; Loki does not print it either
        return return_bool, ast.VectorMatching(on, labels, card, include)

    def _parse_label_list(self) -> tuple[str, ...]:
        """`a, b)` or `)` after an opening parenthesis."""
        if self.tok.kind == "CLOSE_PARENTHESIS":
            self._take()
            return ()
        labels = [self._expect("IDENTIFIER", ("IDENTIFIER", "CLOSE_PARENTHESIS")).text]
        while self.tok.kind == "COMMA":
            self._take()
            labels.append(self._expect("IDENTIFIER", ("IDENTIFIER",)).text)
        self._expect("CLOSE_PARENTHESIS", ("COMMA", "CLOSE_PARENTHESIS"))
        return tuple(labels)

    def _parse_grouping(self) -> ast.Grouping:
        keyword = self._take()
        self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",))
        return ast.Grouping(self._parse_label_list(), keyword.kind == "WITHOUT", keyword.pos)

    # --- metric constructs -----------------------------------------------------------------------

    def _parse_range_aggregation(self) -> ast.RangeAggregation:
        op_token = self._take()
        op = RANGE_OP_NAMES[op_token.kind]
        self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",))
        param = None
        start: tuple[str, ...] = ("NUMBER", "OPEN_BRACE", "OPEN_PARENTHESIS")
        if self.tok.kind == "NUMBER":
            param = self._take().text
            self._expect("COMMA", ("COMMA",))
            start = ("OPEN_BRACE", "OPEN_PARENTHESIS")
        log_range = self._parse_log_range(start)
        self._expect("CLOSE_PARENTHESIS", ("CLOSE_PARENTHESIS",))
        grouping = self._parse_grouping() if self.tok.kind in ("BY", "WITHOUT") else None
        value, error = go_parse_float(param) if param is not None else (None, "")
        node = ast.RangeAggregation(op, log_range, value, grouping, op_token.pos)
        if message := range_aggregation_error(op, param, error, grouping, log_range):
            self._defer(node, message)
        return node

    def _parse_log_range(self, start: tuple[str, ...]) -> ast.LogRange:
        """The argument of a range aggregation, in any of the orders Loki's grammar allows."""
        if self.tok.kind == "OPEN_PARENTHESIS":
            return self._parse_parenthesized_log_range()
        if self.tok.kind != "OPEN_BRACE":
            raise self._unexpected(start)
        pos = self.tok.pos
        matchers = self._parse_selector()
        stages, unwrap = self._parse_pipeline(allow_unwrap=True)
        return self._finish_log_range(matchers, stages, unwrap, pos, in_parens=False)

    def _parse_parenthesized_log_range(self) -> ast.LogRange:
        """`( {…} [stages] [unwrap] ) [5m] …`, or a whole log range in parentheses."""
        self._take()
        if self.tok.kind == "OPEN_PARENTHESIS":
            inner = self._parse_log_range(("OPEN_BRACE", "OPEN_PARENTHESIS"))
            self._expect("CLOSE_PARENTHESIS", ("CLOSE_PARENTHESIS",))
            return inner
        if self.tok.kind != "OPEN_BRACE":
            raise self._unexpected(("OPEN_BRACE", "OPEN_PARENTHESIS"))
        pos = self.tok.pos
        matchers = self._parse_selector()
        stages, unwrap = self._parse_pipeline(allow_unwrap=True)
        if self.tok.kind != "CLOSE_PARENTHESIS":
            inner = self._finish_log_range(matchers, stages, unwrap, pos, in_parens=True)
            self._expect("CLOSE_PARENTHESIS", ("CLOSE_PARENTHESIS",))
            return inner
        self._take()
        range_ns = self._expect("RANGE", ("RANGE",)).value
        offset = self._parse_offset()
        if not stages and unwrap is None and self.tok.kind == "PIPE":
            pipe = self._take()
            self._expect("UNWRAP", ("UNWRAP",))
            unwrap = self._parse_unwrap(pipe.pos)
        return ast.LogRange(ast.LogExpr(matchers, stages, pos), range_ns, offset, unwrap, pos)

    def _finish_log_range(self, matchers: tuple[Matcher, ...], stages: tuple[ast.Stage, ...],
                          unwrap: ast.Unwrap | None, pos: int, in_parens: bool) -> ast.LogRange:
        """After `{…} [stages] [unwrap]`: the `[range]`, an offset, and stages after the range."""
        if self.tok.kind != "RANGE":
            if unwrap is None:
                raise self._unexpected()
            raise self._unexpected(("RANGE", "PIPE", "CLOSE_PARENTHESIS") if in_parens else ("RANGE", "PIPE"))
        range_ns = self._take().value
        offset = self._parse_offset()
        if not stages and unwrap is None:
            stages, unwrap = self._parse_pipeline(allow_unwrap=True)
        return ast.LogRange(ast.LogExpr(matchers, stages, pos), range_ns, offset, unwrap, pos)

    def _parse_offset(self) -> int:
        if self.tok.kind != "OFFSET":
            return 0
        self._take()
        return self._expect("DURATION", ("DURATION",)).value

    def _parse_unwrap(self, pos: int) -> ast.Unwrap:
        """After `| unwrap`: the label, an optional conversion, and `| label filter`s."""
        conversion = ""
        if self.tok.kind in CONVERSION_NAMES:
            conversion = CONVERSION_NAMES[self._take().kind]
            self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",))
            label = self._expect("IDENTIFIER", ("IDENTIFIER",)).text
            self._expect("CLOSE_PARENTHESIS", ("CLOSE_PARENTHESIS",))
        else:
            label = self._expect("IDENTIFIER", ("IDENTIFIER", *CONVERSION_NAMES)).text
        filters = []
        while self.tok.kind == "PIPE":
            self._take()
            filters.append(self._parse_label_filter())
        return ast.Unwrap(label, cast(ast.Conversion, conversion), tuple(filters), pos)

    def _parse_vector_aggregation(self) -> ast.VectorAggregation:
        op_token = self._take()
        op = VECTOR_OP_NAMES[op_token.kind]
        grouping = self._parse_grouping() if self.tok.kind in ("BY", "WITHOUT") else None
        self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",) if grouping else ("OPEN_PARENTHESIS", "BY", "WITHOUT"))
        param = None
        if self.tok.kind == "NUMBER":
            number = self._take()
            if self.tok.kind == "COMMA":
                self._take()
                param = number.text
                expr = self._parse_metric_expr()
            else:
                expr = self._parse_metric_expr(left=self._literal(number))
        else:
            expr = self._parse_metric_expr()
        self._expect("CLOSE_PARENTHESIS", ())
        if grouping is None and self.tok.kind in ("BY", "WITHOUT"):
            grouping = self._parse_grouping()
        k = int(param) if param is not None and param.lstrip("+-").isdigit() else None
        message = vector_aggregation_error(op, param, k, grouping)
        if grouping is not None and not grouping.labels and not grouping.without:
            grouping = None  # Loki treats `by ()` as no grouping at all
        node = ast.VectorAggregation(op, expr, k, grouping, op_token.pos)
        if message:
            self._defer(node, message)
        return node

    def _parse_label_replace(self) -> ast.LabelReplace:
        pos = self._take().pos
        self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",))
        expr = self._parse_metric_expr()
        args: list[str] = []
        for _ in range(4):
            self._expect("COMMA", ("COMMA",) if args else ())
            args.append(self._expect("STRING", ("STRING",)).text)
        self._expect("CLOSE_PARENTHESIS", ("CLOSE_PARENTHESIS",))
        node = ast.LabelReplace(expr, args[0], args[1], args[2], args[3], pos)
        anchored = f"^(?:{args[3]})$"
        try:
            if (error := utf8_error(anchored)) is not None:
                self._defer(node, f"invalid regex in label_replace: error parsing regexp: {error}")
                return node
            re2.compile(anchored, QUIET_RE2)
        except re2.error as exc:
            self._defer(node, f"invalid regex in label_replace: error parsing regexp: {go_regex_error(str(exc), anchored)}")
        return node

    def _parse_vector(self) -> ast.Vector:
        pos = self._take().pos
        self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",))
        number = self._expect("NUMBER", ("NUMBER",))
        self._expect("CLOSE_PARENTHESIS", ("CLOSE_PARENTHESIS",))
        value, error = go_parse_float(number.text)
        node = ast.Vector(value, pos)
        if error:
            self._defer(node, f"unable to parse vectorExpr as a float: {error}")
        return node

    # --- log queries -----------------------------------------------------------------------------

    def _parse_log_expr(self) -> ast.LogExpr:
        pos = self.tok.pos
        matchers = self._parse_selector()
        stages, _ = self._parse_pipeline(allow_unwrap=False)
        return ast.LogExpr(matchers, stages, pos)

    def _parse_selector(self) -> tuple[Matcher, ...]:
        """`{name op "value", …}`; the current token is the `{`."""
        self._take()
        if self.tok.kind == "CLOSE_BRACE":
            self._take()
            return ()
        matchers = [self._parse_matcher(("IDENTIFIER", "CLOSE_BRACE"))]
        while self.tok.kind == "COMMA":
            self._take()
            matchers.append(self._parse_matcher(("IDENTIFIER",)))
        self._expect("CLOSE_BRACE", ("CLOSE_BRACE", "COMMA"))
        return tuple(matchers)

    def _parse_matcher(self, expected: tuple[str, ...], name: Token | None = None) -> Matcher:
        name = name or self._expect("IDENTIFIER", expected)
        if self.tok.kind not in MATCH_OPS:
            raise self._unexpected(tuple(MATCH_OPS))
        op = MATCH_OPS[self._take().kind]
        value = self._expect("STRING", ("STRING",))
        if op in ("=~", "!~"):
            check_regex_utf8(value.text)
        return Matcher(name.text, op, value.text)

    def _parse_pipeline(self, allow_unwrap: bool) -> tuple[tuple[ast.Stage, ...], ast.Unwrap | None]:
        """Stages up to the first token that cannot continue them; in a range, up to `| unwrap` too."""
        stages: list[ast.Stage] = []
        while True:
            kind = self.tok.kind
            if kind in LINE_FILTER_OPS:
                stages.extend(self._parse_line_filter())
            elif kind == "PIPE":
                pipe = self._take()
                if allow_unwrap and self.tok.kind == "UNWRAP":
                    self._take()
                    return tuple(stages), self._parse_unwrap(pipe.pos)
                stages.append(self._parse_pipe_stage(pipe.pos))
            else:
                return tuple(stages), None

    def _parse_line_filter(self) -> list[ast.LineFilter]:
        """`|= "a" or ip("b")…`; a negated filter with alternatives becomes one filter per value."""
        op_token = self._take()
        op = LINE_FILTER_OPS[op_token.kind]
        values = [self._parse_filter_value()]
        while self.tok.kind == "OR":
            self._take()
            values.append(self._parse_filter_value())
        ips = {is_ip for _, is_ip in values}
        if len(ips) > 1:
            raise Unsupported("line filters mixing ip() and strings with or")
        if op in ("|~", "!~"):
            for value, _ in values:
                check_line_regex(value)
        ip = ips.pop()
        if op.startswith("!"):
            return [ast.LineFilter(op, (value,), ip, op_token.pos) for value, _ in values]
        return [ast.LineFilter(op, tuple(value for value, _ in values), ip, op_token.pos)]

    def _parse_filter_value(self) -> tuple[str, bool]:
        if self.tok.kind == "STRING":
            return self._take().text, False
        if self.tok.kind != "IP":
            raise self._unexpected(("STRING", "IP"))
        self._take()
        self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",))
        value = self._expect("STRING", ("STRING",)).text
        self._expect("CLOSE_PARENTHESIS", ("CLOSE_PARENTHESIS",))
        return value, True

    def _parse_pipe_stage(self, pos: int) -> ast.Stage:
        """One stage after `|`."""
        kind = self.tok.kind
        if kind in ("IDENTIFIER", "OPEN_PARENTHESIS"):
            return ast.LabelFilterStage(self._parse_label_filter(), pos)
        if kind not in _STAGE_PARSERS:
            raise self._unexpected()
        self._take()
        return _STAGE_PARSERS[kind](self, pos)

    def _parse_json(self, pos: int) -> ast.Stage:
        return ast.JsonParser(self._parse_extractions(), pos)

    def _parse_logfmt(self, pos: int) -> ast.Stage:
        flags = set()
        while self.tok.kind == "FUNCTION_FLAG":
            flags.add(self._take().text)
        return ast.LogfmtParser("--strict" in flags, "--keep-empty" in flags, self._parse_extractions(), pos)

    def _parse_extractions(self) -> tuple[ast.LabelExtraction, ...]:
        """`a="x.y", b` after `json` or `logfmt` (nothing when no identifier follows)."""
        if self.tok.kind != "IDENTIFIER":
            return ()
        extractions = []
        while True:
            name = self._take()
            expression = name.text
            if self.tok.kind == "EQ":
                self._take()
                expression = self._expect("STRING", ("STRING",)).text
            extractions.append(ast.LabelExtraction(name.text, expression, name.pos))
            if self.tok.kind != "COMMA":
                return tuple(extractions)
            self._take()
            if self.tok.kind != "IDENTIFIER":
                raise self._unexpected(("IDENTIFIER",))

    def _parse_regexp(self, pos: int) -> ast.Stage:
        pattern = self._expect("STRING", ("STRING",)).text
        check_regex_utf8(pattern, "invalid regexp parser: ")
        try:
            compiled = re2.compile(pattern, QUIET_RE2)
        except re2.error as exc:
            raise ParseError(f"invalid regexp parser: error parsing regexp: {go_regex_error(str(exc), pattern)}") from None
        if not compiled.groupindex:
            raise ParseError("invalid regexp parser: at least one named capture must be supplied")
        return ast.RegexpParser(pattern, pos)

    def _parse_pattern(self, pos: int) -> ast.Stage:
        return ast.PatternParser(self._expect("STRING", ("STRING",)).text, pos)

    def _parse_line_format(self, pos: int) -> ast.Stage:
        return ast.LineFormat(self._expect("STRING", ("STRING",)).text, pos)

    def _parse_label_format(self, pos: int) -> ast.Stage:
        formats = []
        expected: tuple[str, ...] = ("IDENTIFIER",)
        while True:
            name = self._expect("IDENTIFIER", expected)
            self._expect("EQ", ("EQ",))
            if self.tok.kind not in ("IDENTIFIER", "STRING"):
                raise self._unexpected(("IDENTIFIER", "STRING"))
            value = self._take()
            formats.append(ast.LabelFmt(name.text, value.text, value.kind == "IDENTIFIER", name.pos))
            if self.tok.kind != "COMMA":
                return ast.LabelFormat(tuple(formats), pos)
            self._take()

    def _parse_named_matchers(self) -> tuple[str | Matcher, ...]:
        """`a, b="x"` after `drop` or `keep`."""
        items: list[str | Matcher] = []
        while True:
            name = self._expect("IDENTIFIER", ("IDENTIFIER",))
            items.append(self._parse_matcher((), name) if self.tok.kind in MATCH_OPS else name.text)
            if self.tok.kind != "COMMA":
                return tuple(items)
            self._take()

    def _parse_drop(self, pos: int) -> ast.Stage:
        return ast.DropLabels(self._parse_named_matchers(), pos)

    def _parse_keep(self, pos: int) -> ast.Stage:
        return ast.KeepLabels(self._parse_named_matchers(), pos)

    # --- label filters ---------------------------------------------------------------------------

    def _parse_label_filter(self, min_prec: int = 0) -> ast.LabelFilter:
        """Label filters joined as Loki's grammar joins them.

        `or` binds looser than `and`; a `,` or a plain juxtaposition also means and, but takes the
        whole rest of the chain as its right side (goyacc shifts there): `a or b, c` is
        `a or (b and c)`.
        """
        left = self._parse_filter_primary()
        while True:
            kind = self.tok.kind
            if kind == "COMMA" or kind in FILTER_START:
                if kind == "COMMA":
                    self._take()
                left = ast.AndFilter(left, self._parse_label_filter(), left.pos)
            elif kind == "OR" and min_prec <= 1:
                self._take()
                left = ast.OrFilter(left, self._parse_label_filter(2), left.pos)
            elif kind == "AND" and min_prec <= 2:
                self._take()
                left = ast.AndFilter(left, self._parse_label_filter(3), left.pos)
            else:
                return left

    def _parse_filter_primary(self) -> ast.LabelFilter:
        if self.tok.kind == "OPEN_PARENTHESIS":
            self._take()
            inner = self._parse_label_filter()
            self._expect("CLOSE_PARENTHESIS", ())
            return inner
        name = self._expect("IDENTIFIER", FILTER_START)
        op_kind = self.tok.kind
        if op_kind in ("RE", "NRE"):
            return ast.LabelMatch(self._parse_matcher((), name), name.pos)
        if op_kind not in COMPARE_OPS:
            raise self._unexpected()
        self._take()
        value = self.tok
        if op_kind in STRING_FILTER_OPS and value.kind == "STRING":
            return ast.LabelMatch(Matcher(name.text, MATCH_OPS[op_kind], self._take().text), name.pos)
        if op_kind in STRING_FILTER_OPS and value.kind == "IP":
            self._take()
            self._expect("OPEN_PARENTHESIS", ("OPEN_PARENTHESIS",))
            pattern = self._expect("STRING", ("STRING",)).text
            self._expect("CLOSE_PARENTHESIS", ("CLOSE_PARENTHESIS",))
            return ast.IpFilter(name.text, "=" if op_kind == "EQ" else "!=", pattern, name.pos)
        op = COMPARE_OPS[op_kind]
        if value.kind == "DURATION":
            return ast.DurationFilter(name.text, op, self._take().value, name.pos)
        if value.kind == "BYTES":
            return ast.BytesFilter(name.text, op, self._take().value, name.pos)
        if value.kind not in ("NUMBER", "ADD", "SUB"):
            raise self._unexpected()
        literal = self._parse_literal()
        if error := self.deferred.get(id(literal)):
            raise error
        return ast.NumberFilter(name.text, op, literal.value, name.pos)


_STAGE_PARSERS = {
    "JSON": _Parser._parse_json, "LOGFMT": _Parser._parse_logfmt, "REGEXP": _Parser._parse_regexp,
    "PATTERN": _Parser._parse_pattern, "UNPACK": lambda self, pos: ast.UnpackParser(pos),
    "LINE_FMT": _Parser._parse_line_format, "LABEL_FMT": _Parser._parse_label_format,
    "DECOLORIZE": lambda self, pos: ast.Decolorize(pos), "DROP": _Parser._parse_drop,
    "KEEP": _Parser._parse_keep,
}
