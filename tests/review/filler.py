"""Varied, realistic delivery prose of any length, to fill a milestone to its limits (tests and
bench/review_budget.py)."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


def _vocabulary() -> list[str]:
    found: set[str] = set()
    for name in ("review_pairs.csv", "review_pairs_holdout.csv"):
        with (DATA / name).open(newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file):
                found.update(re.findall(r"[A-Za-z]+", f"{row['criterion']} {row['evidence']}"))
    return sorted(found)


WORDS = _vocabulary()
ENDINGS = ("", "", "", "s", "ed", "ing", "er", "ation", "ments", "ly")


def filler(rng: random.Random, length: int) -> str:
    """``length`` characters of varied delivery prose: the labelled sets' words in many forms, some
    misspelt, with numbers, ticket numbers and made-up names, in clauses and sentences."""

    def word() -> str:
        roll = rng.random()
        if roll < 0.7:
            written = rng.choice(WORDS) + rng.choice(ENDINGS)
            if rng.random() < 0.1 and len(written) > 5:  # a typo
                cut = rng.randrange(1, len(written) - 1)
                written = written[:cut] + written[cut + 1 :]
            return written
        if roll < 0.8:
            return str(rng.randrange(1, 100_000))
        if roll < 0.9:
            return f"{rng.choice(['INV', 'PR', 'JIRA', 'SKU'])}-{rng.randrange(100, 9999)}"
        return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))

    parts: list[str] = []
    size = 0
    while size < length:
        sentence = " ".join(word() for _ in range(rng.randint(5, 18)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([". ", "; ", ", ", ".\n"])
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)[: length - 1] + "."
