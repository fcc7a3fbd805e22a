"""Review context cost: how long the matching takes as a milestone fills up to its limits.

For growing numbers of acceptance criteria and required evidence items (2,000 characters each) and
evidence texts (20,000 characters each, plus a note), prints the time of the first view of a delivery
(nothing read or cached yet), of a later view (matching cached, see review/cache.py), and how much of the
texts was read (review/matching.py). No database: the service's matching part, as the review endpoint and
the milestone page run it.

    .venv/bin/python bench/review_budget.py [--sizes 5,10,25,50]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from milepost.review import cache, keywords, service
from milepost.review.keywords import KeywordMatcher

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.review.filler import filler  # the tests' generator, from the checkout

TERM_LENGTH = 2_000
EVIDENCE_LENGTH = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,25,50", help="numbers of terms and evidence items")
    args = parser.parse_args()
    matcher = KeywordMatcher()
    for size in (int(part) for part in args.sizes.split(",")):
        rng = random.Random(size)
        criteria = [filler(rng, TERM_LENGTH) for _ in range(size)]
        required = [filler(rng, TERM_LENGTH) for _ in range(size)]
        items = service.evidence_items(
            filler(rng, EVIDENCE_LENGTH),
            [{"type": "text", "text": filler(rng, EVIDENCE_LENGTH)} for _ in range(size)],
            {},
        )
        keywords.read.cache_clear()
        keywords.stem.cache_clear()
        cache.matches.clear()
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            read = service.reading(items)
            service.check_criteria(matcher, criteria, items, read)
            service.check_required(matcher, required, items, read)
            timings.append(time.perf_counter() - start)
        written = sum(len(item.match_text) for item in items)
        print(
            f"{size:>3} criteria, {size:>3} required, {len(items):>3} items "
            f"({written:>9,} characters, {sum(map(len, read.values())):>6,} read): "
            f"first view {timings[0]:6.3f} s, later views {timings[1]:6.3f} s"
        )


if __name__ == "__main__":
    main()
