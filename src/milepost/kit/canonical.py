"""The JSON that the ledger's and the audit trails' hashes are computed over, and those hashes.

``canonical_json(payload)`` is ``json.dumps(payload, sort_keys=True, default=str)``, character for
character: the rows already written were hashed that way, and must still verify. It is made faster by
building the standard library's C encoder once, rather than once per call as ``json.dumps`` and
``JSONEncoder.encode`` do (``ledger verify`` hashes every entry and every event: measured here, 2.9 µs a
payload down to 1.9). The C encoder is a private part of the ``json`` module, so it is used only when it
exists and, checked at import, writes exactly what ``json.dumps`` writes; otherwise the plain encoder is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from json import encoder as _stdlib
from typing import Any

_PLAIN = json.JSONEncoder(sort_keys=True, default=str)

# A payload that goes through every branch the hashed rows use: nested dicts and lists, keys out of
# order, None, booleans, integers, floats, text outside ASCII, and a value only ``default`` can write.
_SAMPLE: dict[str, Any] = {
    "z": [1, -2, 3.5, None, True, False, {"b": 'é\n"', "a": []}],
    "a": {"y": {}, "x": "ok"},
    "m": "pst_01J",
    "d": Decimal("1.50"),
}


def _fast() -> Callable[[Any], str] | None:
    make = getattr(_stdlib, "c_make_encoder", None)
    if make is None:
        return None
    try:
        iterencode = make(
            None,  # no check for cycles: a payload is built fresh from a row's values
            _PLAIN.default,
            _stdlib.encode_basestring_ascii,
            None,  # indent
            ": ",
            ", ",
            True,  # sort_keys
            False,  # skipkeys
            True,  # allow_nan
        )

        def encode(payload: Any) -> str:
            return "".join(iterencode(payload, 0))

        if encode(_SAMPLE) != json.dumps(_SAMPLE, sort_keys=True, default=str):
            return None
    except (TypeError, ValueError):  # another Python's C encoder takes other arguments
        return None
    return encode


canonical_json: Callable[[Any], str] = _fast() or _PLAIN.encode


def canonical_hash(payload: Any) -> str:
    """SHA-256 (hex) of the payload's canonical JSON."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()
