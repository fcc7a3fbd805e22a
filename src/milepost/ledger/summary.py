"""A readable summary of where the money is, per currency."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from milepost.ledger.models import Account, AccountKind, JournalEntry
from milepost.ledger.verify import verify_ledger
from milepost.milestones.models import Milestone
from milepost.money import format_money

_LABELS = {
    AccountKind.USER: "user wallets",
    AccountKind.PENDING: "not cleared yet",
    AccountKind.ESCROW: "in escrow",
    AccountKind.PLATFORM_FEE: "platform fees",
    AccountKind.PAYOUT_CLEARING: "payouts on the way",
    AccountKind.PLATFORM_LOSS: "platform losses",
    AccountKind.EXTERNAL: "outside world",
}


def summarise(session: Session) -> list[str]:
    totals: dict[str, dict[AccountKind, int]] = defaultdict(lambda: defaultdict(int))
    for currency, kind, balance in session.execute(
        select(Account.currency, Account.kind, func.sum(Account.balance)).group_by(
            Account.currency, Account.kind
        )
    ):
        totals[currency][kind] = int(balance or 0)
    lines = []
    for currency in sorted(totals):
        lines.append(f"{currency}:")
        for kind, label in _LABELS.items():
            lines.append(f"  {label:20} {format_money(totals[currency][kind], currency):>18}")
    statuses = dict(
        session.execute(select(Milestone.status, func.count()).group_by(Milestone.status)).all()
    )
    entries = session.scalar(select(func.count()).select_from(JournalEntry)) or 0
    lines.append(
        "milestones: "
        + ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    )
    report = verify_ledger(session)
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    lines.append(f"ledger: {entries} journal entries, verify {verdict}")
    return lines
