"""The template function table: Go's text/template builtins plus Loki's functions (`pkg/logql/log/fmt.go`),
which are partly Go's strings package and partly Sprig's.

Each entry names its parameter kinds: `s` string, `i` int, `f` float64, `t` time.Time, `a` any
(Go's interface{}), and the kind of its variadic tail if it has one. A function raises CallError for
what Go reports as `error calling NAME: …` (returned errors and panics).
"""

from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import json
import math
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import re2

from lokiarrow.logql.quoting import to_utf8
from lokiarrow.logql.template_fmt import go_str, sprint, sprintf, sprintln, type_name
from lokiarrow.logql.template_time import GoTime, format_layout, parse_layout, unix_to_time, zone
from lokiarrow.model import go_regex_error
from lokiarrow.units import parse_bytes, parse_duration_ns


class CallError(Exception):
    """A function failed: Go prints `error calling NAME: <this message>`."""


@dataclass(frozen=True, slots=True)
class Func:
    params: str
    variadic: str | None
    impl: Callable[..., object]


def truth(v: object) -> bool:
    """Go template truth: false, 0, "", nil and empty lists/maps are false; a time is true."""
    if v is None:
        return False
    if type(v) is GoTime:
        return True
    return bool(v)


# Sprig's numeric conversions (spf13/cast): what cannot be converted is 0.
def to_int64(v: object) -> int:
    t = type(v)
    if t is int:
        return v  # type: ignore[return-value]
    if t is float:
        f: float = v  # type: ignore[assignment]
        return int(f) if math.isfinite(f) else 0
    if t is bool:
        return 1 if v else 0
    if t is str:
        s: str = v  # type: ignore[assignment]
        if "." in s and s.rstrip("0").endswith("."):
            s = s.rstrip("0")[:-1]
        try:
            if len(s) > 1 and s.lstrip("+-").startswith("0") and s.lstrip("+-")[1:].isdigit():
                return int(s, 8)
            return int(s, 0) if s == s.strip() else 0
        except ValueError:
            return 0
    return 0


def to_float64(v: object) -> float:
    t = type(v)
    if t is float:
        return v  # type: ignore[return-value]
    if t is int or t is bool:
        return float(v)  # type: ignore[arg-type]
    if t is str:
        try:
            return float(v) if "_" not in v else 0.0  # type: ignore[arg-type, operator]
        except ValueError:
            return 0.0
    return 0.0


_D = decimal.Context(prec=700)   # exact for any float quotient quantized to 1e-16
_DIV_QUANTUM = decimal.Decimal("1e-16")


def _to_decimal(x: object) -> decimal.Decimal:
    f = to_float64(x)
    if not math.isfinite(f):   # shopspring's NewFromFloat panics, which Go's template reports
        raise CallError(f"Cannot create a Decimal from {'NaN' if math.isnan(f) else '+Inf' if f > 0 else '-Inf'}")
    return decimal.Decimal(repr(f))


def _decimal_op(op: str) -> Callable[..., float]:
    """Sprig's addf/subf/mulf/divf: shopspring decimal arithmetic on the shortest decimal of each float."""
    def run(a: object, *rest: object) -> float:
        acc = _to_decimal(a)
        for x in rest:
            d = _to_decimal(x)
            if op == "+":
                acc = _D.add(acc, d)
            elif op == "-":
                acc = _D.subtract(acc, d)
            elif op == "*":
                acc = _D.multiply(acc, d)
            else:
                if d == 0:
                    raise CallError("decimal division by 0")
                acc = _D.divide(acc, d).quantize(_DIV_QUANTUM, rounding=decimal.ROUND_HALF_UP, context=_D)
        return float(acc)
    return run


def _int_div(a: object, b: object) -> int:
    x, y = to_int64(a), to_int64(b)
    if y == 0:
        raise CallError("runtime error: integer divide by zero")
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _int_mod(a: object, b: object) -> int:
    x, y = to_int64(a), to_int64(b)
    if y == 0:
        raise CallError("runtime error: integer divide by zero")
    return x - y * _int_div(x, y)


def _integral(fn: Callable[[float], int], x: float) -> float:
    """Go's math.Ceil/Floor: infinities and NaN come back as they are (Python's raise)."""
    return float(fn(x)) if math.isfinite(x) else x


def _round(a: object, p: int, *on: float) -> float:
    round_on = on[0] if on else 0.5
    try:
        pow10 = math.pow(10, p)
    except OverflowError:
        pow10 = math.inf
    digit = pow10 * to_float64(a)
    frac = math.modf(digit)[0]
    rounded = _integral(math.ceil if frac >= round_on else math.floor, digit)
    if pow10 == 0:   # Go's float division: 0/0 is NaN, x/0 an infinity
        return math.nan if rounded == 0 or math.isnan(rounded) else math.copysign(math.inf, rounded)
    return rounded / pow10


def _title(s: str) -> str:
    """Go's strings.Title: upper-case the first letter of each word, leave the rest alone."""
    out = []
    prev_sep = True
    for ch in s:
        out.append(ch.upper() if prev_sep else ch)
        if ch.isascii():
            prev_sep = not (ch.isalnum() or ch == "_")
        else:
            prev_sep = ch.isspace()
    return "".join(out)


def _substr(start: int, end: int, s: str) -> str:
    if start < 0:
        return s[:max(end, 0)]
    if end < 0 or end > len(s):
        return s[start:]
    return s[start:end]


def _trunc(c: int, s: str) -> str:
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c:]
    if c >= 0 and len(s) > c:
        return s[:c]
    return s


MAX_BUILT_CHARS = 1 << 26   # repeat, indent and align refuse to build a longer string


def _spaces(n: int, times: int = 1) -> str:
    _check_built(max(n, 0) * times)
    return " " * n


def _check_built(size: int) -> None:
    if size > MAX_BUILT_CHARS:
        raise CallError(f"cannot build a string of {size} characters: the limit is {MAX_BUILT_CHARS}")


def _indent(n: int, s: str) -> str:
    pad = _spaces(n, s.count("\n") + 1)
    _check_built(len(s) + len(pad) * (s.count("\n") + 1))
    return pad + s.replace("\n", "\n" + pad)


def _align(count: int, s: str, left: bool) -> str:
    _check_built(count)
    if count < 0 or count == len(s):
        return s
    if count > len(s):
        return s + " " * (count - len(s)) if left else " " * (count - len(s)) + s
    return s[:count] if left else s[len(s) - count:]


def _repeat(n: int, s: str) -> str:
    if n < 0:
        raise CallError("strings: negative Repeat count")
    _check_built(len(s) * n)
    return s * n


def _regex(pattern: str) -> re2._Regexp:
    try:
        return _compiled(pattern)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else exc
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        raise CallError(f"error parsing regexp: {go_regex_error(text, pattern)}") from None
    except UnicodeEncodeError:   # not UTF-8 (a `\\x99` escape): Go's regexp refuses it too
        raise CallError(f"error parsing regexp: invalid UTF-8: `{to_utf8(pattern)}`") from None


_REGEX_CACHE: dict[str, re2._Regexp] = {}


def _compiled(pattern: str) -> re2._Regexp:
    r = _REGEX_CACHE.get(pattern)
    if r is None:
        opts = re2.Options()
        opts.log_errors = False
        r = re2.compile(pattern, opts)
        if len(_REGEX_CACHE) < 1000:
            _REGEX_CACHE[pattern] = r
    return r


def _expand(template: str, m: object) -> str:
    """Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`; unknown groups expand to nothing."""
    out = []
    i = 0
    while i < len(template):
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        rest = template[j + 1:]
        if rest.startswith("$"):
            out.append("$")
            i = j + 2
            continue
        name, size = "", 0
        if rest.startswith("{"):
            k = rest.find("}")
            name = rest[1:k] if k > 0 else ""
            size = k + 1 if name and all(c.isalnum() or c == "_" for c in name) else 0
        else:
            while size < len(rest) and (rest[size].isalnum() or rest[size] == "_"):
                size += 1
            name = rest[:size]
        if not size:
            out.append("$")
            i = j + 1
            continue
        out.append(_group(m, name))
        i = j + 1 + size
    return "".join(out)


def _group(m: object, name: str) -> str:
    try:
        key: int | str = int(name) if name.isdigit() else name
        return m.group(key) or ""  # type: ignore[attr-defined]
    except (IndexError, KeyError, re2.error):
        return ""


def _replace_all(pattern: str, s: str, repl: str, literal: bool) -> str:
    r = _regex(pattern)
    s, repl = to_utf8(s), to_utf8(repl)
    if literal or "$" not in repl:
        return r.sub(lambda _m: repl, s)
    return r.sub(lambda m: _expand(repl, m), s)


def _count(pattern: str, s: str) -> int:
    return sum(1 for _ in _regex(pattern).finditer(to_utf8(s)))


def _urldecode(s: str) -> str:
    for i, ch in enumerate(s):
        if ch == "%" and not all(c in "0123456789abcdefABCDEF" for c in s[i + 1:i + 3].ljust(2, "x")):
            raise CallError(f'invalid URL escape "{s[i:i + 3]}"')
    return urllib.parse.unquote_plus(s, errors="surrogateescape")


def _b64dec(s: str) -> str:
    if len(s) % 4 not in (0, 1):
        s += "=" * (4 - len(s) % 4)
    try:
        return base64.b64decode(s, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return f"illegal base64 data at input byte {_b64_bad_byte(s)}"


def _b64_bad_byte(s: str) -> int:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for i, ch in enumerate(s):
        if ch not in alphabet:
            return i
    return len(s) - len(s) % 4


def _bytes(s: str) -> float:
    try:
        return float(parse_bytes(s))
    except ValueError:
        raise CallError(f"strconv.ParseFloat: parsing {json.dumps(s)}: invalid syntax") from None


def _duration(s: str) -> float:
    if any(u in s for u in ("d", "w", "y")):
        raise CallError(f'time: unknown unit in duration "{s}"')
    try:
        return parse_duration_ns(s) / 1e9
    except ValueError as exc:
        raise CallError(f"time: {exc}") from None


def _default(d: object, *given: object) -> object:
    if not given:
        return d
    g = given[0]
    empty = g is None or (type(g) is not GoTime and not g)
    return d if empty else g


def _from_json(s: str) -> object:
    try:
        return json.loads(s, parse_int=float)
    except ValueError:
        return None


def _date(layout: str, d: object) -> str:
    if type(d) is GoTime:
        t: GoTime = d  # type: ignore[assignment]
    elif type(d) is int:
        t = GoTime(d * 10**9)  # type: ignore[operator]
    else:
        t = _now()
    try:
        return format_layout(GoTime(t.ns), layout)
    except (OverflowError, ValueError):
        raise CallError(f"cannot format the time {t.ns} ns: out of range") from None


def _now() -> GoTime:
    return GoTime(time.time_ns())


def _to_date_in_zone(layout: str, zone_name: str, s: str) -> GoTime:
    return parse_layout(layout, s, zone(zone_name) or zone("UTC")) or GoTime.zero()  # type: ignore[arg-type]


def _unix_to_time(epoch: str) -> GoTime:
    try:
        return unix_to_time(epoch)
    except ValueError as exc:
        raise CallError(str(exc)) from None


def _trim_left(s: str, cutset: str) -> str:
    return s.lstrip(cutset) if cutset else s


def _go_replace(s: str, old: str, new: str, n: int) -> str:
    return s.replace(old, new, n if n >= 0 else -1)


# Go's builtins (those that take plain values; and/or are compiled lazily by the compiler).
def _len(v: object) -> int:
    if type(v) is str:
        return len(v.encode("utf-8", "surrogateescape"))  # type: ignore[attr-defined]
    if type(v) in (list, dict):
        return len(v)  # type: ignore[arg-type]
    raise CallError(f"len of type {type_name(v)}" if v is not None else "len of nil pointer")


def _index(v: object, *keys: object) -> object:
    for k in keys:
        if v is None:
            raise CallError("index of untyped nil")
        if type(v) is dict:
            if type(k) is not str:
                raise CallError(f"value has type {type_name(k)}; should be string")
            v = v.get(k)  # type: ignore[attr-defined]
        elif type(v) in (list, str):
            if type(k) is not int:
                raise CallError(f"cannot index slice/array with type {type_name(k)}")
            seq = v.encode("utf-8", "surrogateescape") if type(v) is str else v  # type: ignore[attr-defined]
            if not 0 <= k < len(seq):  # type: ignore[arg-type, operator]
                raise CallError(f"index out of range: {k}")
            v = seq[k]  # type: ignore[index]
        else:
            raise CallError(f"can't index item of type {type_name(v)}")
    return v


def _slice(v: object, *idx: object) -> object:
    if type(v) not in (str, list):
        raise CallError(f"can't slice item of type {type_name(v)}")
    if len(idx) > 2 + (type(v) is list):
        raise CallError(f"too many slice indexes: {len(idx)}")
    seq = v.encode("utf-8", "surrogateescape") if type(v) is str else v  # type: ignore[attr-defined]
    bounds = [to_int64(i) for i in idx] + [len(seq)] * (2 - len(idx))  # type: ignore[arg-type]
    if not 0 <= bounds[0] <= bounds[1] <= len(seq):  # type: ignore[arg-type]
        raise CallError(f"index out of range: {bounds[1]}")
    out = seq[bounds[0]:bounds[1]]  # type: ignore[index]
    return out.decode("utf-8", "replace") if type(v) is str else out


_KIND_OF = {bool: "bool", int: "int", float: "float", str: "string"}


def _compare(a: object, b: object, ordered: bool) -> int:
    ka, kb = _KIND_OF.get(type(a)), _KIND_OF.get(type(b))
    if ka is None and kb is None and not ordered:   # nil, maps, lists: equal or not, never ordered
        return 0 if a == b else 1
    if ka != kb:
        raise CallError("incompatible types for comparison" if ka and kb or not ordered else "invalid type for comparison")
    if ordered and (ka is None or ka == "bool"):
        raise CallError("invalid type for comparison")
    return 0 if a == b else (-1 if a < b else 1)  # type: ignore[operator]


def _eq(a: object, *others: object) -> bool:
    if not others:
        raise CallError("missing argument for comparison")
    return any(_compare(a, b, False) == 0 for b in others)


def _html(*args: object) -> str:
    s = sprint(list(args)) if not (len(args) == 1 and type(args[0]) is str) else args[0]
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")  # type: ignore[union-attr]
            .replace('"', "&#34;").replace("\0", "\ufffd"))


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _js(*args: object) -> str:
    s: str = sprint(list(args)) if not (len(args) == 1 and type(args[0]) is str) else args[0]  # type: ignore[assignment]
    return "".join(_JS.get(c) or (f"\\u{ord(c):04X}" if c < " " or not c.isprintable() else c) for c in s)


def _urlquery(*args: object) -> str:
    s: str = sprint(list(args)) if not (len(args) == 1 and type(args[0]) is str) else args[0]  # type: ignore[assignment]
    return urllib.parse.quote_plus(s, safe="-_.~")


def _method(f: Callable[..., object]) -> Func:
    return Func("t", None, f)


FUNCS: dict[str, Func] = {
    # Go's builtins
    "not": Func("a", None, lambda v: not truth(v)),
    "len": Func("a", None, _len),
    "index": Func("a", "a", _index),
    "slice": Func("a", "a", _slice),
    "print": Func("", "a", lambda *a: sprint(list(a))),
    "printf": Func("s", "a", lambda f, *a: sprintf(f, list(a))),
    "println": Func("", "a", lambda *a: sprintln(list(a))),
    "html": Func("", "a", _html),
    "js": Func("", "a", _js),
    "urlquery": Func("", "a", _urlquery),
    "eq": Func("a", "a", _eq),
    "ne": Func("aa", None, lambda a, b: _compare(a, b, False) != 0),
    "lt": Func("aa", None, lambda a, b: _compare(a, b, True) < 0),
    "le": Func("aa", None, lambda a, b: _compare(a, b, True) <= 0),
    "gt": Func("aa", None, lambda a, b: _compare(a, b, True) > 0),
    "ge": Func("aa", None, lambda a, b: _compare(a, b, True) >= 0),
    # Loki's (Go strings package and its own)
    "ToLower": Func("s", None, str.lower),
    "ToUpper": Func("s", None, str.upper),
    "Replace": Func("sssi", None, _go_replace),
    "Trim": Func("ss", None, lambda s, c: s.strip(c) if c else s),
    "TrimLeft": Func("ss", None, _trim_left),
    "TrimRight": Func("ss", None, lambda s, c: s.rstrip(c) if c else s),
    "TrimPrefix": Func("ss", None, str.removeprefix),
    "TrimSuffix": Func("ss", None, str.removesuffix),
    "TrimSpace": Func("s", None, str.strip),
    "regexReplaceAll": Func("sss", None, lambda r, s, x: _replace_all(r, s, x, False)),
    "regexReplaceAllLiteral": Func("sss", None, lambda r, s, x: _replace_all(r, s, x, True)),
    "count": Func("ss", None, _count),
    "urldecode": Func("s", None, _urldecode),
    "urlencode": Func("s", None, lambda s: urllib.parse.quote_plus(s, safe="-_.~", errors="surrogateescape")),
    "bytes": Func("s", None, _bytes),
    "duration": Func("s", None, _duration),
    "duration_seconds": Func("s", None, _duration),
    "unixEpochMillis": Func("t", None, lambda t: str(t.ns // 10**6)),
    "unixEpochNanos": Func("t", None, lambda t: str(t.ns)),
    "toDateInZone": Func("sss", None, _to_date_in_zone),
    "unixToTime": Func("s", None, _unix_to_time),
    "alignLeft": Func("is", None, lambda n, s: _align(n, s, True)),
    "alignRight": Func("is", None, lambda n, s: _align(n, s, False)),
    "b64dec": Func("s", None, _b64dec),
    # Sprig's
    "b64enc": Func("s", None, lambda s: base64.b64encode(s.encode("utf-8", "surrogateescape")).decode()),
    "lower": Func("s", None, str.lower),
    "upper": Func("s", None, str.upper),
    "title": Func("s", None, _title),
    "trunc": Func("is", None, _trunc),
    "substr": Func("iis", None, _substr),
    "contains": Func("ss", None, lambda sub, s: sub in s),
    "hasPrefix": Func("ss", None, lambda p, s: s.startswith(p)),
    "hasSuffix": Func("ss", None, lambda p, s: s.endswith(p)),
    "indent": Func("is", None, _indent),
    "nindent": Func("is", None, lambda n, s: "\n" + _indent(n, s)),
    "replace": Func("sss", None, lambda old, new, s: s.replace(old, new)),
    "repeat": Func("is", None, _repeat),
    "trim": Func("s", None, str.strip),
    "trimAll": Func("ss", None, lambda c, s: s.strip(c) if c else s),
    "trimSuffix": Func("ss", None, lambda x, s: s.removesuffix(x)),
    "trimPrefix": Func("ss", None, lambda x, s: s.removeprefix(x)),
    "int": Func("a", None, to_int64),
    "float64": Func("a", None, to_float64),
    "add": Func("", "a", lambda *a: sum(to_int64(x) for x in a)),
    "sub": Func("aa", None, lambda a, b: to_int64(a) - to_int64(b)),
    "mul": Func("a", "a", lambda a, *v: math.prod((to_int64(x) for x in v), start=to_int64(a))),
    "div": Func("aa", None, _int_div),
    "mod": Func("aa", None, _int_mod),
    "addf": Func("", "a", lambda *a: _decimal_op("+")(0.0, *a)),
    "subf": Func("a", "a", _decimal_op("-")),
    "mulf": Func("a", "a", _decimal_op("*")),
    "divf": Func("a", "a", _decimal_op("/")),
    "max": Func("a", "a", lambda a, *v: max([to_int64(a), *map(to_int64, v)])),
    "min": Func("a", "a", lambda a, *v: min([to_int64(a), *map(to_int64, v)])),
    "maxf": Func("a", "a", lambda a, *v: max([to_float64(a), *map(to_float64, v)])),
    "minf": Func("a", "a", lambda a, *v: min([to_float64(a), *map(to_float64, v)])),
    "ceil": Func("a", None, lambda a: _integral(math.ceil, to_float64(a))),
    "floor": Func("a", None, lambda a: _integral(math.floor, to_float64(a))),
    "round": Func("ai", "f", _round),
    "fromJson": Func("s", None, _from_json),
    "date": Func("sa", None, _date),
    "toDate": Func("ss", None, lambda f, s: _to_date_in_zone(f, "Local", s)),
    "now": Func("", None, _now),
    "unixEpoch": Func("t", None, lambda t: str(t.unix())),
    "default": Func("a", "a", _default),
}

# Methods of time.Time reachable as fields (`{{ (__timestamp__).Unix }}`); the receiver is the first argument.
TIME_METHODS: dict[str, Func] = {
    "Unix": _method(GoTime.unix), "UnixMilli": _method(lambda t: t.ns // 10**6),
    "UnixMicro": _method(lambda t: t.ns // 10**3), "UnixNano": _method(lambda t: t.ns),
    "UTC": _method(lambda t: GoTime(t.ns)), "Local": _method(lambda t: GoTime(t.ns)),
    "String": _method(str), "IsZero": _method(GoTime.is_zero),
    "Format": Func("ts", None, format_layout),
    "Year": _method(lambda t: t.local().year), "Day": _method(lambda t: t.local().day),
    "Hour": _method(lambda t: t.local().hour), "Minute": _method(lambda t: t.local().minute),
    "Second": _method(lambda t: t.local().second), "Nanosecond": _method(lambda t: t.ns % 10**9),
    "YearDay": _method(lambda t: t.local().timetuple().tm_yday),
}

KIND_NAMES = {"s": "string", "i": "int", "f": "float64", "t": "time.Time"}


def coerce(kind: str, v: object) -> object:
    """Check a (non-constant) argument against a parameter kind as Go's reflection does; return it."""
    if kind == "a":
        return v
    t = type(v)
    if (kind == "s" and t is str) or (kind == "i" and t is int) or (kind == "t" and t is GoTime):
        return v
    if kind == "f" and t in (float, int):
        return float(v)  # type: ignore[arg-type]
    if v is None:
        raise TypeError(f"invalid value; expected {KIND_NAMES[kind]}")
    raise TypeError(f"wrong type for value; expected {KIND_NAMES[kind]}; got {type_name(v)}")


def _salted(hash_name: str) -> Callable[[str, str], str]:
    return lambda salt, s: hashlib.new(hash_name, (salt + s).encode("utf-8", "surrogateescape")).hexdigest()


# Promtail's `template` and `replace` stages add these to the functions above
PROMTAIL_FUNCS: dict[str, Func] = {
    "Hash": Func("ss", None, _salted("sha3_256")),
    "Sha2Hash": Func("ss", None, _salted("sha256")),
}


__all__ = ["FUNCS", "PROMTAIL_FUNCS", "TIME_METHODS", "CallError", "Func", "coerce", "go_str", "truth"]
