"""Review matcher quality on the labelled data, and what one criterion/evidence pair costs.

The sets (tests/data/review/, each file says how it was written):
- ``pairs_tune.csv`` and ``milestones_tune.json``: the semantic matcher's thresholds and rules were
  chosen on these;
- ``pairs_holdout.csv`` and ``milestones_holdout.json``: written apart, never tuned on: the honest
  estimate;
- the older tests/data/review_pairs*.csv, which the keyword rule was written against (they reward the
  criterion's own wording, so they flatter it).

For each matcher (semantic, the default; keywords) it prints precision, recall and F1 per set, per kind
of pair and per kind of project; on whole milestones, criterion accuracy, decision accuracy and the
wrong approvals (the review context suggested approving a milestone that needed changes). Then the cost
of a pair: a delivery of ``--items`` evidence items against ``--criteria`` criteria, median of
``--rounds`` runs with fresh texts (nothing cached), and the same again from the cache.

    .venv/bin/python bench/review_quality.py [--mistakes] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from milepost.review import keywords, semantic
from milepost.review.evaluation import (
    Scores,
    evaluate,
    evaluate_cases,
    load_cases,
    load_pairs,
)
from milepost.review.matching import Matcher, get_matcher

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
PAIR_SETS = {
    "tuning": DATA / "review" / "pairs_tune.csv",
    "held-out": DATA / "review" / "pairs_holdout.csv",
    "old tuning": DATA / "review_pairs.csv",
    "old held-out": DATA / "review_pairs_holdout.csv",
}
CASE_SETS = {
    "tuning": DATA / "review" / "milestones_tune.json",
    "held-out": DATA / "review" / "milestones_holdout.json",
}


def line(label: str, scores: Scores) -> str:
    return (
        f"    {label:<24} n={scores.total:<4} tp={scores.true_positives:<4} "
        f"fp={scores.false_positives:<4} fn={scores.false_negatives:<4} "
        f"precision={scores.precision:.2f} recall={scores.recall:.2f} F1={scores.f1:.2f}"
    )


def quality(matchers: list[Matcher], mistakes: bool) -> None:
    for title, path in PAIR_SETS.items():
        pairs = load_pairs(path)
        positives = sum(pair.addresses_it for pair in pairs)
        print(
            f"\npairs, {title} set ({path.name}): {len(pairs)}, {positives} address the criterion"
        )
        for matcher in matchers:
            result = evaluate(matcher, pairs)
            print(f"  {matcher.name}:")
            print(line("all", result.overall))
            if title.startswith("old"):
                continue
            for kind in sorted(result.per_kind):
                print(line(f"kind {kind}", result.per_kind[kind]))
            for project in sorted(result.per_project):
                print(line(f"project {project}", result.per_project[project]))
            if mistakes:
                for pair, score in result.overall.mistakes:
                    verdict = "missed" if pair.addresses_it else "wrongly met"
                    print(f"      {verdict} ({score:.2f}): {pair.criterion!r} <- {pair.evidence!r}")
    for title, path in CASE_SETS.items():
        cases = load_cases(path)
        approve = sum(case.decision == "approve" for case in cases)
        print(f"\nwhole milestones, {title} set ({path.name}): {len(cases)}, {approve} to approve")
        for matcher in matchers:
            scores = evaluate_cases(matcher, cases)
            print(
                f"  {matcher.name:<9} criteria right {scores.criteria_right}/{scores.criteria} "
                f"({scores.criterion_accuracy:.2f}), required evidence right "
                f"{scores.required_right}/{scores.required}, decisions right "
                f"{scores.decisions_right}/{scores.cases} ({scores.decision_accuracy:.2f}), "
                f"wrong approvals {len(scores.wrong_approvals)} {scores.wrong_approvals or ''}"
            )
            if mistakes and scores.wrong:
                print(f"      decided wrongly: {', '.join(scores.wrong)}")


def cost(criteria_count: int, items_count: int, rounds: int) -> None:
    matcher = get_matcher("semantic")
    started = time.perf_counter()
    semantic.encoder()
    print(f"\nmodel load: {time.perf_counter() - started:.2f} s (once per process)")
    pairs = criteria_count * items_count
    fresh, cached = [], []
    for round_ in range(rounds):
        # Fresh texts each round, so nothing comes from the caches.
        criteria = [
            f"Round {round_}: deliverable {i} about invoices, exports and the reporting module {i}"
            for i in range(criteria_count)
        ]
        evidence = [
            f"Round {round_}, item {i}: exported the invoices of month {i} to CSV; the finance "
            f"team checked the totals against the ledger and signed off on {i} reports."
            for i in range(items_count)
        ]
        started = time.perf_counter()
        matcher.match(criteria, evidence)
        fresh.append(time.perf_counter() - started)
        started = time.perf_counter()
        matcher.match(criteria, evidence)
        cached.append(time.perf_counter() - started)
        keywords.read.cache_clear()
    print(
        f"per pair, {criteria_count} criteria x {items_count} items, median of {rounds}: "
        f"{statistics.median(fresh) / pairs * 1000:.3f} ms fresh, "
        f"{statistics.median(cached) / pairs * 1000:.3f} ms with the embeddings cached "
        f"(a delivery: {statistics.median(fresh) * 1000:.0f} ms fresh)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mistakes", action="store_true", help="list every pair judged wrongly")
    parser.add_argument("--criteria", type=int, default=5)
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    quality([get_matcher("semantic"), get_matcher("keywords")], args.mistakes)
    cost(args.criteria, args.items, args.rounds)


if __name__ == "__main__":
    main()
