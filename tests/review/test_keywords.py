"""The keyword matcher: normalisation, stemming, synonyms and the scoring rule, without a database."""

from __future__ import annotations

import logging

import pytest

from milepost.review import matching
from milepost.review.keywords import THRESHOLD, KeywordMatcher, Text, score, stem, terms, words
from milepost.review.matching import evidence_text, get_matcher


def match(criterion: str, evidence: str) -> matching.Match:
    return score(Text.of(criterion), Text.of(evidence))


def test_words_are_lower_case_without_punctuation_or_stop_words() -> None:
    assert words("All the Contacts, Companies & Deals!") == ["contacts", "companies", "deals"]


def test_words_fold_accents_split_camel_case_and_join_compounds() -> None:
    assert words("Café QuoteBuilder e-mail mock-ups") == [
        "cafe",
        "quote",
        "builder",
        "email",
        "mockup",
    ]


def test_numbers_keep_their_thousands_and_number_words_become_digits() -> None:
    assert words("48,000 contacts in two sessions") == ["48000", "contacts", "2", "sessions"]


def test_words_inside_urls_and_file_names_count() -> None:
    assert evidence_text("link", "https://github.example/acme/legacy-import/pull/17") == (
        "github acme legacy import pull 17"
    )
    assert (
        evidence_text("file", "CRM-Administrator-Guide_v1.pdf") == "CRM Administrator Guide v1 pdf"
    )
    assert evidence_text("text", "as written.") == "as written."


def test_stemming_joins_forms_of_a_word() -> None:
    assert stem("migrated") == stem("migration") == stem("migrating")
    assert stem("tests") == stem("testing")
    # Snowball folds "customer" into "custom"; the matcher keeps them apart.
    assert stem("customers") != stem("customization")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("migration", "import"),
        ("migrate", "transferred"),
        ("testing", "QA"),
        ("training", "workshop"),
        ("training", "onboarding"),
        ("integration", "API"),
        ("integrate", "sync"),
        ("design", "Figma"),
        ("mockup", "wireframes"),
        ("documentation", "manual"),
        ("docs", "guide"),
        ("deploy", "released"),
        ("customise", "customize"),
        ("customization", "configured"),
    ],
)
def test_synonyms_are_one_concept(one: str, other: str) -> None:
    [first], [second] = terms(one), terms(other)
    assert first.concept == second.concept


def test_score_is_the_share_of_the_criterion_covered() -> None:
    result = match("Two-way sync with the accounting system", "Accounting sync is live")
    # Concepts 2, way, integrate (sync), account, system: two of five.
    assert result.score == 0.4
    assert set(result.matched_words) == {"accounting", "sync"}
    assert not result.addresses
    full = match(
        "Data migration", "All records imported from the old CRM; migration report attached"
    )
    assert full.score == 0.5 >= THRESHOLD
    assert full.addresses
    assert "imported" in full.matched_words


def test_close_stems_earn_part_credit() -> None:
    # A misspelling is close enough (RapidFuzz ratio) for part credit.
    result = match("Dashboard widgets", "dashbord widget")
    assert result.score == pytest.approx((0.75 + 1) / 2, abs=0.001)
    assert result.matched_words == ("dashbord", "widget")
    assert result.addresses


def test_a_number_alone_does_not_address_a_criterion() -> None:
    result = match("120 SKUs", "120 photos")
    assert result.score == 0.5
    assert not result.addresses


def test_a_criterion_naming_a_kind_of_deliverable_needs_evidence_of_that_kind() -> None:
    # "admin" matches, but an admin panel is no guide: the kind (a document) is missing.
    assert not match("Written admin guide", "Admin panel for managing users is live").addresses
    assert match("Written admin guide", "Admin manual in the wiki").addresses


def test_clauses_saying_the_work_is_not_done_do_not_count() -> None:
    assert not match("Testing and QA", "QA not yet started").addresses
    assert not match("Test plan with results", "Test plan draft attached").addresses
    note = "Data migration done; QA to be scheduled next week."
    assert match("Data migration", note).addresses
    assert not match("Testing and QA", note).addresses
    assert not match("Testing and QA", "Everything but QA.").addresses
    assert not match("Testing and QA", "All parts delivered except testing").addresses
    assert not match("Training", "The training hasn't happened").addresses


def test_unrelated_evidence_scores_zero() -> None:
    result = match(
        "Two live training sessions for the sales team", "Fixed the date picker on Safari"
    )
    assert (result.score, result.matched_words, result.addresses) == (0.0, (), False)


def test_the_matcher_is_deterministic_and_shaped_criteria_by_evidence() -> None:
    criteria = ["Data migration", "Training", "Testing and QA"]
    evidence = ["migration-report.pdf", "Recorded onboarding workshop", "nothing here"]
    first = KeywordMatcher().match(criteria, evidence)
    assert first == KeywordMatcher().match(criteria, evidence)
    assert [[m.addresses for m in row] for row in first] == [
        [True, False, False],
        [False, True, False],
        [False, False, False],
    ]


def test_the_semantic_matcher_is_the_default_and_keywords_can_be_chosen() -> None:
    assert get_matcher("auto").name == "semantic"
    assert get_matcher("semantic").name == "semantic"
    assert get_matcher("embeddings").name == "semantic"  # the setting's old name
    assert get_matcher("keywords").name == "keywords"


def test_without_the_semantic_libraries_the_keyword_matcher_reviews(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(matching, "semantic_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert get_matcher("auto").name == "keywords"
    assert "not installed: using the keyword matcher" in caplog.text
