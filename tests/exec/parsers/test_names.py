from __future__ import annotations

import pytest

from lokiarrow.exec.parsers.names import dedupe, sanitize, sanitize_path


@pytest.mark.parametrize(("key", "name"), [
    ("a", "a"),
    ("a.b-c", "a_b_c"),
    ("cou-nter", "cou_nter"),
    ("1x", "_1x"),
    ("  padded ", "padded"),
    ("\u00a0nbsp\u3000", "nbsp"),
    ("\x1ckept", "_kept"),  # Go's TrimSpace keeps \x1c, Python's strip() would not
    ("ÜFT8👌", "_FT8_"),  # one `_` per code point
    ("", ""),
    ("   ", ""),
    ("_", "_"),
])
def test_sanitize(key: str, name: str) -> None:
    assert sanitize(key) == name


@pytest.mark.parametrize(("parts", "name"), [
    (("pod", "uuid"), "pod_uuid"),
    (("pod", "deployment", "ref"), "pod_deployment_ref"),
    (("price", "_net_"), "price__net_"),
    ((" ", "foo"), "foo"),
    (("", "1a"), "_1a"),
    (("a", "1"), "a_1"),  # only the first part gets `_` before a digit
    ((" ", " "), ""),
])
def test_sanitize_path(parts: tuple[str, ...], name: str) -> None:
    assert sanitize_path(parts) == name


def test_dedupe() -> None:
    assert dedupe("app", {"app"}) == "app_extracted"
    assert dedupe("msg", {"app"}) == "msg"
