"""The matcher interface: how well does each evidence item address each acceptance criterion?

A matcher sees plain text only. ``Evidence.text`` is what it reads of an item: the submission's note, a
text item, a link's URL or an uploaded file's name (``evidence_text`` turns a URL or a file name into
words). Two matchers exist: ``semantic`` (the default: sentence embeddings run offline, with the keyword
rule beside them) and ``keywords`` (the rule alone). ``get_matcher`` picks one from the
``review_matcher`` setting. A matcher's verdict is ``met``, ``unclear`` ("looks related, check it") or
``unmet``.

A matcher reads a bounded part of each text, so that a milestone filled to every limit (50 criteria of
2,000 characters, 50 evidence items of 20,000) is reviewed in well under a second: the first
``TERM_CHARS`` characters of each criterion or required item, the first ``ITEM_CHARS`` of each evidence
item, and ``SUBMISSION_CHARS`` of a whole delivery, shared evenly between its items when they are longer
(``read_evidence``). Texts are cut at a word boundary; the review context says which items were read in
part.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)

EvidenceKind = Literal["note", "link", "file", "text"]
MatcherChoice = Literal["auto", "semantic", "keywords", "embeddings"]


Verdict = Literal["met", "unclear", "unmet"]


@dataclass(frozen=True)
class Match:
    """How well one evidence item addresses one criterion."""

    score: float  # 0 to 1; comparable only between results of the same matcher
    matched_words: tuple[str, ...]  # the evidence's words that matched the criterion's
    addresses: bool  # the matcher's verdict: the item shows the criterion is met
    # Not met, but close enough that a person should look ("looks related, check it").
    unclear: bool = False
    quote: str = ""  # the evidence's sentence that carried the verdict, for the reviewer
    veto: str = ""  # why the item cannot meet the criterion, whatever its score (vetoes.py)

    @property
    def verdict(self) -> Verdict:
        if self.addresses:
            return "met"
        return "unclear" if self.unclear else "unmet"


class Matcher(Protocol):
    name: str

    def match(self, criteria: Sequence[str], evidence: Sequence[str]) -> list[list[Match]]:
        """One row per criterion, one ``Match`` per evidence text in that row, in the order given."""
        ...


def evidence_text(kind: EvidenceKind, value: str) -> str:
    """What a matcher reads of an evidence item: the text itself, or the words inside a URL or file name.

    ``https://github.example/acme/legacy-import/pull/17`` reads as ``github acme legacy import pull 17``;
    ``CRM-Administrator-Guide-v1.pdf`` as ``CRM Administrator Guide v1 pdf``.
    """
    if kind == "link":
        parsed = urlparse(value)
        labels = (parsed.hostname or "").split(".")
        host = [label for label in labels[:-1] if label not in _HOST_NOISE]  # no top-level domain
        rest = unquote(" ".join([parsed.path, parsed.query, parsed.fragment]))
        return _words_of(" ".join([*host, rest]))
    if kind == "file":
        return _words_of(value)  # the extension stays: "svg" or "csv" can be what was asked for
    return value


_HOST_NOISE = frozenset({"www", "example"})

TERM_CHARS = 500  # of an acceptance criterion or a required evidence item (2,000 may be written)
ITEM_CHARS = 5_000  # of one evidence item, the note included (20,000 may be written)
SUBMISSION_CHARS = 30_000  # of all a delivery's items together


def read_part(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, without a word cut in two at the end."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if not text[limit].isspace():
        cut = max(head.rfind(space) for space in (" ", "\n", "\t"))
        head = head[:cut] if cut > 0 else head
    return head


def evidence_limits(lengths: Sequence[int]) -> list[int]:
    """How many characters of each item a matcher reads: at most ``ITEM_CHARS`` of each, and at most
    ``SUBMISSION_CHARS`` together, shared evenly (what a short item leaves goes to the longer ones)."""
    limits = [0] * len(lengths)
    left = SUBMISSION_CHARS
    shortest_first = sorted(range(len(lengths)), key=lambda index: lengths[index])
    for position, index in enumerate(shortest_first):
        share = left // (len(lengths) - position)
        limits[index] = min(lengths[index], ITEM_CHARS, share)
        left -= limits[index]
    return limits


def read_evidence(texts: Sequence[str]) -> list[str]:
    """What a matcher reads of a delivery's evidence texts (see the module's docstring)."""
    return [
        read_part(text, limit)
        for text, limit in zip(texts, evidence_limits([len(text) for text in texts]), strict=True)
    ]


def _words_of(value: str) -> str:
    return " ".join(part for part in re.split(r"[/\\_.=&?#+\s-]+", value) if part)


def semantic_available() -> bool:
    """Whether the semantic matcher's libraries are installed (they are dependencies of Milepost; a
    trimmed install without them still reviews, with keywords)."""
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None
        for name in ("onnxruntime", "tokenizers", "numpy")
    )


def get_matcher(choice: MatcherChoice) -> Matcher:
    """``auto`` and ``semantic``: the semantic matcher (semantic.py), or keywords where its libraries are
    missing (with a warning in the log); ``keywords``: the keyword rule alone. ``embeddings`` is the old
    name of ``semantic``. Every matcher's verdicts are subject to the vetoes (vetoes.py), and every
    review context says which matcher ran.
    """
    from milepost.review.keywords import KeywordMatcher
    from milepost.review.vetoes import Vetoed

    if choice != "keywords":
        if semantic_available():
            from milepost.review.semantic import SemanticMatcher

            return Vetoed(SemanticMatcher())
        log.warning(
            "the semantic review matcher's libraries (onnxruntime, tokenizers, numpy) are not "
            "installed: using the keyword matcher"
        )
    return Vetoed(KeywordMatcher())
