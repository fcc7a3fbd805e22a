"""Matching results, kept in the process for the next view of the same delivery.

A matcher's results depend on nothing but the matcher and the texts it reads: the milestone's criteria (or
required evidence) and the delivery's evidence, as cut to the matching limits. They are kept under a
SHA-256 of exactly those, so a new revision, edited terms or another matcher are a new entry, and an entry
can never be stale. What depends on "now" (the time left in the review period) is not in here: it is
computed on every request.

The cache is per process and bounded (``SIZE`` entries, least recently used dropped first). Concurrent
requests for the same texts wait for one computation instead of each running their own.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

from milepost.review.matching import Match, Matcher

SIZE = 64

Rows = tuple[tuple[Match, ...], ...]


def _key(matcher: str, criteria: Sequence[str], evidence: Sequence[str]) -> str:
    digest = hashlib.sha256(matcher.encode())
    for group in (criteria, evidence):
        digest.update(b"\x01%d" % len(group))
        for text in group:
            data = text.encode("utf-8", "surrogatepass")
            digest.update(b"\x00%d\x00" % len(data))
            digest.update(data)
    return digest.hexdigest()


class MatchCache:
    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self.computed = 0  # how many times a matcher actually ran (for tests and curiosity)
        self._entries: OrderedDict[str, Rows] = OrderedDict()
        self._computing: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def match(self, matcher: Matcher, criteria: Sequence[str], evidence: Sequence[str]) -> Rows:
        """``matcher.match(criteria, evidence)``, computed once for the same matcher and texts."""
        key = _key(matcher.name, criteria, evidence)
        with self._lock:
            found = self._get(key)
            if found is not None:
                return found
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:  # one computation per key; the others wait for it, then find it stored
            with self._lock:
                found = self._get(key)
                if found is not None:
                    return found
            try:
                rows = tuple(tuple(row) for row in matcher.match(list(criteria), list(evidence)))
            except BaseException:
                with self._lock:
                    self._computing.pop(key, None)
                raise
            with self._lock:
                self.computed += 1
                self._entries[key] = rows
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
                self._computing.pop(key, None)
            return rows

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _get(self, key: str) -> Rows | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found


matches = MatchCache()
