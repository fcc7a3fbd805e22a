"""Hypothesis strategies for JSON documents, shared by the tests of what writes the hashes' JSON and of
what reads JSON back in ``ledger verify``."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Every scalar JSON can hold (NaN aside: it is not equal to itself, so no round trip can be compared).
scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Leaves, and lists and objects of them to any depth (twenty leaves at most)."""
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
