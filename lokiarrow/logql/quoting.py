"""Go's string and rune quoting rules, as Loki's and Prometheus' lexers apply them.

Both lexers unquote with Prometheus' `strutil.Unquote` (Go's `strconv.Unquote` that also takes
single-quoted strings) and print errors with Go's `%q` / `%#U`. A `\\xNN` escape yields a raw byte
that need not be valid UTF-8; such bytes are kept as surrogate escapes (U+DC80..U+DCFF), which
`model.go_quote` prints back as `\\xNN`.
"""

from __future__ import annotations

from lokiarrow.model import go_quote

_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX_LENGTHS = {"x": 2, "u": 4, "U": 8}
_MAX_RUNE = 0x10FFFF


def unquote(text: str) -> str:
    """Unquote a `"…"`, `'…'` or `` `…` `` literal; raise ValueError("invalid syntax") as Go does."""
    if len(text) < 2 or text[0] != text[-1]:
        raise ValueError("invalid syntax")
    quote, body = text[0], text[1:-1]
    if quote == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body
    if quote not in ('"', "'") or "\n" in body:
        raise ValueError("invalid syntax")
    if "\\" not in body and quote not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        i = _unquote_char(body, i, quote, out)
    return out.decode("utf-8", "surrogateescape")


def _unquote_char(body: str, i: int, quote: str, out: bytearray) -> int:
    """Append the value of the character (or escape) at body[i] to out; return the next index."""
    c = body[i]
    if c == quote:
        raise ValueError("invalid syntax")
    if c != "\\":
        out += c.encode("utf-8", "surrogateescape")
        return i + 1
    if i + 1 >= len(body):
        raise ValueError("invalid syntax")
    c = body[i + 1]
    i += 2
    if c in _SIMPLE_ESCAPES:
        out += _SIMPLE_ESCAPES[c].encode()
    elif c in _HEX_LENGTHS:
        digits = body[i:i + _HEX_LENGTHS[c]]
        if len(digits) < _HEX_LENGTHS[c] or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise ValueError("invalid syntax")
        value = int(digits, 16)
        i += len(digits)
        if c == "x":
            out.append(value)
        elif value > _MAX_RUNE:
            raise ValueError("invalid syntax")
        else:
            out += _encode_rune(value)
    elif c in "01234567":
        digits = body[i - 1:i + 2]
        if len(digits) < 3 or not all(d in "01234567" for d in digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        out.append(int(digits, 8))
        i += 2
    elif c in "'\"" and c == quote:
        out += c.encode()
    else:
        raise ValueError("invalid syntax")
    return i


def _encode_rune(value: int) -> bytes:
    """UTF-8 of a rune as Go's utf8.EncodeRune writes it: surrogates become U+FFFD."""
    if 0xD800 <= value <= 0xDFFF:
        value = 0xFFFD
    return chr(value).encode()


def quote_rune(ch: str) -> str:
    """Go's `%q` of a rune: `'x'`, `'\\''`, `'\\n'`."""
    if ch == "'":
        return "'\\''"
    body = '"' if ch == '"' else go_quote(ch)[1:-1]
    return f"'{body}'"


def unicode_rune(ch: str) -> str:
    """Go's `%#U` of a rune: `U+0071 'q'` (the quoted rune only when printable)."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() else code


def to_utf8(text: str) -> str:
    """`text` with the raw bytes kept as surrogate escapes (see above) as U+FFFD: what Arrow, DuckDB
    and RE2 can take, what the push decoders store such bytes as, and what Go's regexp reads."""
    return text if text.isascii() else text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
