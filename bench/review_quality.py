"""Review matcher quality: precision and recall on labelled (criterion, evidence, addresses_it) pairs.

Two sets: tests/data/review_pairs.csv, written before the matchers and then used to tune them (their
rules and thresholds; never its labels), and tests/data/review_pairs_holdout.csv, written after the
tuning and not tuned on: the honest estimate. For each matcher that is available here (``embeddings``
needs ``pip install 'milepost[ai]'``), prints the counts, precision and recall, overall and per kind of
pair (positive, near miss, negative), and with ``--mistakes`` every pair it got wrong.

    .venv/bin/python bench/review_quality.py [--mistakes]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from milepost.review.evaluation import Scores, evaluate, load_pairs
from milepost.review.keywords import KeywordMatcher
from milepost.review.matching import Matcher, embeddings_available

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = {"tuning set": DATA / "review_pairs.csv", "held-out set": DATA / "review_pairs_holdout.csv"}


def line(label: str, scores: Scores) -> str:
    return (
        f"  {label:<11} n={scores.total:<3} tp={scores.true_positives:<3} "
        f"fp={scores.false_positives:<3} fn={scores.false_negatives:<3} "
        f"tn={scores.true_negatives:<3} precision={scores.precision:.3f} "
        f"recall={scores.recall:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mistakes", action="store_true", help="list every pair judged wrongly")
    args = parser.parse_args()
    matchers: list[Matcher] = [KeywordMatcher()]
    if embeddings_available():
        from milepost.review.embeddings import EmbeddingMatcher

        matchers.append(EmbeddingMatcher())
    else:
        print("embeddings: not available (pip install 'milepost[ai]')")
    for title, path in SETS.items():
        pairs = load_pairs(path)
        positives = sum(pair.addresses_it for pair in pairs)
        print(f"\n{title}: {len(pairs)} pairs ({positives} address the criterion), {path.name}")
        for matcher in matchers:
            overall, per_kind = evaluate(matcher, pairs)
            print(f"{matcher.name}:")
            print(line("all", overall))
            for kind in sorted(per_kind):
                print(line(kind, per_kind[kind]))
            if args.mistakes:
                for pair, score in overall.mistakes:
                    verdict = "missed" if pair.addresses_it else "wrongly matched"
                    print(f"    {verdict} ({score:.2f}): {pair.criterion!r} <- {pair.evidence!r}")


if __name__ == "__main__":
    main()
