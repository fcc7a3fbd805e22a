"""The JSON that ``ledger verify`` reads (events' data, an entry's postings) is parsed exactly as
``json.loads`` parses it, whatever surrounds the document, and is refused when ``json.loads`` refuses it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost.ledger.verify_hashes import _json
from tests.json_values import nested, scalars

documents = nested(scalars)
around = st.sampled_from(["", " ", "\n", " \t\n "])


@given(documents, around, around)
def test_it_reads_what_json_loads_reads(document: Any, before: str, after: str) -> None:
    text = before + json.dumps(document) + after
    assert _json(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "[1, 2", '{"a": 1} {"b": 2}', "[1] x", "nul"])
def test_it_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as refused:
        _json(text)
    assert str(refused.value) == str(expected.value)
