"""Review context: what a reviewer needs to decide on a delivery, assembled from stored state and "now".

For each acceptance criterion, the evidence items of the latest submission that appear to address it
(with a score and the matched words); each required evidence item found or missing; the revision history
with what each change request asked and what changed in the next delivery; the time left in the review
period; and a suggested decision. It only reads: nothing here changes a milestone.

The suggestion is the matcher's reading of words, offered to the reviewer; it never decides by itself.

The work is bounded: the matcher reads a bounded start of each text (matching.py) and its results for a
delivery are computed once per process and reused by every view (cache.py); only the time left is
computed from "now" on each request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select

from milepost.audit import service as audit
from milepost.audit.models import MilestoneEvent
from milepost.events import EventAction
from milepost.files.models import StoredFile
from milepost.kit.context import Context
from milepost.kit.time import as_utc
from milepost.milestones.access import load_milestone
from milepost.milestones.models import Submission
from milepost.milestones.state import MilestoneStatus
from milepost.review import cache, vetoes
from milepost.review.llm import LlmItem, LlmReviewer, LlmVerdict, reviewer_from_settings
from milepost.review.matching import (
    TERM_CHARS,
    EvidenceKind,
    Match,
    Matcher,
    Verdict,
    evidence_text,
    get_matcher,
    read_evidence,
    read_part,
)

LABEL_LENGTH = 120


@dataclass(frozen=True)
class EvidenceItem:
    """One thing a submission offers as evidence; the note counts as one too (``ref`` "note")."""

    ref: str  # "note", or "evidence[i]": its place in the submission's evidence list
    type: EvidenceKind
    label: str  # what a person reads: the text (shortened), the URL or the file name
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    content_type: str | None = None
    text: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What makes two items the same one across revisions."""
        return (self.type, self.url or self.file_id or self.text or "")

    @property
    def match_text(self) -> str:
        if self.type == "link":
            return evidence_text("link", self.url or "")
        if self.type == "file":
            return evidence_text("file", self.filename or "")
        return self.text or ""


@dataclass(frozen=True)
class EvidenceMatch:
    item: EvidenceItem
    score: float
    matched_words: tuple[str, ...]
    verdict: Verdict = "met"
    quote: str = ""  # the item's sentence that carried the verdict
    veto: str = ""  # why it cannot meet the criterion, whatever its score


@dataclass(frozen=True)
class Term:
    """An acceptance criterion or a required evidence item, by its index in the milestone's terms."""

    index: int
    text: str


@dataclass(frozen=True)
class CriterionCheck:
    criterion: Term
    verdict: Verdict  # met: an item addresses it; unclear: one looks related, check it; else unmet
    score: float  # the best score of any item, even when none reaches the matcher's threshold
    evidence: tuple[EvidenceMatch, ...]  # the items that address it, best first
    closest: EvidenceMatch | None  # the best item, when none addresses it (an unclear one first)
    matcher: str = ""  # which matcher judged it: the review's matcher, or "llm"
    explanation: str = ""  # the LLM reviewer's reason, when it judged it

    @property
    def met(self) -> bool:
        return self.verdict == "met"


@dataclass(frozen=True)
class RequiredCheck:
    required: Term
    found: bool
    evidence: tuple[EvidenceMatch, ...]
    closest: EvidenceMatch | None = None  # when not found: the item that came closest, if any


@dataclass(frozen=True)
class ChangeRequest:
    requested_at: datetime
    reason: str
    unmet_criteria: tuple[Term, ...]


@dataclass(frozen=True)
class Revision:
    revision: int
    submission_id: str
    submitted_at: datetime
    note: str
    evidence: tuple[EvidenceItem, ...]
    added: tuple[EvidenceItem, ...]  # against the revision before; all of them for the first
    removed: tuple[EvidenceItem, ...]
    note_changed: bool
    changes_requested: ChangeRequest | None  # what the client asked after this delivery


@dataclass(frozen=True)
class Suggestion:
    decision: Literal["approve", "request_changes"]
    unmet_criteria: tuple[Term, ...]  # every criterion not met, the unclear ones included
    missing_evidence: tuple[Term, ...]
    reasons: tuple[str, ...]
    unclear_criteria: tuple[Term, ...] = ()  # those of them that look related: check them


@dataclass(frozen=True)
class ReviewTime:
    due_at: datetime | None
    seconds_left: int | None  # None unless the milestone is under review; 0 once the period is over
    overdue: bool


@dataclass(frozen=True)
class ReviewContext:
    milestone_id: str
    milestone_status: str
    matcher: str
    submission: Revision | None  # the latest delivery
    criteria: tuple[CriterionCheck, ...]
    required_evidence: tuple[RequiredCheck, ...]
    revisions: tuple[Revision, ...]
    review_time: ReviewTime
    suggestion: Suggestion | None  # None before the first delivery
    # What the matcher read only the start of (see matching.py): "acceptance_criteria[i]",
    # "required_evidence[i]", "note" or "evidence[i]".
    read_in_part: tuple[str, ...] = ()


def review_context(ctx: Context, milestone_id: str) -> ReviewContext:
    """The review context of a milestone, for either party (anyone else gets 404)."""
    milestone = load_milestone(ctx, milestone_id, lock=False).milestone
    submissions = list(
        ctx.session.scalars(
            select(Submission)
            .where(Submission.milestone_id == milestone.id)
            .order_by(Submission.revision)
        )
    )
    files = _files(ctx, submissions)
    revisions = revision_history(
        submissions, audit.list_events(ctx, milestone.id), files, milestone.acceptance_criteria
    )
    latest = revisions[-1] if revisions else None
    items = latest.evidence if latest is not None else ()
    matcher = get_matcher(ctx.settings.review_matcher)
    read = reading(items)
    criteria = check_criteria(
        matcher,
        milestone.acceptance_criteria,
        items,
        read,
        reviewer_from_settings(ctx.settings),
    )
    required = check_required(matcher, milestone.required_evidence, items, read)
    return ReviewContext(
        milestone_id=milestone.id,
        milestone_status=str(milestone.status),
        matcher=LlmReviewer.name
        if any(check.matcher == LlmReviewer.name for check in criteria)
        else matcher.name,
        submission=latest,
        criteria=criteria,
        required_evidence=required,
        revisions=tuple(revisions),
        review_time=review_time(milestone.status, milestone.review_due_at, ctx.now),
        suggestion=None if latest is None else suggest(criteria, required, latest.revision),
        read_in_part=read_in_part(
            milestone.acceptance_criteria, milestone.required_evidence, items, read
        ),
    )


def _files(ctx: Context, submissions: Sequence[Submission]) -> dict[str, StoredFile]:
    ids = {
        item["file_id"]
        for submission in submissions
        for item in submission.evidence
        if item.get("type") == "file"
    }
    if not ids:
        return {}
    return {
        row.id: row for row in ctx.session.scalars(select(StoredFile).where(StoredFile.id.in_(ids)))
    }


# The parts below are plain Python: no database, so they are tested directly.


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_LENGTH else text[: LABEL_LENGTH - 1].rstrip() + "…"


def evidence_items(
    note: str, evidence: Sequence[dict[str, Any]], files: dict[str, StoredFile]
) -> tuple[EvidenceItem, ...]:
    items = []
    if note.strip():
        items.append(EvidenceItem("note", "note", _label(note), text=note))
    for index, raw in enumerate(evidence):
        ref = f"evidence[{index}]"
        if raw.get("type") == "link":
            url = str(raw.get("url", ""))
            items.append(EvidenceItem(ref, "link", url, url=url))
        elif raw.get("type") == "file":
            file_id = str(raw.get("file_id", ""))
            stored = files.get(file_id)
            filename = stored.filename if stored is not None else file_id
            items.append(
                EvidenceItem(
                    ref,
                    "file",
                    filename,
                    file_id=file_id,
                    filename=filename,
                    content_type=stored.content_type if stored is not None else None,
                )
            )
        elif raw.get("type") == "text":
            text = str(raw.get("text", ""))
            items.append(EvidenceItem(ref, "text", _label(text), text=text))
    return tuple(items)


def reading(items: Sequence[EvidenceItem]) -> dict[str, str]:
    """What a matcher reads of each item of a delivery, by ``ref``: the part within the limits of
    matching.py, the delivery's share spread over all its items (the same for criteria and required
    evidence, so each text is read once)."""
    return dict(
        zip(
            (item.ref for item in items),
            read_evidence([item.match_text for item in items]),
            strict=True,
        )
    )


def _matches(
    matcher: Matcher,
    texts: Sequence[str],
    items: Sequence[EvidenceItem],
    read: Mapping[str, str],
) -> Sequence[Sequence[Match]]:
    """The matcher's results on the part of each text it reads, computed once per delivery (cache.py)."""
    if not texts:
        return []
    if not items:
        return [[] for _ in texts]
    return cache.matches.match(
        matcher, [read_part(text, TERM_CHARS) for text in texts], [read[item.ref] for item in items]
    )


def read_in_part(
    criteria: Sequence[str],
    required: Sequence[str],
    items: Sequence[EvidenceItem],
    read: Mapping[str, str],
) -> tuple[str, ...]:
    """The texts the matcher read only the start of (see matching.py), by reference."""
    cut = [f"acceptance_criteria[{i}]" for i, text in enumerate(criteria) if len(text) > TERM_CHARS]
    cut += [f"required_evidence[{i}]" for i, text in enumerate(required) if len(text) > TERM_CHARS]
    # Criteria are matched against every item, required evidence against all but the note.
    cut += [
        item.ref
        for item in items
        if (criteria or (required and item.type != "note"))
        and len(read[item.ref]) < len(item.match_text)
    ]
    return tuple(cut)


_RANK: dict[Verdict, int] = {"met": 0, "unclear": 1, "unmet": 2}


def _addressing(
    row: Sequence[Match], items: Sequence[EvidenceItem]
) -> tuple[tuple[EvidenceMatch, ...], EvidenceMatch | None]:
    """The items that address it (best first), and the closest item: an unclear one before an
    unmet one, then by score."""
    ranked = sorted(
        (
            EvidenceMatch(
                item, match.score, match.matched_words, match.verdict, match.quote, match.veto
            )
            for match, item in zip(row, items, strict=True)
        ),
        key=lambda found: (_RANK[found.verdict], -found.score),
    )
    addressing = tuple(found for found in ranked if found.verdict == "met")
    return addressing, (ranked[0] if ranked else None)


def check_criteria(
    matcher: Matcher,
    criteria: Sequence[str],
    items: Sequence[EvidenceItem],
    read: Mapping[str, str] | None = None,
    reviewer: LlmReviewer | None = None,
) -> tuple[CriterionCheck, ...]:
    """Each criterion, met when at least one item (the note included) addresses it. ``read``: what
    the matcher reads of each item (``reading(items)`` unless given). With ``reviewer``, its verdict is
    taken where it gave a usable one (llm.py), subject to the same vetoes; elsewhere the matcher's."""
    read = reading(items) if read is None else read
    rows = _matches(matcher, criteria, items, read)
    answers: Sequence[LlmVerdict | None] = [None] * len(criteria)
    if reviewer is not None and criteria and items:
        answers = reviewer.review(
            criteria, [LlmItem(item.ref, item.type, read[item.ref]) for item in items]
        )
    checks = []
    for index, (criterion, row, answer) in enumerate(zip(criteria, rows, answers, strict=True)):
        name = matcher.name
        if answer is not None:
            row = _llm_row(criterion, row, items, read, answer)
            name = LlmReviewer.name
        addressing, best = _addressing(row, items)
        verdict: Verdict = best.verdict if best is not None else "unmet"
        checks.append(
            CriterionCheck(
                criterion=Term(index, criterion),
                verdict=verdict,
                score=max((match.score for match in row), default=0.0),
                evidence=addressing,
                closest=None if addressing else best,
                matcher=name,
                explanation=answer.reason if answer is not None else "",
            )
        )
    return tuple(checks)


def _llm_row(
    criterion: str,
    row: Sequence[Match],
    items: Sequence[EvidenceItem],
    read: Mapping[str, str],
    answer: LlmVerdict,
) -> list[Match]:
    """The LLM's verdict as a row of matches: the items it cites carry its verdict and quote (the
    vetoes may still overrule them); the others are unmet. Scores stay the local matcher's."""
    cited = set(answer.refs)
    result = []
    for item, local in zip(items, row, strict=True):
        if item.ref not in cited or answer.verdict == "unmet":
            result.append(replace(local, addresses=False, unclear=False))
            continue
        said = replace(
            local,
            addresses=answer.verdict == "met",
            unclear=answer.verdict == "unclear",
            quote=answer.quote or local.quote,
            veto="",
        )
        result.append(vetoes.overrule(criterion, read[item.ref], said))
    return result


def check_required(
    matcher: Matcher,
    required: Sequence[str],
    items: Sequence[EvidenceItem],
    read: Mapping[str, str] | None = None,
) -> tuple[RequiredCheck, ...]:
    """Each required evidence item, found when a link, file or text item is it. The note does not
    count: saying "report attached" is not attaching the report.

    Being a named document is a matter of words as much as of meaning ("screenshot.png" is a
    "Screenshot of the dashboard"), so the keyword rule's verdict counts here beside the matcher's;
    the vetoes apply to both."""
    read = reading(items) if read is None else read
    offered = [item for item in items if item.type != "note"]
    rows = _matches(matcher, required, offered, read)
    words_only = get_matcher("keywords")
    if matcher.name != words_only.name:
        worded = _matches(words_only, required, offered, read)
        rows = [
            [
                found if found.addresses or not words.addresses else _as_met(found, words)
                for found, words in zip(row, word_row, strict=True)
            ]
            for row, word_row in zip(rows, worded, strict=True)
        ]
    checks = []
    for index, (text, row) in enumerate(zip(required, rows, strict=True)):
        addressing, best = _addressing(row, offered)
        checks.append(
            RequiredCheck(
                Term(index, text), bool(addressing), addressing, None if addressing else best
            )
        )
    return tuple(checks)


def _as_met(found: Match, words: Match) -> Match:
    """The matcher's match, met on the keyword rule's word (with its matched words)."""
    return replace(found, addresses=True, unclear=False, matched_words=words.matched_words)


def suggest(
    criteria: Sequence[CriterionCheck], required: Sequence[RequiredCheck], revision: int
) -> Suggestion:
    """Approve when every criterion is met and every required item found; else request changes, saying
    which criteria and which evidence, and why."""
    unmet = tuple(check.criterion for check in criteria if not check.met)
    missing = tuple(check.required for check in required if not check.found)
    if not unmet and not missing:
        reasons = [
            f"Every acceptance criterion is addressed by the evidence of revision {revision}."
            if criteria
            else "The milestone has no acceptance criteria.",
        ]
        if required:
            reasons.append("Every required evidence item is present.")
        return Suggestion("approve", (), (), tuple(reasons))
    reasons = []
    for check in criteria:
        if check.met:
            continue
        closest = check.closest
        if check.verdict == "unclear" and closest is not None:
            reason = (
                f'Criterion {check.criterion.index + 1}, "{check.criterion.text}", looks related to '
                f'{closest.item.ref} "{closest.item.label}" but is not clearly shown by it: check it'
            )
        else:
            reason = (
                f'Criterion {check.criterion.index + 1}, "{check.criterion.text}", is not addressed '
                f"by any evidence in revision {revision}"
            )
            if closest is not None and closest.veto:
                reason += f" ({closest.item.ref}: {closest.veto})"
            elif closest is not None and closest.matched_words:
                reason += (
                    f' (closest: {closest.item.ref} "{closest.item.label}", '
                    f"score {closest.score:.2f})"
                )
        reasons.append(reason + ".")
    for item in missing:
        reasons.append(f'Required evidence "{item.text}" is missing from revision {revision}.')
    unclear = tuple(check.criterion for check in criteria if check.verdict == "unclear")
    return Suggestion("request_changes", unmet, missing, tuple(reasons), unclear)


def case_items(note: str, evidence: Sequence[Mapping[str, str]]) -> tuple[EvidenceItem, ...]:
    """The items of a delivery written as plain data (``{"type": "file", "filename": ...}`` for a
    file): how the labelled milestones of tests/data are read."""
    files = {
        f"file-{index}": StoredFile(id=f"file-{index}", filename=raw["filename"])
        for index, raw in enumerate(evidence)
        if raw.get("type") == "file"
    }
    stored = [
        {"type": "file", "file_id": f"file-{index}"} if raw.get("type") == "file" else dict(raw)
        for index, raw in enumerate(evidence)
    ]
    return evidence_items(note, stored, files)


def revision_history(
    submissions: Sequence[Submission],
    events: Sequence[MilestoneEvent],
    files: dict[str, StoredFile],
    criteria: Sequence[str],
) -> list[Revision]:
    """Every delivery, oldest first, with what changed since the one before and the change request that
    followed it (from the audit trail: a ``changes_requested`` event after the revision's ``submitted``)."""
    requests: dict[int, ChangeRequest] = {}
    current: int | None = None
    for event in events:
        if event.action == EventAction.SUBMITTED:
            current = event.data.get("revision")
        elif event.action == EventAction.CHANGES_REQUESTED and current is not None:
            unmet = tuple(
                Term(index, criteria[index])
                for index in event.data.get("unmet_criteria", [])
                if isinstance(index, int) and 0 <= index < len(criteria)
            )
            requests[current] = ChangeRequest(
                as_utc(event.created_at), str(event.data.get("reason", "")), unmet
            )
    revisions: list[Revision] = []
    previous: Revision | None = None
    for submission in submissions:
        items = evidence_items(submission.note, submission.evidence, files)
        offered = tuple(item for item in items if item.type != "note")
        before = (
            {item.key for item in previous.evidence if item.type != "note"} if previous else set()
        )
        now = {item.key for item in offered}
        revision = Revision(
            revision=submission.revision,
            submission_id=submission.id,
            submitted_at=as_utc(submission.created_at),
            note=submission.note,
            evidence=items,
            added=tuple(item for item in offered if item.key not in before),
            removed=tuple(
                item
                for item in (previous.evidence if previous else ())
                if item.type != "note" and item.key not in now
            ),
            note_changed=previous is not None and previous.note != submission.note,
            changes_requested=requests.get(submission.revision),
        )
        revisions.append(revision)
        previous = revision
    return revisions


def review_time(status: str, due_at: datetime | None, now: datetime) -> ReviewTime:
    """Time left in the review period; only a milestone under review (``submitted``) has any."""
    if status != MilestoneStatus.SUBMITTED or due_at is None:
        return ReviewTime(None if due_at is None else as_utc(due_at), None, False)
    left = int((as_utc(due_at) - now).total_seconds())
    return ReviewTime(as_utc(due_at), max(left, 0), left < 0)
