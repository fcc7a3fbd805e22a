"""Measuring a matcher against labelled (criterion, evidence, addresses_it) pairs and whole milestones.

The labels live in tests/data/review/ (``pairs_*.csv``, ``milestones_*.json``; each file says how it was
written); ``bench/review_quality.py`` prints the numbers and tests/review/test_quality.py holds the
default matcher to what it measured. A pair counts as matched only when the verdict is ``met``:
``unclear`` is a "no" that asks a person to look.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from milepost.review.matching import EvidenceKind, Matcher, evidence_text


@dataclass(frozen=True)
class Pair:
    project: str  # the kind of project (crm, design, ...), or in the oldest set the topic
    criterion: str
    evidence_type: EvidenceKind
    evidence: str
    addresses_it: bool
    kind: str  # how the pair was written: paraphrase, hard_negative, partial, future, terse, ...


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
    def f1(self) -> float:
        both = self.precision + self.recall
        return 2 * self.precision * self.recall / both if both else 0.0

    @property
    def total(self) -> int:
        return (
            self.true_positives + self.false_positives + self.false_negatives + self.true_negatives
        )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        lines = [line for line in file if not line.startswith("#")]  # how the file was written
    return list(csv.DictReader(lines))


def load_pairs(path: Path) -> list[Pair]:
    return [
        Pair(
            project=row.get("project") or row["domain"],
            criterion=row["criterion"],
            evidence_type=cast(EvidenceKind, row["evidence_type"]),
            evidence=row["evidence"],
            addresses_it=row["addresses_it"].strip() == "1",
            kind=row["kind"],
        )
        for row in _rows(path)
    ]


@dataclass
class Evaluation:
    overall: Scores
    per_kind: dict[str, Scores]
    per_project: dict[str, Scores]


def evaluate(matcher: Matcher, pairs: list[Pair]) -> Evaluation:
    """Scores over all pairs, per ``kind`` of pair and per ``project``."""
    # One call per criterion, with all its evidence, as the review context makes it.
    by_criterion: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_criterion[pair.criterion].append(pair)
    overall = Scores()
    per_kind: dict[str, Scores] = defaultdict(Scores)
    per_project: dict[str, Scores] = defaultdict(Scores)
    for criterion, group in by_criterion.items():
        texts = [evidence_text(pair.evidence_type, pair.evidence) for pair in group]
        [row] = matcher.match([criterion], texts)
        for pair, match in zip(group, row, strict=True):
            for scores in (overall, per_kind[pair.kind], per_project[pair.project]):
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
    return Evaluation(overall, dict(per_kind), dict(per_project))


@dataclass(frozen=True)
class Case:
    """A whole milestone with its delivery, and what a careful client decided."""

    id: str
    project: str
    acceptance_criteria: tuple[str, ...]
    required_evidence: tuple[str, ...]
    note: str
    evidence: tuple[
        dict[str, str], ...
    ]  # {"type": "text", "text": ...}, link "url", file "filename"
    criteria_met: tuple[bool, ...]
    required_present: tuple[bool, ...]
    decision: str  # approve or request_changes


def load_cases(path: Path) -> list[Case]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        Case(
            id=case["id"],
            project=case["project"],
            acceptance_criteria=tuple(case["acceptance_criteria"]),
            required_evidence=tuple(case["required_evidence"]),
            note=case["note"],
            evidence=tuple(case["evidence"]),
            criteria_met=tuple(case["criteria_met"]),
            required_present=tuple(case["required_present"]),
            decision=case["decision"],
        )
        for case in data["milestones"]
    ]


@dataclass
class CaseScores:
    criteria: int = 0
    criteria_right: int = 0
    required: int = 0
    required_right: int = 0
    cases: int = 0
    decisions_right: int = 0
    wrong_approvals: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # ids of every case decided wrongly

    @property
    def decision_accuracy(self) -> float:
        return self.decisions_right / self.cases if self.cases else 0.0

    @property
    def criterion_accuracy(self) -> float:
        return self.criteria_right / self.criteria if self.criteria else 0.0


def evaluate_cases(matcher: Matcher, cases: list[Case]) -> CaseScores:
    """The review context's own checks and suggestion (service.py) on each whole milestone."""
    from milepost.review.service import case_items, check_criteria, check_required, suggest

    scores = CaseScores()
    for case in cases:
        items = case_items(case.note, case.evidence)
        criteria = check_criteria(matcher, case.acceptance_criteria, items)
        required = check_required(matcher, case.required_evidence, items)
        suggestion = suggest(criteria, required, 1)
        scores.cases += 1
        scores.criteria += len(criteria)
        scores.criteria_right += sum(
            check.met == met for check, met in zip(criteria, case.criteria_met, strict=True)
        )
        scores.required += len(required)
        scores.required_right += sum(
            check.found == present
            for check, present in zip(required, case.required_present, strict=True)
        )
        if suggestion.decision == case.decision:
            scores.decisions_right += 1
        else:
            scores.wrong.append(case.id)
            if suggestion.decision == "approve":
                scores.wrong_approvals.append(case.id)
    return scores
