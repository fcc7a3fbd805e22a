from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel

from milepost.kit.schemas import Currency, amount_out, one_of
from milepost.ledger.models import AccountKind, EntryKind
from milepost.ledger.service import PostingView
from milepost.ledger.verify import VerifyReport


class PostingOut(BaseModel):
    id: str
    object: Literal["ledger_posting"] = "ledger_posting"
    entry_id: str
    entry_kind: Annotated[str, one_of(EntryKind, "What the journal entry records.")]
    account: str
    account_kind: Annotated[str, one_of(AccountKind, "The kind of account posted to.")]
    amount: int = amount_out(
        "Signed: positive into the account, negative out of it (a posting's side of its entry)."
    )
    currency: Currency
    milestone_id: str | None
    memo: str
    created_at: datetime

    @classmethod
    def of(cls, view: PostingView) -> PostingOut:
        return cls(
            id=view.posting.id,
            entry_id=view.entry.id,
            entry_kind=view.entry.kind,
            account=view.account.key,
            account_kind=view.account.kind,
            amount=view.posting.amount,
            currency=view.posting.currency,
            milestone_id=view.entry.milestone_id,
            memo=view.entry.memo,
            created_at=view.entry.created_at,
        )


class PostingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PostingOut]
    has_more: bool


class VerifyOut(BaseModel):
    object: Literal["ledger_verification"] = "ledger_verification"
    ok: bool
    accounts: int
    entries: int
    milestones: int
    events: int
    problems: list[str]
    # Extensions: whether the keyed MACs were checked (MILEPOST_LEDGER_KEY is set), and notes that are
    # not problems (e.g. that they were not).
    macs_checked: bool
    notes: list[str]

    @classmethod
    def of(cls, report: VerifyReport) -> VerifyOut:
        return cls(
            ok=report.ok,
            accounts=report.accounts,
            entries=report.entries,
            milestones=report.milestones,
            events=report.events,
            problems=report.problems,
            macs_checked=report.macs_checked,
            notes=report.notes,
        )
