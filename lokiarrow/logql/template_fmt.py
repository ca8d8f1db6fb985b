"""Go's fmt for template values: `%v` printing (fmt.Sprint), `fmt.Sprintf` verbs, Go type names.

Template values are Python values standing for Go ones: str (string), int (int), float (float64),
bool, None (nil), GoTime (time.Time), list ([]interface {}) and dict (map[string]interface {}).
"""

from __future__ import annotations

import decimal
import re

from lokiarrow.logql.template_time import GoTime


def type_name(v: object) -> str:
    """Go's `%T` of a template value."""
    if v is None:
        return "<nil>"
    return _TYPE_NAMES.get(type(v), "interface {}")


_TYPE_NAMES: dict[type, str] = {
    str: "string", bool: "bool", int: "int", float: "float64", GoTime: "time.Time",
    list: "[]interface {}", dict: "map[string]interface {}",
}


def format_float(f: float, prec: int = -1) -> str:
    """Go's `%v` of a float64: strconv.FormatFloat(f, 'g', -1, 64), shortest digits, exponent outside [1e-4, 1e6)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if prec >= 0:
        return f"{f:.{prec}g}"
    digits = decimal.Decimal(repr(f)).normalize()
    sign, ds, exp = digits.as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, ds)) or "0"
    e10 = len(text) - 1 + exp
    neg = "-" if sign else ""
    if f == 0:
        return neg + "0"
    if e10 < -4 or e10 >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mant}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
    if e10 < 0:
        return f"{neg}0.{'0' * (-e10 - 1)}{text}"
    if e10 + 1 >= len(text):
        return neg + text + "0" * (e10 + 1 - len(text))
    return f"{neg}{text[:e10 + 1]}.{text[e10 + 1:]}"


def go_str(v: object, top: bool = True) -> str:
    """Go's `%v` of a value; a nil at the top prints as the template's `<no value>`."""
    t = type(v)
    if t is str:
        return v  # type: ignore[return-value]
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return format_float(v)  # type: ignore[arg-type]
    if v is None:
        return "<no value>" if top else "<nil>"
    if t is list:
        return "[" + " ".join(go_str(x, False) for x in v) + "]"  # type: ignore[attr-defined]
    if t is dict:
        m: dict[str, object] = v  # type: ignore[assignment]
        return "map[" + " ".join(f"{k}:{go_str(m[k], False)}" for k in sorted(m)) + "]"
    return str(v)


def sprint(args: list[object]) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    for i, a in enumerate(args):
        if i and type(a) is not str and type(args[i - 1]) is not str:
            out.append(" ")
        out.append(go_str(a, False))
    return "".join(out)


def sprintln(args: list[object]) -> str:
    return " ".join(go_str(a, False) for a in args) + "\n"


def go_quote(s: str) -> str:
    """Go's strconv.Quote."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.)?", re.S)


def sprintf(fmt: str, args: list[object]) -> str:
    """Go's fmt.Sprintf for the verbs templates use: %v %s %d %q %f %e %g %x %X %o %b %c %t %T %%."""
    out = []
    pos = argi = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb is None:
            out.append("%!(NOVERB)")
            continue
        if verb == "%":
            out.append("%")
            continue
        if width == "*" or prec == "*":
            out.append("%!(BADWIDTH)")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_format_one(flags, int(width) if width else None, prec, verb, arg))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{type_name(a)}={go_str(a, False)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _pad(s: str, flags: str, width: int | None) -> str:
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    return " " * (width - len(s)) + s


def _format_one(flags: str, width: int | None, prec: str | None, verb: str, arg: object) -> str:
    t = type(arg)
    spec = "%" + flags + (str(width) if width is not None else "") + ("." + prec if prec is not None else "")
    if verb == "T":
        return _pad(type_name(arg), flags, width)
    if verb == "v" and t is not float:
        return _pad(go_str(arg, False), flags, width)
    if verb == "t" and t is bool:
        return _pad(go_str(arg), flags, width)
    if t is str:
        s: str = arg  # type: ignore[assignment]
        if verb in "sv":
            return (spec + "s") % s
        if verb == "q":
            return _pad(go_quote(s if prec is None else s[:int(prec or 0)]), flags, width)
        if verb in "xX":
            h = s.encode("utf-8", "surrogateescape").hex()
            return _pad(h.upper() if verb == "X" else h, flags, width)
    elif t is int:
        n: int = arg  # type: ignore[assignment]
        if verb in "dxXo":
            return (spec + verb) % n
        if verb == "b":
            return _pad(format(n, "b"), flags, width)
        if verb == "c":
            return _pad(chr(n), flags, width)
        if verb == "q":
            return _pad("'" + chr(n) + "'", flags, width)
    elif t is float:
        f: float = arg  # type: ignore[assignment]
        if verb in "vgG" and prec is None:
            s = format_float(f)
            if "+" in flags and f >= 0:
                s = "+" + s
            return _pad(s.upper() if verb == "G" else s, flags, width)
        if verb in "eEfFgG":
            return (spec + verb) % f
    elif t is GoTime and verb == "s":
        return _pad(str(arg), flags, width)
    return f"%!{verb}({type_name(arg)}={go_str(arg, False)})"
