"""Measuring a matcher against labelled (criterion, evidence, addresses_it) pairs.

The labels live in tests/data/review_pairs.csv; ``bench/review_quality.py`` prints the numbers and a test
holds the default matcher to its target.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from milepost.review.matching import EvidenceKind, Matcher, evidence_text


@dataclass(frozen=True)
class Pair:
    domain: str
    criterion: str
    evidence_type: EvidenceKind
    evidence: str
    addresses_it: bool
    kind: str  # positive, near_miss or negative: how the pair was written


@dataclass
class Scores:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0
    mistakes: list[tuple[Pair, float]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        said_yes = self.true_positives + self.false_positives
        return self.true_positives / said_yes if said_yes else 0.0

    @property
    def recall(self) -> float:
        is_yes = self.true_positives + self.false_negatives
        return self.true_positives / is_yes if is_yes else 0.0

    @property
    def total(self) -> int:
        return (
            self.true_positives + self.false_positives + self.false_negatives + self.true_negatives
        )


def load_pairs(path: Path) -> list[Pair]:
    with path.open(newline="", encoding="utf-8") as file:
        return [
            Pair(
                domain=row["domain"],
                criterion=row["criterion"],
                evidence_type=cast(EvidenceKind, row["evidence_type"]),
                evidence=row["evidence"],
                addresses_it=row["addresses_it"].strip() == "1",
                kind=row["kind"],
            )
            for row in csv.DictReader(file)
        ]


def evaluate(matcher: Matcher, pairs: list[Pair]) -> tuple[Scores, dict[str, Scores]]:
    """Scores over all pairs, and per ``kind`` of pair."""
    # One call per criterion, with all its evidence, as the review context makes it.
    by_criterion: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_criterion[pair.criterion].append(pair)
    overall = Scores()
    per_kind: dict[str, Scores] = defaultdict(Scores)
    for criterion, group in by_criterion.items():
        texts = [evidence_text(pair.evidence_type, pair.evidence) for pair in group]
        [row] = matcher.match([criterion], texts)
        for pair, match in zip(group, row, strict=True):
            for scores in (overall, per_kind[pair.kind]):
                if match.addresses and pair.addresses_it:
                    scores.true_positives += 1
                elif match.addresses:
                    scores.false_positives += 1
                elif pair.addresses_it:
                    scores.false_negatives += 1
                else:
                    scores.true_negatives += 1
            if match.addresses != pair.addresses_it:
                overall.mistakes.append((pair, match.score))
    return overall, dict(per_kind)
