"""The hashes' JSON: whatever encoder builds it, it is ``json.dumps(payload, sort_keys=True,
default=str)`` character for character, since every row already written was hashed over that."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from milepost.kit import canonical
from milepost.kit.canonical import canonical_hash, canonical_json
from tests.json_values import nested, scalars

# What a row's ``data`` can hold, and values only ``default=str`` can write.
opaque = st.decimals(allow_nan=False, allow_infinity=False) | st.datetimes(timezones=st.just(UTC))
payloads = nested(scalars | opaque)


def reference(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, default=str)


def test_this_python_uses_the_encoder_built_once() -> None:
    # CPython ships the C encoder; were it missing or changed, the plain encoder would be used (and
    # the properties below would still hold), but ``ledger verify`` would be slower: say so here.
    assert canonical.canonical_json is not canonical._PLAIN.encode


@given(payloads)
def test_canonical_json_is_json_dumps_with_sorted_keys(payload: Any) -> None:
    assert canonical_json(payload) == reference(payload)


@given(payloads)
def test_canonical_hash_is_sha256_of_it(payload: Any) -> None:
    expected = hashlib.sha256(reference(payload).encode()).hexdigest()
    assert canonical_hash(payload) == expected


def test_an_entry_hash_written_before_the_change_still_verifies() -> None:
    # An entry's payload as entry_hash builds it, hashed the way it was before this module existed.
    payload = {
        "id": "ent_01JEXAMPLE",
        "kind": "release",
        "milestone_id": "mil_01JEXAMPLE",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC).isoformat(),
        "postings": sorted([["escrow:mil_01JEXAMPLE", -10_000, "USD"], ["fees:USD", 1_000, "USD"]]),
        "data": {"reason": "café", "amount": Decimal("12.50")},
    }
    before = hashlib.sha256(
        json.JSONEncoder(sort_keys=True, default=str).encode(payload).encode()
    ).hexdigest()
    assert canonical_hash(payload) == before
