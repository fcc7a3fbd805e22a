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
   or a line break) that says the work is not done yet ("draft", "not yet", "sent for approval",
   "38,000 of 48,000") or leaves something out ("everything except QA") do not count
   (``vetoes.unfinished``): "Migration done; QA not yet started" speaks for the migration, not for QA.
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
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import snowballstemmer  # type: ignore[import-untyped]
from rapidfuzz import fuzz, process

from milepost.review import vetoes
from milepost.review.matching import Match

THRESHOLD = 0.5
FUZZY_CREDIT = 0.75
FUZZY_RATIO = 85.0
MIN_FUZZY_LENGTH = 4
# Step 3's ratios cost a comparison per pair of distinct stems. Past this many in one ``match`` call (far
# beyond what real criteria need: 50 criteria of 15 words against 2,000 distinct stems of comparable length
# are 1.5 million), the criteria's remaining stems are matched approximately by prefix only, so that no text,
# however written, can keep a request busy for long.
FUZZY_COMPARISONS = 1_000_000

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
    initial basic established establish core main key general overall proper properly successfully
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
        "handover",
        "session",
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
    "deploy": ("deploy", "deployment", "release", "launch", "publish", "ship", "rollout", "live"),
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

# Stems the Snowball stemmer folds into a word of another meaning ("customer" -> "custom").
STEM_EXCEPTIONS = {"customer": "customer", "customers": "customer"}

_stemmer = snowballstemmer.stemmer("english")


# Large enough for the words of many deliveries: the Snowball stemmer is pure Python (~50 µs a word).
@lru_cache(maxsize=65_536)
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


def _fuzzy_eligible(stem: str) -> bool:
    """Only stems this long, and not numbers, may match another one approximately (step 3)."""
    return len(stem) >= MIN_FUZZY_LENGTH and not stem.isdigit()


def is_close(a: str, b: str) -> bool:
    """Step 3's closeness of two stems, pair by pair: what ``Vocabulary.close`` finds, faster."""
    if not (_fuzzy_eligible(a) and _fuzzy_eligible(b)):
        return False
    return a.startswith(b) or b.startswith(a) or fuzz.ratio(a, b) >= FUZZY_RATIO


def _may_reach_ratio(length: int, other: int) -> bool:
    # The RapidFuzz ratio is 100 * (1 - indel distance / total length), and the distance is at least
    # the difference in length: stems of too different lengths cannot reach FUZZY_RATIO, so they are
    # never compared. (A bound only: the ratio itself decides.)
    return 100.0 * (1.0 - abs(length - other) / (length + other)) >= FUZZY_RATIO - 1e-9


@dataclass(frozen=True)
class Text:
    """A text made ready for scoring: what its clauses that do not say "not done yet" say.

    Its indexes (``concept_words``, ``first_by_stem``, ``wanted``) are built once, on first use, however
    many texts it is scored against.
    """

    terms: tuple[Term, ...]
    counted: str  # those clauses, as written

    @classmethod
    def of(cls, text: str) -> Text:
        clauses = [clause for clause in vetoes.clauses(text) if not vetoes.unfinished(clause)]
        return cls(tuple(term for clause in clauses for term in terms(clause)), ". ".join(clauses))

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of deliverable it names."""
        return frozenset(term.concept for term in self.terms) & DELIVERABLE_KINDS

    # As evidence -------------------------------------------------------------------------------------

    @cached_property
    def concept_words(self) -> dict[str, tuple[str, ...]]:
        """Each concept it mentions, with its distinct words for that concept in the order written."""
        found: dict[str, dict[str, None]] = {}
        for term in self.terms:
            found.setdefault(term.concept, {})[term.word] = None
        return {concept: tuple(words) for concept, words in found.items()}

    @cached_property
    def first_by_stem(self) -> dict[str, tuple[int, str]]:
        """Each stem that may match approximately: where it first occurs, and the word written there."""
        first: dict[str, tuple[int, str]] = {}
        for position, term in enumerate(self.terms):
            if term.stem not in first and _fuzzy_eligible(term.stem):
                first[term.stem] = (position, term.word)
        return first

    # As a criterion ----------------------------------------------------------------------------------

    @cached_property
    def wanted(self) -> dict[str, Term]:
        """Its distinct concepts, in order, each with the first term that names it."""
        wanted: dict[str, Term] = {}
        for term in self.terms:
            wanted.setdefault(term.concept, term)
        return wanted

    @cached_property
    def concept_order(self) -> dict[str, int]:
        return {concept: index for index, concept in enumerate(self.wanted)}

    @cached_property
    def worded_concepts(self) -> frozenset[str]:
        return frozenset(concept for concept, term in self.wanted.items() if not term.is_number)


class Vocabulary:
    """The distinct stems of some evidence, indexed for step 3's approximate matching.

    A criterion's stem is compared with each distinct stem once, not with every word of every item: the
    stems close to it are found by a prefix search in the sorted stems and by RapidFuzz over the stems
    of a comparable length, and remembered.
    """

    def __init__(self, texts: Iterable[Text]) -> None:
        stems = {stem for text in texts for stem in text.first_by_stem}
        self._stems = frozenset(stems)
        self._sorted = sorted(stems)
        by_length: dict[int, list[str]] = {}
        for stem in self._sorted:
            by_length.setdefault(len(stem), []).append(stem)
        self._by_length = by_length
        self._close: dict[str, tuple[str, ...]] = {}
        self._groups: dict[int, tuple[list[str], ...]] = {}
        self.comparisons_left = FUZZY_COMPARISONS

    def close(self, stem: str) -> tuple[str, ...]:
        """The stems close to ``stem`` (step 3: a prefix one of the other, or a ratio of FUZZY_RATIO)."""
        known = self._close.get(stem)
        if known is not None:
            return known
        found: dict[str, None] = {}
        if _fuzzy_eligible(stem):
            for end in range(MIN_FUZZY_LENGTH, len(stem) + 1):  # stems ``stem`` starts with
                if stem[:end] in self._stems:
                    found[stem[:end]] = None
            index = bisect_left(self._sorted, stem)  # stems that start with ``stem``
            while index < len(self._sorted) and self._sorted[index].startswith(stem):
                found[self._sorted[index]] = None
                index += 1
            groups = self._comparable(len(stem))
            comparisons = sum(len(group) for group in groups)
            if comparisons > self.comparisons_left:
                groups = ()  # over budget: prefixes only (see FUZZY_COMPARISONS)
            else:
                self.comparisons_left -= comparisons
            for group in groups:
                for other, _, _ in process.extract(
                    stem, group, scorer=fuzz.ratio, score_cutoff=FUZZY_RATIO, limit=None
                ):
                    found[other] = None
        result = tuple(found)
        self._close[stem] = result
        return result

    def _comparable(self, length: int) -> tuple[list[str], ...]:
        groups = self._groups.get(length)
        if groups is None:
            groups = tuple(
                group for other, group in self._by_length.items() if _may_reach_ratio(length, other)
            )
            self._groups[length] = groups
        return groups


def names_a_kind_asked_for(criterion: Text, evidence: Text) -> bool:
    """Step 5's last condition: a criterion that names kinds of deliverable needs one of them."""
    return not criterion.kinds or bool(criterion.kinds & evidence.kinds)


def score(criterion: Text, evidence: Text, vocabulary: Vocabulary | None = None) -> Match:
    """Steps 3 to 5 of the rule (see the module's docstring).

    ``vocabulary`` holds the stems of all the evidence the criterion is scored against (``evidence``'s
    among them), so that approximate matches are looked up once for all items; alone, it is built from
    ``evidence``.
    """
    if vocabulary is None:
        vocabulary = Vocabulary((evidence,))
    return _score(criterion, _approximable(criterion, vocabulary), evidence)


def _approximable(criterion: Text, vocabulary: Vocabulary) -> list[tuple[str, tuple[str, ...]]]:
    """The criterion's concepts that some stem of the vocabulary is close to, with those stems."""
    found = []
    for concept, term in criterion.wanted.items():
        if _fuzzy_eligible(term.stem):
            close = vocabulary.close(term.stem)
            if close:
                found.append((concept, close))
    return found


def _score(
    criterion: Text, approximable: Sequence[tuple[str, tuple[str, ...]]], evidence: Text
) -> Match:
    wanted = criterion.wanted
    if not wanted:
        return Match(0.0, (), False)
    concept_words = evidence.concept_words
    first_by_stem = evidence.first_by_stem
    exact = wanted.keys() & concept_words.keys()
    credit = float(len(exact))
    approximate: dict[str, str] = {}  # concept -> the evidence's first word close to it
    for concept, close in approximable:
        if concept in exact:
            continue
        hits = [first_by_stem[other] for other in close if other in first_by_stem]
        if hits:
            credit += FUZZY_CREDIT
            approximate[concept] = min(hits)[1]  # the first one written
    matched_concepts = exact | approximate.keys()
    matched: dict[str, None] = {}
    for concept in sorted(matched_concepts, key=criterion.concept_order.__getitem__):
        if concept in approximate:
            matched[approximate[concept]] = None
        else:
            matched.update(dict.fromkeys(concept_words[concept]))
    value = round(credit / len(wanted), 3)
    kinds = wanted.keys() & DELIVERABLE_KINDS
    addresses = (
        value >= THRESHOLD
        and not criterion.worded_concepts.isdisjoint(matched_concepts)
        and (not kinds or bool(kinds & matched_concepts))
    )
    return Match(value, tuple(matched), addresses)


class KeywordMatcher:
    """Stems, synonyms and the share of the criterion covered (see the module's docstring)."""

    name = "keywords"

    def match(self, criteria: Sequence[str], evidence: Sequence[str]) -> list[list[Match]]:
        return match_texts([read(text) for text in criteria], [read(text) for text in evidence])


@lru_cache(maxsize=256)
def read(text: str) -> Text:
    """``Text.of``, remembered: the same criteria and evidence are read for every criterion, for the
    required evidence and for the next revision, and reading (the stemmer most of all) is the costly part."""
    return Text.of(text)


def match_texts(criteria: Sequence[Text], evidence: Sequence[Text]) -> list[list[Match]]:
    """``score`` for each criterion and item, the evidence's stems indexed once for all criteria."""
    vocabulary = Vocabulary(evidence)
    rows = []
    for criterion in criteria:
        approximable = _approximable(criterion, vocabulary)
        rows.append([_score(criterion, approximable, item) for item in evidence])
    return rows
