"""A small world to write tests in: people, wallets, projects and milestones made through the services.

Every ``act`` runs one service call as one person in its own unit of work, the way a request would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select

from milepost.audit.models import MilestoneEvent
from milepost.disputes.models import Dispute, SettlementOffer
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.errors import MilepostError
from milepost.ledger.models import Account, JournalEntry
from milepost.ledger.service import user_account
from milepost.ledger.verify import VerifyReport, verify_ledger
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.projects import service as projects
from milepost.projects.models import Project, Proposal
from milepost.settings import Settings
from milepost.users.models import User
from milepost.users.service import create_user
from milepost.wallets import destinations
from milepost.wallets import service as wallets
from milepost.wallets.models import Deposit, Payout, PayoutDestination

T = TypeVar("T")
PASSWORD = "correct horse battery"
_counter = itertools.count(1)


class World:
    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or Settings(fee_bps=1000, providers="sandbox,manual")

    # Acting -------------------------------------------------------------------------------------------

    def act(
        self,
        user: User | None,
        action: Callable[..., T],
        *args: Any,
        now: datetime | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``action(ctx, *args, **kwargs)`` as ``user`` (None: the system) in one unit of work."""
        with self.db.unit_of_work() as session:
            actor = None if user is None else session.get(User, user.id)
            ctx = (
                Context(session, actor, settings=self.settings)
                if now is None
                else Context(session, actor, now=now, settings=self.settings)
            )
            return action(ctx, *args, **kwargs)

    def attempt(
        self, user: User | None, action: Callable[..., object], *args: Any, **kwargs: Any
    ) -> MilepostError | None:
        """Try ``action`` as ``user`` in a unit of work that is always rolled back: None if the service
        accepted it, else its refusal. Nothing is kept either way (to ask "would it be accepted?")."""
        with self.db.rehearsal() as session:
            actor = None if user is None else session.get(User, user.id)
            try:
                action(Context(session, actor, settings=self.settings), *args, **kwargs)
            except MilepostError as error:
                return error
        return None

    # Making things ------------------------------------------------------------------------------------

    def user(self, name: str = "user", *, staff: bool = False) -> User:
        with self.db.unit_of_work() as session:
            return create_user(
                session,
                email=f"{name}{next(_counter)}@example.com",
                name=name.title(),
                password=PASSWORD,
                is_staff=staff,
            )

    def deposit(self, user: User, amount: int, currency: str = "USD") -> None:
        self.act(user, wallets.create_deposit, amount=amount, currency=currency)

    def destination(self, user: User, **fields: Any) -> PayoutDestination:
        """A bank account ``user`` can be paid to (a valid German IBAN unless told otherwise)."""
        fields.setdefault("holder_name", user.name)
        if "account_number" not in fields:
            fields.setdefault("iban", "DE89 3704 0044 0532 0130 00")
        return self.act(user, destinations.add_destination, **fields)

    def project(
        self, client: User, freelancer: User | None = None, currency: str = "USD", **fields: Any
    ) -> Project:
        return self.act(
            client,
            projects.create_project,
            title="Website",
            currency=currency,
            freelancer_id=None if freelancer is None else freelancer.id,
            **fields,
        )

    def milestone(
        self, client: User, project: Project, amount: int = 100_000, **terms: Any
    ) -> Milestone:
        terms.setdefault("title", "Milestone")
        terms.setdefault("acceptance_criteria", ["It works"])
        return self.act(client, milestones.create_milestone, project.id, amount=amount, **terms)

    def parties(self, currency: str = "USD", wallet: int = 1_000_000) -> tuple[User, User, Project]:
        """A client with ``wallet`` deposited, a freelancer, and an awarded project between them."""
        client, freelancer = self.user("client"), self.user("freelancer")
        if wallet:
            self.deposit(client, wallet, currency)
        return client, freelancer, self.project(client, freelancer, currency)

    def funded(self, amount: int = 100_000, **terms: Any) -> tuple[User, User, Milestone]:
        client, freelancer, project = self.parties(wallet=max(amount, 1_000_000))
        milestone = self.milestone(client, project, amount, **terms)
        self.act(client, milestones.fund, milestone.id)
        return client, freelancer, self.get(milestone.id)

    def submitted(self, amount: int = 100_000, **terms: Any) -> tuple[User, User, Milestone]:
        client, freelancer, milestone = self.funded(amount, **terms)
        self.act(
            freelancer,
            milestones.submit,
            milestone.id,
            note="Done",
            evidence=[{"type": "link", "url": "https://example.com/pr/1"}],
        )
        return client, freelancer, self.get(milestone.id)

    # Reading ------------------------------------------------------------------------------------------

    def get(self, milestone_id: str) -> Milestone:
        with self.db.read_only() as session:
            milestone = session.get(Milestone, milestone_id)
            assert milestone is not None
            return milestone

    def balance(self, user: User, currency: str = "USD") -> int:
        with self.db.read_only() as session:
            value = session.scalar(
                select(Account.balance).where(Account.key == user_account(user.id, currency).key)
            )
            return int(value or 0)

    def account_balance(self, key: str) -> int:
        with self.db.read_only() as session:
            return int(session.scalar(select(Account.balance).where(Account.key == key)) or 0)

    def verify(self) -> VerifyReport:
        with self.db.read_only() as session:
            return verify_ledger(session)

    def snapshot(self) -> dict[str, Any]:
        """Everything a refused action must leave as it was."""
        with self.db.read_only() as session:
            return {
                "accounts": dict(session.execute(select(Account.key, Account.balance)).all()),
                "milestones": {
                    m.id: (
                        m.status,
                        m.funded_amount,
                        m.released_amount,
                        m.refunded_amount,
                        m.fee_amount,
                        m.late_fee_amount,
                        m.cancellation_requested,
                        m.title,
                        m.amount,
                    )
                    for m in session.scalars(select(Milestone))
                },
                "projects": {
                    p.id: (p.status, p.freelancer_id) for p in session.scalars(select(Project))
                },
                "proposals": {p.id: p.status for p in session.scalars(select(Proposal))},
                "disputes": {d.id: d.status for d in session.scalars(select(Dispute))},
                "offers": {o.id: o.status for o in session.scalars(select(SettlementOffer))},
                "deposits": {d.id: d.status for d in session.scalars(select(Deposit))},
                "payouts": {p.id: p.status for p in session.scalars(select(Payout))},
                "destinations": {
                    d.id: d.removed_at for d in session.scalars(select(PayoutDestination))
                },
                "events": session.scalar(select(func.count()).select_from(MilestoneEvent)),
                "entries": session.scalar(select(func.count()).select_from(JournalEntry)),
            }
