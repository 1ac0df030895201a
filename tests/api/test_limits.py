"""The JSON depth scan agrees with the JSON parser, and the recursion limit is put back."""

from __future__ import annotations

import json
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from node.api.limits import RECURSION_LIMIT, compute_json_depth, restore_recursion_limit

TRICKY = st.sampled_from(["[", "]", "{", "}", '"', "\\", '\\"', "\\\\", "[{", "é", "\u2200"])
TEXT = st.lists(st.one_of(TRICKY, st.text(max_size=3)), max_size=6).map("".join)
DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@given(DOCUMENTS, st.booleans())
def test_depth_scan_matches_the_parsed_document(document: Any, ascii_only: bool) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only).encode()
    assert compute_json_depth(body, 0) == depth(json.loads(body))


def test_depth_scan_of_hostile_bodies() -> None:
    assert compute_json_depth(b"[" * 100_000, 64) == 100_000
    assert compute_json_depth(b'["' + b"[" * 1000 + b'"]', 64) == 1
    assert compute_json_depth(b'["\\\\"' + b"[" * 100 + b"]", 64) == 101
    assert compute_json_depth(b'["\\\\\\"' + b"[" * 100 + b'"]', 64) == 1
    assert compute_json_depth(b'"' + b"[" * 100, 64) == 0  # an unclosed string
    assert compute_json_depth(b"[" * 64, 64) == 64


def test_recursion_limit_is_restored_after_py_ecc_raised_it() -> None:
    import py_ecc  # noqa: F401 -- raises the limit to 100,000 on first import

    sys.setrecursionlimit(100_000)
    try:
        assert restore_recursion_limit() == 100_000
        assert sys.getrecursionlimit() == RECURSION_LIMIT
    finally:
        sys.setrecursionlimit(RECURSION_LIMIT)
