"""The default matcher: content words, stemmed, with a small table of delivery synonyms.

Local and deterministic: the same criterion and evidence always give the same score, on any machine.

The rule, for one criterion and one evidence item:

1. Both texts are normalised: accents folded, camelCase split, thousands separators dropped
   (``48,000`` is ``48000``), lower-cased, cut into words at anything that is not a letter or digit
   (so the words inside a URL or a file name count), a few compounds joined (``e-mail``, ``mock-up``),
   number words written as digits (``two`` is ``2``), and stop words dropped: English function words,
   words that say what is asked of the evidence rather than what it is about (``shows``, ``lists``,
   ``delivered``, ``written``, ``complete``) and URL noise (``https``, ``com``).
2. Each remaining word is stemmed with the Snowball English stemmer (``migrated``, ``migration`` ->
   ``migrat``), and a stem in the synonym table stands for its group (``import``, ``transfer`` and
   ``migrat`` are all the concept ``migrate``). A criterion's distinct concepts are what it asks for.
3. Each concept of the criterion earns credit from the evidence: 1 when the evidence has the same
   concept; ``FUZZY_CREDIT`` when an evidence stem is close to it (one a prefix of the other, or a
   RapidFuzz ratio of at least ``FUZZY_RATIO``, which catches misspellings like ``dashbord``), both
   stems being at least ``MIN_FUZZY_LENGTH`` letters long; else 0.
4. The score is the criterion's credit divided by its number of concepts: the share of what the
   criterion asks for that the evidence mentions. Words in a clause (up to ``.``, ``;``, ``!``, ``?``
   or a line break) that says the work is not done yet ("draft", "not yet", "sent for approval") or
   leaves something out ("everything except QA") do not count: "Migration done; QA not yet started"
   speaks for the migration, not for QA.
5. The item addresses the criterion when the score is at least ``THRESHOLD``, a word other than a
   number matched, and, if the criterion names kinds of deliverable (``DELIVERABLE_KINDS``: a
   migration, tests, training, a document, ...), the evidence names one of them too.

The rule sees words, not meaning: "4 open severity-1 defects remain" addresses "No open severity-1 or
severity-2 defects" for it, and "Loaded 5 years of orders" misses "orders imported". The labelled pairs
in tests/data measure how often that misleads it (``bench/review_quality.py``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer  # type: ignore[import-untyped]
from rapidfuzz import fuzz

from milepost.review.matching import Match

THRESHOLD = 0.5
FUZZY_CREDIT = 0.75
FUZZY_RATIO = 85.0
MIN_FUZZY_LENGTH = 4

_STOP_WORDS = """
    a about above after again against all also am an and any are as at be been before being below
    between both but by can could did do does doing done down during each either every few for from
    further had has have having he her here hers him his how i if in into is it its itself just me
    more most my no nor not of off on once only or other our ours out over own per same she should so
    some such than that the their theirs them then there these they this those through to too under
    until up upon us very via was we were what when where which while who whom why will with within
    without would yet you your yours
    etc eg ie must shall may might need needs able well
    complete completed completes done finished ready work works working worked good full fully
    including include includes included new written write writes
    show shows showing list lists listing explain explains cover covers covering match matches
    contain contains provide provides provided deliver delivers delivered delivery available
    use used using
    http https www com org net io html htm php aspx
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "twelve": "12",
    "twenty": "20",
    "hundred": "100",
}

COMPOUNDS = {
    r"e-?mails?": "email",
    r"mock-?ups?": "mockup",
    r"sign-?offs?": "signoff",
    r"set-?up": "setup",
    r"log-?ins?": "login",
    r"on-?boarding": "onboarding",
    r"end-to-end": "e2e",
    r"walk-?through": "walkthrough",
}

# Words a delivery is described with, in groups that mean the same for review. Each word is stemmed
# when the table is built, so one form per word is enough.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "migrate": ("migrate", "migration", "import", "transfer", "move", "etl"),
    "test": ("test", "testing", "qa", "quality", "e2e", "tester", "testrail"),
    "train": (
        "train",
        "training",
        "workshop",
        "onboarding",
        "tutorial",
        "course",
        "walkthrough",
        "webinar",
    ),
    "integrate": (
        "integrate",
        "integration",
        "connect",
        "connector",
        "api",
        "sync",
        "synchronise",
        "synchronize",
        "webhook",
    ),
    "design": ("design", "mockup", "wireframe", "figma", "prototype", "sketch"),
    "document": (
        "document",
        "documentation",
        "docs",
        "doc",
        "manual",
        "guide",
        "handbook",
        "readme",
        "wiki",
    ),
    "deploy": ("deploy", "deployment", "release", "launch", "publish", "ship", "rollout"),
    "production": ("production", "prod"),
    "customise": (
        "customise",
        "customize",
        "customisation",
        "customization",
        "custom",
        "configure",
        "configuration",
        "config",
        "tailor",
    ),
    "defect": ("defect", "bug", "issue"),
    "severity": ("severity", "sev", "sev1", "sev2", "p1", "p2"),
    "article": ("article", "post", "blog"),
    "translate": ("translate", "translation", "localise", "localize", "localisation", "i18n"),
    "admin": ("admin", "administrator", "administration"),
    "report": ("report", "summary"),
    "recording": ("recording", "video"),
    "payment": ("payment", "pay", "card", "billing", "stripe"),
}

# Kinds of deliverable. When a criterion names some, an item addresses it only if it names one of them
# too: an "admin panel" is no "admin guide", a one-way "export" no "sync".
DELIVERABLE_KINDS = frozenset(
    {
        "migrate",
        "test",
        "train",
        "integrate",
        "design",
        "document",
        "deploy",
        "customise",
        "translate",
        "report",
        "article",
    }
)

# A clause of evidence that says the work is not done yet ("draft", "not yet executed", "sent for
# approval"), or leaves something out ("everything except QA"), shows that the criterion is being worked
# on, not that it is met: its words do not count.
PENDING = re.compile(
    r"\b(drafts?|drafted|not|\w+n't|to be \w+ed|pending|todo|to-do|wip|in progress|planned"
    r"|for (approval|review|feedback|sign-?off)|except|excluding|apart from|other than"
    r"|(everything|all) but)\b"
)
CLAUSE_END = re.compile(r"[;!?\n]|\.(?=\s|$)")

# Stems the Snowball stemmer folds into a word of another meaning ("customer" -> "custom").
STEM_EXCEPTIONS = {"customer": "customer", "customers": "customer"}

_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=8192)
def stem(word: str) -> str:
    return STEM_EXCEPTIONS.get(word) or str(_stemmer.stemWord(word))


def _build_concepts() -> dict[str, str]:
    concepts: dict[str, str] = {}
    for concept, words in SYNONYMS.items():
        for word in words:
            concepts.setdefault(stem(word), concept)
    return concepts


CONCEPTS = _build_concepts()


def words(text: str) -> list[str]:
    """Normalised words of ``text``, stop words dropped, in order (step 1 of the rule)."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    folded = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", folded)  # camelCase
    folded = re.sub(r"(?<=\d)[,_'](?=\d{3}\b)", "", folded)  # 48,000
    folded = folded.lower()
    for pattern, joined in COMPOUNDS.items():
        folded = re.sub(rf"\b{pattern}\b", joined, folded)
    result = []
    for token in re.findall(r"[a-z0-9]+", folded):
        token = NUMBER_WORDS.get(token, token)
        if token in STOP_WORDS or (len(token) == 1 and not token.isdigit()):
            continue
        result.append(token)
    return result


@dataclass(frozen=True)
class Term:
    word: str  # as written (normalised), shown to the reviewer
    stem: str
    concept: str  # the synonym group, or the stem itself

    @property
    def is_number(self) -> bool:
        return self.word.isdigit()


def terms(text: str) -> list[Term]:
    """The words of ``text`` with their stems and concepts (step 2 of the rule)."""
    result = []
    for word in words(text):
        stemmed = stem(word)
        result.append(Term(word, stemmed, CONCEPTS.get(stemmed, stemmed)))
    return result


def _close(a: str, b: str) -> bool:
    if min(len(a), len(b)) < MIN_FUZZY_LENGTH or a.isdigit() or b.isdigit():
        return False
    return a.startswith(b) or b.startswith(a) or fuzz.ratio(a, b) >= FUZZY_RATIO


@dataclass(frozen=True)
class Text:
    """A text made ready for scoring: what its clauses that do not say "not done yet" say."""

    terms: tuple[Term, ...]
    counted: str  # those clauses, as written

    @classmethod
    def of(cls, text: str) -> Text:
        clauses = [
            clause.strip()
            for clause in CLAUSE_END.split(text)
            if clause.strip() and not PENDING.search(clause.lower())
        ]
        return cls(tuple(term for clause in clauses for term in terms(clause)), ". ".join(clauses))

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of deliverable it names."""
        return frozenset(term.concept for term in self.terms) & DELIVERABLE_KINDS


def names_a_kind_asked_for(criterion: Text, evidence: Text) -> bool:
    """Step 5's last condition: a criterion that names kinds of deliverable needs one of them."""
    return not criterion.kinds or bool(criterion.kinds & evidence.kinds)


def score(criterion: Text, evidence: Text) -> Match:
    """Steps 3 to 5 of the rule (see the module's docstring)."""
    wanted: dict[str, Term] = {}
    for term in criterion.terms:
        wanted.setdefault(term.concept, term)
    if not wanted:
        return Match(0.0, (), False)
    by_concept: dict[str, list[Term]] = {}
    for term in evidence.terms:
        by_concept.setdefault(term.concept, []).append(term)
    credit = 0.0
    matched: list[str] = []
    matched_concepts: set[str] = set()
    for concept, term in wanted.items():
        hits = by_concept.get(concept)
        if hits:
            credit += 1.0
        else:
            hits = [other for other in evidence.terms if _close(term.stem, other.stem)][:1]
            if not hits:
                continue
            credit += FUZZY_CREDIT
        matched_concepts.add(concept)
        matched.extend(hit.word for hit in hits)
    value = round(credit / len(wanted), 3)
    kinds = wanted.keys() & DELIVERABLE_KINDS
    addresses = (
        value >= THRESHOLD
        and any(not wanted[concept].is_number for concept in matched_concepts)
        and (not kinds or bool(kinds & matched_concepts))
    )
    return Match(value, tuple(dict.fromkeys(matched)), addresses)


class KeywordMatcher:
    """Stems, synonyms and the share of the criterion covered (see the module's docstring)."""

    name = "keywords"

    def match(self, criteria: Sequence[str], evidence: Sequence[str]) -> list[list[Match]]:
        evidence_texts = [Text.of(text) for text in evidence]
        return [
            [score(criterion_text, item) for item in evidence_texts]
            for criterion_text in (Text.of(text) for text in criteria)
        ]
