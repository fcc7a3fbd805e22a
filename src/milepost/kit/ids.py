"""Opaque, prefixed, time-ordered ids (``ms_01j...``).

The first ten characters after the prefix encode the creation time in milliseconds (Crockford base32), the
last sixteen are random. Ids therefore sort by creation time, which gives lists a stable newest-first order
and cursors that need no second column.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_encode(millis, 10)}{_encode(secrets.randbits(80), 16)}"
