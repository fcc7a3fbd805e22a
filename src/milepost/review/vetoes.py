"""Deterministic vetoes: what no similarity of words or meaning may outvote.

A matcher's verdict that an item addresses a criterion stands only if none of these says otherwise:

- **Unfinished clauses.** A clause that says the work is not done ("not yet", "still", "remaining",
  "next sprint", "will be", "waiting for", "in review", "pilot", "draft", "short of") or leaves something
  out ("everything except QA") does not count as evidence (``unfinished``). The matchers read the
  evidence without those clauses (``keywords.Text``).
- **"N of M" with N < M.** "38,000 of 48,000 records migrated" is a clause about unfinished work too.
- **Numeric bounds.** A criterion that sets a bound ("at least 80% coverage", "p95 under 200 ms",
  "all 48,000 contacts") is not met by evidence whose figures in the same unit all miss it ("coverage is
  62%", "p95 is 340 ms", "imported 38,000 contacts"): ``numeric_veto`` says which figure and which
  bound. A figure in another unit, or none at all, is no veto: the other rules decide.

Each veto is a sentence a client can check against the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from milepost.review.matching import Match, Matcher

# A clause that says the work is not done, or not all of it.
UNFINISHED = re.compile(
    r"\b(drafts?|drafted|not|\w+n't|to be \w+ed|pending|todo|to-do|wip|in progress|planned"
    r"|for (approval|review|feedback|sign-?off)|except|excluding|apart from|other than"
    r"|(everything|all) but|not yet|so far|still|remaining|left to|next (sprint|week|month|phase"
    r"|release|iteration)|will|going to|waiting|awaiting|(in|under) review|pilot|short of|scheduled"
    r"|tomorrow|upcoming|partially|partly|almost|nearly|mostly|half|coming|to come|booked|\w+'ll"
    r"|due (?:on |by )?(?:\d+|next|the end|end|mon|tue|wed|thu|fri|sat|sun|jan|feb|mar|apr|may|jun|jul"
    r"|aug|sep|oct|nov|dec))\b"
)
N_OF_M = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)\s+(?:out\s+)?of\s+(?:the\s+|all\s+)?(\d{1,3}(?:,\d{3})+|\d+)\b"
)
CLAUSE_END = re.compile(r"[;!?\n]|\.(?=\s|$)")


def clauses(text: str) -> list[str]:
    """``text`` cut at the end of each clause: ``.``, ``;``, ``!``, ``?`` or a line break."""
    return [clause.strip() for clause in CLAUSE_END.split(text) if clause.strip()]


def unfinished(clause: str) -> bool:
    """Whether a clause speaks of work not done, or not all of it (see the module's docstring)."""
    return UNFINISHED.search(clause.lower().replace("\u2019", "'")) is not None


# Bounds ----------------------------------------------------------------------------------------------

# A number as written in English ("48,000", "2.5"); not a part of a version or an address ("1.0.0").
_NUMBER = r"(?<![\d.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![.,]?\d)"
_UNIT = (
    r"(?:-|\s*)(%|percent\b|ms\b|milliseconds?\b|s\b|secs?\b|seconds?\b|mins?\b|minutes?\b|h\b|hours?\b"
    r"|days?\b|[a-z][a-z-]+)?"
)
LOWER = re.compile(
    r"\b(?:at least|minimum(?: of)?|min\.?|no less than|not less than|over|above|more than|>=|≥|>)\s*"
    + _NUMBER
    + _UNIT
)
UPPER = re.compile(
    r"\b(?:under|below|less than|at most|no more than|not more than|maximum(?: of)?|max\.?|within"
    r"|<=|≤|<)\s*" + _NUMBER + _UNIT
)
ALL_OF = re.compile(r"\b(?:all|every one of|each of)\s+(?:the\s+)?" + _NUMBER + _UNIT)
# A share or a period named without a comparison is a minimum: "99.9% uptime", "30-day retention".
BARE_SHARE = re.compile(_NUMBER + r"\s*(%|percent\b)")
BARE_PERIOD = re.compile(_NUMBER + r"-(days?|months?|years?)\b")
FIGURE = re.compile(_NUMBER + _UNIT)

_SCALE = {
    "%": ("percent", 1.0),
    "percent": ("percent", 1.0),
    "ms": ("seconds", 0.001),
    "millisecond": ("seconds", 0.001),
    "milliseconds": ("seconds", 0.001),
    "s": ("seconds", 1.0),
    "sec": ("seconds", 1.0),
    "secs": ("seconds", 1.0),
    "second": ("seconds", 1.0),
    "seconds": ("seconds", 1.0),
    # Minutes and hours are compared with each other, not with seconds: "20 minutes" of a load test
    # says nothing of a latency "under 200 ms".
    "min": ("minutes", 1.0),
    "mins": ("minutes", 1.0),
    "minute": ("minutes", 1.0),
    "minutes": ("minutes", 1.0),
    "h": ("minutes", 60.0),
    "hour": ("minutes", 60.0),
    "hours": ("minutes", 60.0),
    "day": ("days", 1.0),
    "days": ("days", 1.0),
}


@dataclass(frozen=True)
class Bound:
    lower: bool  # at least (True) or at most (False)
    value: float  # in ``unit``'s base
    unit: str  # "percent", "seconds", "days", or the word counted ("contacts")
    written: str  # as the criterion says it


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _unit(word: str | None) -> tuple[str, float] | None:
    if not word:
        return None
    word = word.strip().lower()
    if word in _SCALE:
        return _SCALE[word]
    return (word.rstrip("s"), 1.0)  # a counted thing: "contacts" and "contact" are one unit


def bounds(criterion: str) -> list[Bound]:
    """The numeric bounds a criterion sets, each with a unit (a bound without one is ignored)."""
    lowered = criterion.lower()
    found = []
    compared = [m.span() for pattern in (LOWER, UPPER) for m in pattern.finditer(lowered)]
    patterns = (
        (LOWER, True),
        (UPPER, False),
        (ALL_OF, True),
        (BARE_SHARE, True),
        (BARE_PERIOD, True),
    )
    for pattern, lower in patterns:
        for match in pattern.finditer(lowered):
            bare = pattern in (BARE_SHARE, BARE_PERIOD)
            if bare and any(start <= match.start() < end for start, end in compared):
                continue  # already read with its comparison
            unit = _unit(match.group(2))
            if unit is None:
                continue
            found.append(
                Bound(lower, _number(match.group(1)) * unit[1], unit[0], match.group(0).strip())
            )
    return found


def _figures(text: str) -> list[tuple[float, str, str]]:
    """Each number of ``text`` that has a unit: (value in the unit's base, unit, as written)."""
    result = []
    for match in FIGURE.finditer(text.lower()):
        unit = _unit(match.group(2))
        if unit is not None:
            result.append((_number(match.group(1)) * unit[1], unit[0], match.group(0).strip()))
    return result


def numeric_veto(criterion: str, evidence: str) -> str | None:
    """Why ``evidence`` cannot meet a bound of ``criterion``: its figures in the bound's unit all miss
    it ("62% where the criterion asks at least 80%"); None when no bound is missed that way."""
    figures = _figures(evidence)
    for bound in bounds(criterion):
        same = [(value, written) for value, unit, written in figures if unit == bound.unit]
        if not same:
            continue
        meets = [value >= bound.value if bound.lower else value <= bound.value for value, _ in same]
        if not any(meets):
            return f'"{same[0][1]}" does not meet "{bound.written}"'
    return None


class Vetoed:
    """A matcher whose verdicts the numeric vetoes may overrule (an item that misses a bound is
    ``unmet``, with the reason in ``Match.veto``). Every matcher the review context uses is wrapped so."""

    def __init__(self, inner: Matcher) -> None:
        self.inner = inner
        self.name = inner.name

    def match(self, criteria: Sequence[str], evidence: Sequence[str]) -> list[list[Match]]:
        rows = self.inner.match(criteria, evidence)
        return [
            [overrule(criterion, item, found) for item, found in zip(evidence, row, strict=True)]
            for criterion, row in zip(criteria, rows, strict=True)
        ]


def overrule(criterion: str, evidence: str, found: Match) -> Match:
    """``found``, unless a veto says the item cannot meet the criterion (then ``unmet``, and why)."""
    if found.verdict == "unmet":
        return found
    why = (
        numeric_veto(criterion, evidence)
        or part_veto(criterion, evidence)
        or unfinished_veto(criterion, evidence)
    )
    if why is None:
        return found
    return replace(found, addresses=False, unclear=False, veto=why)


def numeric_support(criterion: str, evidence: str) -> bool:
    """Whether the criterion sets a bound and a figure of the evidence in its unit meets it."""
    figures = _figures(evidence)
    return any(
        value >= bound.value if bound.lower else value <= bound.value
        for bound in bounds(criterion)
        for value, unit, _ in figures
        if unit == bound.unit
    )


def part_veto(criterion: str, evidence: str) -> str | None:
    """ "38,000 of 48,000" (N of M, N < M) is part of the work, unless the criterion only asks for a
    share or a count that N reaches ("at least 90% of reps": "23 of 25 reps")."""
    wanted = bounds(criterion)
    for n_text, m_text in N_OF_M.findall(evidence.lower()):
        n, m = _number(n_text), _number(m_text)
        if n >= m or m == 0:
            continue
        enough = any(
            bound.lower
            and (100 * n / m >= bound.value if bound.unit == "percent" else n >= bound.value)
            for bound in wanted
        )
        if not enough:
            return f'"{n_text} of {m_text}" is part of it, not all'
    return None


def unfinished_veto(criterion: str, evidence: str) -> str | None:
    """A clause of the evidence that says work on something the criterion names is unfinished:
    "Google sign-in works; Sign in with Apple needs a key I don't have yet" for "Login with Apple and
    Google". The rest of the item may read as done; this part says it is not."""
    from milepost.review import keywords

    asked = {term.concept for term in keywords.terms(criterion) if not term.is_number}
    for clause in clauses(evidence):
        if unfinished(clause) and asked & {term.concept for term in keywords.terms(clause)}:
            return f'"{clause}" says it is not finished'
    return None
