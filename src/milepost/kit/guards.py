"""The two shapes every domain's rules share: a state table (which status may follow which, and the one
guarded setter that enforces it) and the answer to "may this actor do X now?" asked of the same guard
the action itself runs, so that a page offers exactly what the service accepts.

A guard is a plain function that raises the refusal the action would give (PermissionDenied, InvalidState
or NotFound) and returns nothing, or the facts it looked up on the way (the mutation may use them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from milepost.kit.errors import InvalidState, NotFound, PermissionDenied

E = TypeVar("E", bound=StrEnum)
A = TypeVar("A", bound=StrEnum)

# What a guard raises when the action is not open to this actor now (a bad field is not a guard's).
REFUSALS = (PermissionDenied, InvalidState, NotFound)


class HasStatus(Protocol[E]):
    status: E


class StateTable(Generic[E]):
    """The statuses a ``noun`` may move between; ``move`` is the only way a service changes one."""

    def __init__(self, noun: str, transitions: Mapping[E, Iterable[E]]) -> None:
        self.noun = noun
        self.transitions: Mapping[E, frozenset[E]] = {
            status: frozenset(after) for status, after in transitions.items()
        }

    def allows(self, old: E, new: E) -> bool:
        return new in self.transitions[old]

    def move(self, row: HasStatus[E], new: E) -> E:
        """Move ``row`` to ``new`` if the table allows it; return the old status. The guards refuse first,
        with the action's own words; this refusal means a service skipped one."""
        old = row.status
        if not self.allows(old, new):
            raise InvalidState(f"A {self.noun} cannot go from {old} to {new}.")
        row.status = new
        return old


def passes(guard: Callable[[], object]) -> bool:
    """Whether ``guard`` lets the action through (it raises one of ``REFUSALS`` if not)."""
    try:
        guard()
    except REFUSALS:
        return False
    return True


def available(guards: Mapping[A, Callable[[], object]]) -> frozenset[A]:
    """The actions whose guard passes: what a page offers."""
    return frozenset(action for action, guard in guards.items() if passes(guard))
