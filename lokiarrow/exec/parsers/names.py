"""Label names as Loki's parsers make them: sanitised, and suffixed when they shadow a label.

Loki keeps ASCII letters, digits and `_`, turns every other character (one per code point) into
`_`, trims Unicode white space first and puts `_` before a leading digit. A name equal to a stream
label or structured-metadata key gets `_extracted` appended, so the original stays visible.
"""

from __future__ import annotations

import re
from functools import lru_cache

DUPLICATE_SUFFIX = "_extracted"

# Go's unicode.IsSpace (Python's str.strip() also strips \x1c-\x1f, which Go keeps).
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_INVALID = re.compile(r"[^A-Za-z0-9_]")


@lru_cache(maxsize=65536)
def sanitize(key: str) -> str:
    """The label name Loki makes of a parsed key (`a.b-c` → `a_b_c`, `1x` → `_1x`); `""` means skip it."""
    key = key.strip(GO_SPACE)
    if not key:
        return ""
    if "0" <= key[0] <= "9":
        key = "_" + key
    return _INVALID.sub("_", key)


def sanitize_path(parts: list[str] | tuple[str, ...]) -> str:
    """The name of a nested JSON key: sanitised parts joined by `_`, blank parts left out.

    Only the first non-blank part gets the `_` before a leading digit (`{"a": {"1": …}}` → `a_1`).
    """
    out = ""
    for part in parts:
        part = part.strip(GO_SPACE)
        if not part:
            continue
        if out:
            out += "_" + _INVALID.sub("_", part)
        else:
            out = sanitize(part)
    return out


def dedupe(name: str, existing: set[str] | frozenset[str]) -> str:
    """`name`, or `name_extracted` when a stream label or metadata key already has that name."""
    return name + DUPLICATE_SUFFIX if name in existing else name
