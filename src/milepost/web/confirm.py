"""A pause before the irreversible: what a form would do, said in words before it is done.

A form that moves money out of an escrow or a wallet, or that cannot be undone, is sent twice. The first
time its service call is rehearsed: run in a unit of work that is then rolled back (``Web.rehearse``), and
what it did there (the ledger entries it posted, the state it left) is said in sentences on a confirmation
page. That page's form sends the same fields again, with a digest of the sentences. The second time the call
runs for real and is said again in the same unit of work; when the sentences differ from the ones confirmed
(part of the escrow was released meanwhile, a late fee accrued), the unit of work is rolled back and the
page says so. A person confirms exactly what happens, and the words come from the code that does it, not
from a second copy of its rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from milepost.disputes.models import Dispute
from milepost.kit.context import Context
from milepost.kit.errors import Conflict
from milepost.ledger.models import Account, AccountKind, JournalEntry
from milepost.ledger.service import posted_in
from milepost.milestones.models import Milestone
from milepost.milestones.state import MilestoneStatus
from milepost.money import format_money
from milepost.projects.models import Project, Proposal
from milepost.projects.state import ProposalStatus
from milepost.users.models import User
from milepost.wallets.models import Deposit, Payout

FIELD = "confirmed"  # the confirmation form's field: the digest of what was confirmed


class Changed(Conflict):
    """What the form would do now is not what the person confirmed: nothing was done."""

    code = "changed_since_confirmed"

    def __init__(self) -> None:
        super().__init__(
            "This changed after you looked at it, so nothing was done. "
            "Check the figures on this page and confirm again."
        )


@dataclass(frozen=True)
class Statement:
    """What a form will do, in the words of its confirmation page."""

    title: str
    lines: tuple[str, ...]
    button: str
    danger: bool

    @property
    def digest(self) -> str:
        said = json.dumps([self.title, self.lines, self.button])
        return hashlib.sha256(said.encode()).hexdigest()


@dataclass(frozen=True)
class Confirm:
    """How one form is confirmed: the page's title, the confirming button, and what else the call did in
    words (``say(ctx, result)``, in the unit of work the call ran in), after the money it moved.
    ``danger``: the button is styled as destructive (it takes money back or ends something)."""

    title: str
    button: str
    say: Callable[[Context, Any], Sequence[str]] = lambda ctx, result: ()
    danger: bool = False
    # The button when the call moves money, naming how much ("Release {moved}").
    moving: str | None = None

    def statement(self, ctx: Context, result: object) -> Statement:
        entries = posted_in(ctx.session)
        lines = [*money_moves(ctx), *self.say(ctx, result), "This cannot be undone."]
        button = self.button
        if entries and self.moving is not None:
            button = self.moving.format(moved=_moved(ctx, entries[0]))
        return Statement(self.title, tuple(lines), button, self.danger)

    def saying(self, call: Callable[[Context], object]) -> Callable[[Context], Statement]:
        """``call``, then what it did in words (to be rehearsed: run and rolled back)."""
        return lambda ctx: self.statement(ctx, call(ctx))

    def held_to(
        self, call: Callable[[Context], object], confirmed: str
    ) -> Callable[[Context], object]:
        """``call``, refused (``Changed``) unless it did what the person confirmed (the digest of the
        words they were shown), in the same unit of work, so that nothing else is kept."""

        def run(ctx: Context) -> object:
            result = call(ctx)
            if self.statement(ctx, result).digest != confirmed:
                raise Changed()
            return result

        return run


# Money moved, in words -----------------------------------------------------------------------------------


def money_moves(ctx: Context) -> list[str]:
    """One sentence for each ledger entry posted in this unit of work: how much leaves which account,
    and who receives what ("$1,000.00 leaves the escrow: Priya receives $900.00 and the platform fee is
    $100.00.")."""
    return [_entry_sentence(ctx, entry) for entry in posted_in(ctx.session)]


def _entry_sentence(ctx: Context, entry: JournalEntry) -> str:
    legs = [(_account(ctx, posting.account_id), posting.amount) for posting in entry.postings]
    sources = [account for account, amount in legs if amount < 0]
    total = -sum(amount for _, amount in legs if amount < 0)
    client_id = _client_of(ctx, entry)
    parts = [
        _receives(ctx, account, amount, refunded=account.user_id == client_id)
        for account, amount in legs
        if amount > 0
    ]
    money = format_money(total, sources[0].currency)
    if any(account.kind is AccountKind.EXTERNAL for account in sources):
        return f"{money} comes into Milepost from outside: {_and(parts)}."
    leaves = _and([_whose(ctx, account) for account in sources])
    return f"{money} leaves {leaves}: {_and(parts)}."


def _moved(ctx: Context, entry: JournalEntry) -> str:
    """How much the entry takes out of its source accounts."""
    out = [posting for posting in entry.postings if posting.amount < 0]
    return format_money(-sum(posting.amount for posting in out), out[0].currency)


def _account(ctx: Context, account_id: str) -> Account:
    account = ctx.session.get(Account, account_id)
    assert account is not None  # a posting's account always exists
    return account


def _client_of(ctx: Context, entry: JournalEntry) -> str | None:
    """The client whose escrow this entry draws on: money going back to them is a refund."""
    if entry.milestone_id is None:
        return None
    milestone = ctx.session.get(Milestone, entry.milestone_id)
    return None if milestone is None else milestone.client_id


def person(ctx: Context, user_id: str | None) -> str:
    """A user as the viewer reads them: "you", or their name."""
    if user_id is None:
        return "nobody"
    if user_id == ctx.actor_id:
        return "you"
    user = ctx.session.get(User, user_id)
    return "someone" if user is None else user.name


def _whose(ctx: Context, account: Account) -> str:
    if account.kind is AccountKind.ESCROW:
        return "the escrow"
    if account.kind is AccountKind.USER:
        name = person(ctx, account.user_id)
        return "your wallet" if name == "you" else f"{name}'s wallet"
    if account.kind is AccountKind.PENDING:
        name = person(ctx, account.user_id)
        return "your money not cleared yet" if name == "you" else f"{name}'s money not cleared yet"
    if account.kind is AccountKind.PAYOUT_CLEARING:
        return "the payouts on their way"
    return "the platform's account"


def _receives(ctx: Context, account: Account, amount: int, *, refunded: bool) -> str:
    money = format_money(amount, account.currency)
    if account.kind is AccountKind.PLATFORM_FEE:
        return f"the platform fee is {money}"
    if account.kind is AccountKind.EXTERNAL:
        return f"{money} goes out of Milepost, to the bank account"
    if account.kind is not AccountKind.USER:
        return f"{money} goes to the platform's account"
    name = person(ctx, account.user_id)
    if refunded:
        return f"{'you get' if name == 'you' else name + ' gets'} {money} back"
    return f"{name} {'receive' if name == 'you' else 'receives'} {money}"


def _and(parts: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


# What else each irreversible form does ----------------------------------------------------------------------


def _freelancer_of(ctx: Context, milestone: Milestone) -> str | None:
    project = ctx.session.get(Project, milestone.project_id)
    return None if project is None else project.freelancer_id


def _after_approval(ctx: Context, milestone: Milestone) -> list[str]:
    if milestone.status is MilestoneStatus.RELEASED:
        return ["The delivery is approved and the milestone is paid in full."]
    escrow = milestone.escrow_balance
    fee = milestone.fee_on_release(escrow)
    currency = milestone.currency
    return [
        "The delivery is approved. "
        f"The money stays in escrow for the {milestone.release_delay_days}-day release delay; then "
        f"{format_money(escrow, currency)} leaves the escrow: "
        f"{person(ctx, _freelancer_of(ctx, milestone))} receives "
        f"{format_money(escrow - fee, currency)} and the platform fee is "
        f"{format_money(fee, currency)}."
    ]


def _after_release(ctx: Context, milestone: Milestone) -> list[str]:
    if milestone.status is MilestoneStatus.RELEASED:
        return ["That is all the escrow held: the milestone is paid in full."]
    left = format_money(milestone.escrow_balance, milestone.currency)
    return [f"{left} stays in escrow, for you to release or for the review to settle."]


def _after_cancelling(ctx: Context, milestone: Milestone) -> list[str]:
    freelancer = person(ctx, _freelancer_of(ctx, milestone))
    if freelancer == "you":
        return ["The milestone is cancelled: you will not be paid for it."]
    return ["The milestone is cancelled: its work will not be paid for."]


def _after_settling(ctx: Context, dispute: Dispute) -> list[str]:
    return ["The dispute is settled and closed, with every open offer."]


def _after_awarding(ctx: Context, project: Project) -> list[str]:
    milestones = ctx.session.execute(
        select(func.count(), func.coalesce(func.sum(Milestone.amount), 0)).where(
            Milestone.project_id == project.id
        )
    ).one()
    declined = ctx.session.scalar(
        select(func.count()).where(
            Proposal.project_id == project.id,
            Proposal.status == ProposalStatus.DECLINED,
            Proposal.decided_at == ctx.now,
        )
    )
    count, total = int(milestones[0]), int(milestones[1])
    lines = [
        f"{person(ctx, project.freelancer_id)} is awarded the project: "
        f"{count} milestone{'s' if count != 1 else ''} of {format_money(total, project.currency)} "
        "in all are created, each for you to fund when work on it should start."
    ]
    if declined:
        lines.append(
            f"The other {declined} proposal{'s are' if declined != 1 else ' is'} declined."
        )
    return lines


def _after_bonus(ctx: Context, result: object) -> list[str]:
    return ["A bonus is paid at once, from your wallet: there is no escrow and no review."]


def _after_confirming_deposit(ctx: Context, deposit: Deposit) -> list[str]:
    return [
        f"Confirm it only once the bank shows {person(ctx, deposit.user_id)}'s transfer of "
        f"{format_money(deposit.amount, deposit.currency)} with the reference {deposit.reference}."
    ]


def _after_paying_out(ctx: Context, payout: Payout) -> list[str]:
    to = f" to {payout.destination.label}" if payout.destination is not None else ""
    return [
        f"Mark it paid only once you have sent {format_money(payout.amount, payout.currency)}{to} "
        f"with the reference {payout.reference}."
    ]


# The irreversible forms ------------------------------------------------------------------------------------

APPROVE = Confirm(
    "Approve the delivery", "Approve", _after_approval, moving="Approve and release {moved}"
)
RELEASE = Confirm("Release part of the escrow", "Release", _after_release, moving="Release {moved}")
CANCEL = Confirm(
    "Cancel the milestone",
    "Cancel the milestone",
    _after_cancelling,
    danger=True,
    moving="Cancel and refund {moved}",
)
ACCEPT_CANCELLATION = Confirm(
    "Accept the cancellation",
    "Accept: cancel the milestone",
    _after_cancelling,
    danger=True,
    moving="Accept: cancel and refund {moved}",
)
ACCEPT_OFFER = Confirm(
    "Accept the offer", "Accept and settle", _after_settling, moving="Accept: settle {moved}"
)
RESOLVE = Confirm(
    "Resolve the dispute", "Resolve", _after_settling, moving="Resolve: split {moved}"
)
ACCEPT_PROPOSAL = Confirm("Accept the proposal", "Accept the proposal", _after_awarding)
BONUS = Confirm("Pay a bonus", "Pay the bonus", _after_bonus, moving="Pay {moved}")
CONFIRM_DEPOSIT = Confirm(
    "Confirm the deposit", "Confirm", _after_confirming_deposit, moving="Confirm {moved} arrived"
)
MARK_PAYOUT_PAID = Confirm(
    "Mark the payout paid", "Mark paid", _after_paying_out, moving="Mark {moved} paid"
)
