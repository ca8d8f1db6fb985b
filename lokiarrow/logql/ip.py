"""Loki's `ip("…")` patterns (line filters and label filters): one address, a CIDR range, or an
`a-b` range; IPv4 never matches an IPv6 pattern or the reverse."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from lokiarrow.errors import BadRequest


def ip_matcher(pattern: str) -> Callable[[str], bool]:
    """`ip("…")`: a single address, a CIDR range or an `a-b` range, as Loki accepts them."""
    try:
        if "-" in pattern:
            lo, hi = (ipaddress.ip_address(p.strip()) for p in pattern.split("-", 1))
            return lambda v: _in_range(v, lo, hi)
        if "/" in pattern:
            net = ipaddress.ip_network(pattern, strict=False)
            return lambda v: _in_network(v, net)
        one = ipaddress.ip_address(pattern)
        return lambda v: _in_range(v, one, one)
    except ValueError:
        raise BadRequest(f"invalid ip pattern {pattern!r}") from None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _in_range(text: str, lo: object, hi: object) -> bool:
    addr = _address(text)
    return addr is not None and type(addr) is type(lo) and lo <= addr <= hi  # type: ignore[operator]


def _in_network(text: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    addr = _address(text)
    return addr is not None and addr.version == net.version and addr in net
