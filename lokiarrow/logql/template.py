"""Go's text/template with Loki's functions, for `line_format`, `label_format` and Promtail's `template`.

`compile_template(text)` parses once into a tree of Python closures; `Template.render(labels, line,
ts_ns)` runs it per line. Steps: 1. `_lex` cuts the text into tokens (text, delimiters with their
trim markers, and the words inside actions); 2. `_Parser` reads them by Go's grammar, resolving
each `$variable` to a slot and each function name against `FUNCS`, and returns closures
`ev(ctx, dot) -> value` for pipelines and `ex(ctx, dot, out)` for the statements that write output.
Labels are the template's data with `missingkey=zero`: `{{.missing}}` prints nothing. Promtail's
dialect (`promtail=True`: its `template` and `replace` stages) adds `Hash` and `Sha2Hash`, has no
`__line__`/`__timestamp__`, and keeps Go's default for a missing key: `<no value>` when printed,
an invalid value for a function (an error).
Parse errors raise TemplateSyntaxError (`template: line:1: …`); errors while rendering raise
TemplateExecError with Go's text, which the caller puts in `__error_details__`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from lokiarrow.errors import BadRequest, Unsupported
from lokiarrow.logql.quoting import to_utf8, unquote
from lokiarrow.logql.template_fmt import type_name
from lokiarrow.logql.template_funcs import (
    FUNCS,
    PROMTAIL_FUNCS,
    TIME_METHODS,
    CallError,
    Func,
    coerce,
    go_str,
    truth,
)
from lokiarrow.logql.template_time import GoTime

Ev = Callable[["_Ctx", Any], Any]
Ex = Callable[["_Ctx", Any, list[str]], None]


class TemplateSyntaxError(BadRequest):
    """A template that Go's parser rejects: `template: line:1: function "x" not defined`."""


class TemplateExecError(Exception):
    """A render failure, worded as Go's: `template: line:1:2: executing "line" at <.foo>: …`."""


class _Located(Exception):
    def __init__(self, pos: int, node: str, msg: str) -> None:
        self.pos, self.node, self.msg = pos, node, msg


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_BUILTINS = frozenset(("and", "or", "call"))
_LOKI_NAMES = frozenset(FUNCS) | _BUILTINS | {"__line__", "__timestamp__"}
_PROMTAIL_NAMES = frozenset(FUNCS) | frozenset(PROMTAIL_FUNCS) | _BUILTINS
_ALL_FUNCS = {**FUNCS, **PROMTAIL_FUNCS}   # the parser has checked a name against its dialect


class _Ctx:
    __slots__ = ("data", "line", "missing", "ts", "vars")

    def __init__(self, data: dict[str, str], line: str, ts: int, nvars: int, missing: str | None) -> None:
        self.data, self.line, self.ts, self.missing = data, line, ts, missing
        self.vars: list[Any] = [data] * nvars


# ---- lexing ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)*')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<declare>:=)
  | (?P<punct>[().|=,])
""", re.X)
_KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block", "break",
                       "continue", "nil", "true", "false"})


def _lex(text: str) -> list[tuple[str, str, int]]:
    """Tokens (kind, text, position); `{{- ` and ` -}}` trim the neighbouring text's whitespace."""
    toks: list[tuple[str, str, int]] = []
    pos = 0
    trim_next = False
    while True:
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if trim_next:
            chunk = chunk.lstrip(" \t\r\n")
        if start >= 0 and text[start:start + 4] in ("{{- ", "{{-\t", "{{-\n", "{{-\r"):
            chunk = chunk.rstrip(" \t\r\n")
        if chunk:
            toks.append(("text", chunk, pos))
        if start < 0:
            toks.append(("eof", "", len(text)))
            return toks
        pos = start + 2
        if text[pos:pos + 1] == "-" and text[pos + 1:pos + 2] in (" ", "\t", "\r", "\n"):
            pos += 2
        pos, trim_next = _lex_action(text, pos, toks)


def _lex_action(text: str, pos: int, toks: list[tuple[str, str, int]]) -> tuple[int, bool]:
    toks.append(("left", "{{", pos))
    if text.startswith("/*", pos):
        end = text.find("*/", pos + 2)
        if end < 0:
            raise _syntax(text, pos, "unclosed comment")
        toks.pop()
        after = end + 2
        for closer, trim in (("}}", False), (" -}}", True)):
            if text.startswith(closer, after):
                return after + len(closer), trim
        raise _syntax(text, pos, "comment ends before closing delimiter")
    while pos < len(text):
        if text.startswith("}}", pos):
            toks.append(("right", "}}", pos))
            return pos + 2, False
        if text[pos] in " \t\r\n" and text.startswith("-}}", pos + 1):
            toks.append(("right", "}}", pos))
            return pos + 4, True
        m = _TOKEN.match(text, pos)
        if not m or m.lastgroup is None:
            ch = text[pos]
            if ch == '"' or ch == "'":
                raise _syntax(text, pos, "unterminated quoted string" if ch == '"' else "unterminated character constant")
            if ch == "`":
                raise _syntax(text, pos, "unterminated raw quoted string")
            raise _syntax(text, pos, f"bad character U+{ord(ch):04X} '{ch}'")
        kind = m.lastgroup
        word = m.group()
        if kind == "number" and m.end() < len(text) and (text[m.end()].isalnum() or text[m.end()] == "_"):
            raise _syntax(text, pos, f'bad number syntax: "{word}{text[m.end()]}"')
        if kind == "ident" and word in _KEYWORDS:
            kind = word
        if kind == "punct":
            kind = word
        toks.append((kind, word, pos))
        pos = m.end()
    raise _syntax(text, pos, "unclosed action")


def _syntax(text: str, pos: int, msg: str, name: str = "line") -> TemplateSyntaxError:
    return TemplateSyntaxError(f"template: {name}:{text.count(chr(10), 0, pos) + 1}: {msg}")


# ---- parsing into closures ------------------------------------------------------------------------
class _Const:
    """A literal argument, kept so that it converts to the parameter's kind as Go's constants do."""

    def __init__(self, kind: str, value: Any, text: str, as_int: int | None = None, as_float: float | None = None):
        self.kind, self.value, self.text, self.as_int, self.as_float = kind, value, text, as_int, as_float


class _Parser:
    def __init__(self, text: str, name: str, functions: frozenset[str] = _LOKI_NAMES) -> None:
        self.text, self.name, self.functions = text, name, functions
        self.toks = _lex(text)
        self.i = 0
        self.scopes: list[tuple[str, int]] = [("$", 0)]
        self.nvars = 1
        self.range_depth = 0

    # token helpers
    def peek(self, skip_space: bool = True) -> tuple[str, str, int]:
        j = self.i
        while skip_space and self.toks[j][0] == "space":
            j += 1
        return self.toks[j]

    def take(self, skip_space: bool = True) -> tuple[str, str, int]:
        while skip_space and self.toks[self.i][0] == "space":
            self.i += 1
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, msg: str, pos: int | None = None) -> TemplateSyntaxError:
        return _syntax(self.text, self.toks[self.i][2] if pos is None else pos, msg, self.name)

    def unexpected(self, tok: tuple[str, str, int], context: str) -> TemplateSyntaxError:
        if tok[0] == "eof":
            return self.error("unexpected EOF", tok[2])
        what = "}}" if tok[0] == "right" else tok[1]
        return self.error(f"unexpected {_quote(what)} in {context}", tok[2])

    def expect_right(self, context: str) -> None:
        tok = self.take()
        if tok[0] != "right":
            raise self.unexpected(tok, context)

    # statements
    def parse(self) -> tuple[Ex, str]:
        body, end = self.list_until(())
        return body, end

    def list_until(self, enders: tuple[str, ...]) -> tuple[Ex, str]:
        """Statements up to `{{end}}` / `{{else}}` (one of enders); returns the list and the ender."""
        items: list[Ex] = []
        while True:
            kind, word, pos = self.take(False)
            if kind == "eof":
                if enders:
                    raise self.error("unexpected EOF", pos)
                return _seq(items), "eof"
            if kind == "text":
                items.append(_text(word))
                continue
            if kind == "right":
                continue
            key = self.peek()[0]
            if key in ("end", "else"):
                if key not in enders:
                    raise self.error(f"unexpected {{{{{key}}}}}", self.peek()[2])
                self.take()
                return _seq(items), key
            items.append(self.action())

    def action(self) -> Ex:
        kind, _, pos = self.peek()
        if kind in ("if", "with", "range"):
            self.take()
            return getattr(self, f"parse_{kind}")()
        if kind in ("define", "template", "block"):
            raise Unsupported(f"template action {{{{{kind}}}}}")
        if kind in ("break", "continue"):
            self.take()
            if not self.range_depth:
                raise self.error(f"{{{{{kind}}}}} outside {{{{range}}}}", pos)
            self.expect_right(kind)
            exc = _Break if kind == "break" else _Continue

            def jump(ctx: _Ctx, dot: Any, out: list[str]) -> None:
                raise exc()
            return jump
        ev, decl = self.pipeline("command", allow_decl=True)
        self.expect_right("command")
        if decl:
            return lambda ctx, dot, out: ev(ctx, dot) and None
        return _print(ev)

    def parse_if(self, context: str = "if") -> Ex:
        mark = len(self.scopes)
        cond, _ = self.pipeline(context, allow_decl=True)
        self.expect_right(context)
        body, end = self.list_until(("end", "else"))
        other = self.else_branch(end, context)
        del self.scopes[mark:]
        if context == "with":
            def run_with(ctx: _Ctx, dot: Any, out: list[str]) -> None:
                v = cond(ctx, dot)
                if truth(v):
                    body(ctx, v, out)
                elif other:
                    other(ctx, dot, out)
            return run_with

        def run_if(ctx: _Ctx, dot: Any, out: list[str]) -> None:
            if truth(cond(ctx, dot)):
                body(ctx, dot, out)
            elif other:
                other(ctx, dot, out)
        return run_if

    def parse_with(self) -> Ex:
        return self.parse_if("with")

    def else_branch(self, end: str, context: str) -> Ex | None:
        if end == "end":
            self.expect_right("end")
            return None
        nxt = self.peek()[0]
        if nxt in ("if", "with") and context != "range":
            self.take()
            return self.parse_if(nxt)  # `{{else if}}` / `{{else with}}` ends with the outer `{{end}}`
        self.expect_right("else")
        other, end2 = self.list_until(("end",))
        self.expect_right("end")
        return other

    def parse_range(self) -> Ex:
        mark = len(self.scopes)
        ev, slots = self.pipeline("range", allow_decl=True, multi=True)
        self.expect_right("range")
        self.range_depth += 1
        body, end = self.list_until(("end", "else"))
        self.range_depth -= 1
        other = self.else_branch(end, "range")
        del self.scopes[mark:]
        key_slot, val_slot = (slots + [None, None])[:2] if len(slots) == 2 else (None, slots[0] if slots else None)

        def run_range(ctx: _Ctx, dot: Any, out: list[str]) -> None:
            v = ev(ctx, dot)
            if type(v) is list:
                items: Any = enumerate(v)
            elif type(v) is dict:
                items = ((k, v[k]) for k in sorted(v))
            elif type(v) is int:
                if key_slot is not None:
                    raise _Located(0, "range", f"can't use {v} to iterate over more than one variable")
                items = ((i, i) for i in range(v))
            elif v is None:
                items = iter(())
            else:
                raise _Located(0, "range", f"range can't iterate over {go_str(v)}")
            ran = False
            vars_ = ctx.vars
            for k, elem in items:
                ran = True
                if key_slot is not None:
                    vars_[key_slot] = k
                if val_slot is not None:
                    vars_[val_slot] = elem
                try:
                    body(ctx, elem, out)
                except _Continue:
                    continue
                except _Break:
                    break
            if not ran and other:
                other(ctx, dot, out)
        return run_range

    # pipelines
    def pipeline(self, context: str, allow_decl: bool = False, multi: bool = False) -> tuple[Ev, list[int]]:
        slots: list[int] = []
        assign = False
        j = self.i
        names: list[tuple[str, int]] = []
        while allow_decl:
            tok = self.peek()
            if tok[0] != "var":
                break
            save = self.i
            self.take()
            op = self.peek()
            if op[0] == "declare" or op[0] == "=" or (op[0] == "," and multi and not names):
                self.take()
                names.append((tok[1], tok[2]))
                if op[0] == "=":
                    assign = True
                if op[0] == ",":
                    continue
                break
            self.i = save
            break
        if not names:
            self.i = j
        for name, pos in names:
            if assign:
                slots.append(self.lookup(name, pos))
            else:
                slots.append(self.nvars)
                self.scopes.append((name, self.nvars))
                self.nvars += 1
        cmds: list[tuple[int, str, list[Any]]] = []
        while True:
            tok = self.peek()
            if tok[0] in ("right", ")"):
                break
            cmds.append(self.command(context))
            if self.peek()[0] == "|":
                self.take()
                if self.peek()[0] in ("right", ")"):
                    raise self.error("missing value for command")
        if not cmds:
            raise self.error(f"missing value for {context}")
        ev = _pipeline(cmds)
        if slots:
            dest = slots[-1]
            inner = ev

            def declare(ctx: _Ctx, dot: Any) -> Any:
                v = inner(ctx, dot)
                ctx.vars[dest] = v
                return v
            return (declare if context not in ("range",) else inner), slots
        return ev, []

    def lookup(self, name: str, pos: int) -> int:
        for n, slot in reversed(self.scopes):
            if n == name:
                return slot
        raise self.error(f"undefined variable {_quote(name)}", pos)

    def command(self, context: str) -> tuple[int, str, list[Any]]:
        """A command: its position, source text, and operands (closures or _Const / function names)."""
        operands: list[Any] = []
        start = self.peek()[2]
        while True:
            tok = self.peek(False)
            if tok[0] == "space":
                self.take(False)
                continue
            if tok[0] in ("right", ")", "|", "eof"):
                break
            if operands and self.toks[self.i - 1][0] != "space":
                raise self.unexpected(tok, "operand")
            operands.append(self.operand())
        end = self.toks[self.i][2]
        if not operands:
            raise self.error("missing value for command")
        return start, self.text[start:end].strip(), operands

    def operand(self) -> Any:
        kind, word, pos = self.take(False)
        node: Any
        if kind == "field":
            node = _field_chain((word[1:],), _dot, pos, word)
        elif kind == "var":
            slot = self.lookup(word, pos)
            node = _var(slot)
        elif kind == "ident":
            if word not in self.functions:
                raise self.error(f'function "{word}" not defined', pos)
            node = ("func", word, pos)
        elif kind == "(":
            ev, _ = self.pipeline("parenthesized pipeline")
            close = self.take()
            if close[0] != ")":
                raise self.unexpected(close, "parenthesized pipeline")
            node = ev
        else:
            node = self.literal(kind, word, pos)
        names: list[str] = []
        while self.peek(False)[0] == "field":
            names.append(self.take(False)[1][1:])
        if names:
            if isinstance(node, _Const) or node is _dot:
                raise self.error(f"unexpected . after term {_quote(word)}", pos)
            base = node if not isinstance(node, tuple) else _call(node[1], node[2], word, [], None)
            if kind == "field":
                node = _field_chain((word[1:], *names), _dot, pos, word + "." + ".".join(names))
            else:
                node = _field_chain(tuple(names), base, pos, self.text[pos:self.toks[self.i][2]])
        return node

    def literal(self, kind: str, word: str, pos: int) -> Any:
        if kind == "string" or kind == "raw":
            try:
                return _Const("s", unquote(word), word)
            except ValueError:
                raise self.error(f"{word}: invalid syntax", pos) from None
        if kind in ("true", "false"):
            return _Const("b", kind == "true", word)
        if kind == "nil":
            return _Const("nil", None, word)
        if kind == "char":
            try:
                ch = unquote(word)
            except ValueError:
                raise self.error(f"malformed character constant: {word}", pos) from None
            if len(ch) != 1:   # `'ab'`, `''`
                raise self.error(f"malformed character constant: {word}", pos)
            code = ord(ch) - 0xDC00 if 0xDC80 <= ord(ch) <= 0xDCFF else ord(ch)   # `'\\xff'` is 255
            return _Const("n", code, word, code, float(code))
        if kind == "number":
            return _number(word) or _raise(self.error(f"illegal number syntax: {_quote(word)}", pos))
        if kind == ".":
            return _dot
        if kind == "eof":
            raise self.error("unclosed action", pos)
        raise self.unexpected((kind, word, pos), "operand")


def _raise(exc: Exception) -> Any:
    raise exc


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(word: str) -> _Const | None:
    clean = word.replace("_", "")
    as_int: int | None = None
    as_float: float | None = None
    try:
        body = clean.lstrip("+-")
        if len(body) > 1 and body[0] == "0" and body[1:].isdigit():
            as_int = int(clean, 8)
        else:
            as_int = int(clean, 0)
        as_float = float(as_int)
    except ValueError:
        try:
            as_float = float(clean)
        except ValueError:
            return None
        if as_float.is_integer():
            as_int = int(as_float)
    is_float_text = as_float is not None and any(c in clean for c in ".eE") and not clean.lower().startswith(("0x", "-0x", "+0x"))
    value = as_float if is_float_text or as_int is None else as_int
    return _Const("n", value, word, as_int, as_float)


# ---- closures -------------------------------------------------------------------------------------
def _dot(ctx: _Ctx, dot: Any) -> Any:
    return dot


def _var(slot: int) -> Ev:
    return lambda ctx, dot: ctx.vars[slot]


def _text(s: str) -> Ex:
    return lambda ctx, dot, out: out.append(s)


def _seq(items: list[Ex]) -> Ex:
    if len(items) == 1:
        return items[0]
    items_t = tuple(items)

    def run(ctx: _Ctx, dot: Any, out: list[str]) -> None:
        for item in items_t:
            item(ctx, dot, out)
    return run


def _print(ev: Ev) -> Ex:
    def run(ctx: _Ctx, dot: Any, out: list[str]) -> None:
        v = ev(ctx, dot)
        out.append(v if type(v) is str else go_str(v))
    return run


def _field(v: Any, name: str, ctx: _Ctx, pos: int, node: str, args: list[Any] | None = None) -> Any:
    t = type(v)
    if t is dict:
        if args:
            raise _Located(pos, node, f"{name} is not a method but has arguments")
        return v.get(name, ctx.missing if v is ctx.data else None)
    if t is GoTime and name in TIME_METHODS:
        fn = TIME_METHODS[name]
        call_args = [v, *(args or [])]
        try:
            call_args = [coerce(k, a) for k, a in zip(fn.params, call_args, strict=False)] + call_args[len(fn.params):]
        except TypeError as exc:
            raise _Located(pos, node, str(exc)) from None
        return _apply(fn, name, call_args, pos, node)
    if v is None:
        return None
    raise _Located(pos, node, f"can't evaluate field {name} in type {_type(v)}")


def _type(v: Any) -> str:
    return type_name(v)


def _field_chain(names: tuple[str, ...], base: Ev, pos: int, node: str) -> Ev:
    if len(names) == 1 and base is _dot:
        name = names[0]

        def one(ctx: _Ctx, dot: Any) -> Any:
            if dot is ctx.data:
                return dot.get(name, ctx.missing)
            return _field(dot, name, ctx, pos, node)
        one.field_names = names  # type: ignore[attr-defined]
        one.field_base = base  # type: ignore[attr-defined]
        return one

    def chain(ctx: _Ctx, dot: Any) -> Any:
        v = base(ctx, dot)
        for n in names:
            v = _field(v, n, ctx, pos, node)
        return v
    chain.field_names = names  # type: ignore[attr-defined]
    chain.field_base = base  # type: ignore[attr-defined]
    return chain


def _apply(fn: Func, name: str, args: list[Any], pos: int, node: str) -> Any:
    n, fixed = len(args), len(fn.params)
    if (fn.variadic is None and n != fixed) or n < fixed:
        want = f"at least {fixed}" if fn.variadic else str(fixed)
        raise _Located(pos, name, f"wrong number of args for {name}: want {want} got {n}")
    try:
        return fn.impl(*args)
    except CallError as exc:
        raise _Located(pos, name, f"error calling {name}: {exc}") from None


def _arg(kind: str, operand: Any, name: str, pos: int) -> Ev:
    """An argument closure that yields the operand converted to the parameter kind."""
    if isinstance(operand, _Const):
        c = operand
        value: Any = c.value
        err = None
        if kind == "s" and c.kind != "s":
            err = f"expected string; found {c.text}"
        elif kind == "i":
            value = c.as_int if c.kind == "n" else None
            if value is None:
                err = f"expected integer; found {c.text}"
        elif kind == "f":
            value = c.as_float if c.kind == "n" else None
            if value is None:
                err = f"expected float; found {c.text}"
        elif kind == "t":
            err = f"can't handle {c.text} for arg of type time.Time"
        if c.kind == "nil" and kind != "a":
            err = f"cannot assign nil to {kind}"
        if err:
            return lambda ctx, dot: _raise(_Located(pos, name, err))
        return lambda ctx, dot: value
    if isinstance(operand, tuple):
        operand = _call(operand[1], operand[2], operand[1], [], None)
    if kind == "a":
        return operand
    ev: Ev = operand

    def checked(ctx: _Ctx, dot: Any) -> Any:
        v = ev(ctx, dot)
        try:
            return coerce(kind, v)
        except TypeError as exc:
            raise _Located(pos, name, str(exc)) from None
    return checked


def _call(name: str, pos: int, node: str, operands: list[Any], final: Ev | None) -> Ev:
    """A function call: its operands (and the previous command's value, when piped) as arguments."""
    if name == "__line__" or name == "__timestamp__":
        if operands or final:
            n = len(operands) + (final is not None)
            return lambda ctx, dot: _raise(_Located(pos, name, f"wrong number of args for {name}: want 0 got {n}"))
        if name == "__line__":
            return lambda ctx, dot: ctx.line
        return lambda ctx, dot: GoTime(ctx.ts)
    if name == "call":
        return lambda ctx, dot: _raise(_Located(pos, name, "error calling call: call of nil"))
    all_ops: list[Any] = list(operands) + ([final] if final is not None else [])
    if name in ("and", "or"):
        args = [_arg("a", op, name, pos) for op in all_ops]
        if not args:
            return lambda ctx, dot: _raise(_Located(pos, name, f"wrong number of args for {name}: want at least 1 got 0"))
        want = name == "or"

        def logic(ctx: _Ctx, dot: Any) -> Any:
            v = None
            for a in args:
                v = a(ctx, dot)
                if truth(v) == want:
                    return v
            return v
        return logic
    fn = _ALL_FUNCS[name]
    kinds = [fn.params[i] if i < len(fn.params) else (fn.variadic or "a") for i in range(len(all_ops))]
    arg_evs = tuple(_arg(k, op, name, pos) for k, op in zip(kinds, all_ops, strict=True))
    if (fn.variadic is None and len(arg_evs) != len(fn.params)) or len(arg_evs) < len(fn.params):
        n = len(arg_evs)
        return lambda ctx, dot: _apply(fn, name, [None] * n, pos, node)
    impl = fn.impl
    if len(arg_evs) == 1:
        (a0,) = arg_evs

        def call1(ctx: _Ctx, dot: Any) -> Any:
            try:
                return impl(a0(ctx, dot))
            except CallError as exc:
                raise _Located(pos, name, f"error calling {name}: {exc}") from None
        return call1

    def call(ctx: _Ctx, dot: Any) -> Any:
        try:
            return impl(*[a(ctx, dot) for a in arg_evs])
        except CallError as exc:
            raise _Located(pos, name, f"error calling {name}: {exc}") from None
    return call


def _command(cmd: tuple[int, str, list[Any]], final: Ev | None) -> Ev:
    pos, text, operands = cmd
    first = operands[0]
    if isinstance(first, tuple):
        return _call(first[1], first[2], text, operands[1:], final)
    if len(operands) > 1 or final is not None:
        names = getattr(first, "field_names", None)
        if names:
            return _method_call(first, names, pos, text, operands[1:], final)
        if names:
            msg = f"{names[-1]} is not a method but has arguments"
        else:
            msg = f"can't give argument to non-function {text.split()[0]}"
        return lambda ctx, dot: _raise(_Located(pos, text.split()[0], msg))
    if isinstance(first, _Const):
        if first.kind == "nil":
            return lambda ctx, dot: _raise(_Located(pos, "nil", "nil is not a command"))
        value = first.value
        return lambda ctx, dot: value
    ev: Ev = first
    return ev


def _method_call(first: Ev, names: tuple[str, ...], pos: int, text: str, operands: list[Any],
                 final: Ev | None) -> Ev:
    """`.a.b arg…`: a method call on the value of `.a` (only time.Time has methods)."""
    base: Ev = first.field_base  # type: ignore[attr-defined]
    recv = _field_chain(names[:-1], base, pos, text) if len(names) > 1 else base
    args = [_arg("a", op, names[-1], pos) for op in operands] + ([final] if final else [])
    node = text.split()[0]

    def call(ctx: _Ctx, dot: Any) -> Any:
        v = recv(ctx, dot)
        if type(v) is not GoTime:  # Go reports the field before evaluating the arguments
            return _field(v, names[-1], ctx, pos, node, [None])
        return _field(v, names[-1], ctx, pos, node, [a(ctx, dot) for a in args])
    return call


def _pipeline(cmds: list[tuple[int, str, list[Any]]]) -> Ev:
    ev: Ev | None = None
    for cmd in cmds:
        ev = _command(cmd, ev)
    assert ev is not None
    return ev


# ---- the public face ------------------------------------------------------------------------------
class Template:
    """A compiled template. `render` is safe to call from many threads at once (no shared state)."""

    __slots__ = ("text", "name", "_run", "_nvars", "_simple_key", "_const", "_missing", "_escapes")

    def __init__(self, text: str, name: str = "line", promtail: bool = False) -> None:
        self.text, self.name = text, name
        self._missing: str | None = None if promtail else ""
        parser = _Parser(text, name, _PROMTAIL_NAMES if promtail else _LOKI_NAMES)
        self._run, _ = parser.parse()
        self._nvars = parser.nvars
        toks = [t for t in parser.toks if t[0] != "space"]
        kinds = [t[0] for t in toks]
        self._simple_key = toks[1][1][1:] if kinds == ["left", "field", "right", "eof"] else None
        self._const = "".join(t[1] for t in toks if t[0] == "text") if set(kinds) <= {"text", "eof"} else None
        self._escapes = "\\" in text   # a `"\\x99"` literal yields a byte that is not UTF-8

    def render(self, data: dict[str, str], line: str = "", ts_ns: int = 0) -> str:
        """The template's output for one entry: `data` is its label set, `line` and `ts_ns` feed
        `__line__` and `__timestamp__`. Raises TemplateExecError with Go's message on failure."""
        if self._simple_key is not None:
            found = data.get(self._simple_key, self._missing)
            return "<no value>" if found is None else found
        if self._const is not None:
            return self._const
        out: list[str] = []
        try:
            self._run(_Ctx(data, line, ts_ns, self._nvars, self._missing), data, out)
        except _Located as exc:
            before = self.text[:exc.pos]
            size = len(before.encode("utf-8", "surrogateescape"))
            line_start = before[:before.rfind("\n") + 1]
            col = size - len(line_start.encode("utf-8", "surrogateescape"))
            raise TemplateExecError(f"template: {self.name}:{before.count(chr(10)) + 1}:{col}: executing "
                                    f'"{self.name}" at <{exc.node}>: {exc.msg}') from None
        except (_Break, _Continue):
            pass
        text = "".join(out)
        if self._escapes and not text.isascii():   # raw bytes as U+FFFD, as Loki's JSON answer shows them
            return to_utf8(text)
        return text

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


@functools.lru_cache(maxsize=1024)
def compile_template(text: str, name: str = "line", promtail: bool = False) -> Template:
    """Parse a Go template once (cached by text); raise TemplateSyntaxError with Go's message.

    `name` is Go's template name in messages: Loki uses "line" for line_format and "label" for
    label_format, Promtail "pipeline_template"."""
    return Template(text, name, promtail)
