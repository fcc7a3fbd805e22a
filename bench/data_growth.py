"""How the reads one user makes grow with their data: p50/p95 per page at N milestones of one client.

For each size, generates into a fresh database one client's history of N milestones with one freelancer,
over eight projects (one in EUR, the rest in USD), consistent in every table that ``milepost ledger
verify`` checks: the deposits that paid for the fundings, the fundings, deliveries, approvals, releases
with their fees, refunds and dispute splits, the freelancer's payouts, every journal entry and audit event
hashed and signed with the project's own functions (bench/ledger_rows.py), written with multi-row
INSERTs. Then it starts ``milepost serve`` on that database, signs in as the client, the freelancer and a
staff user over HTTP, and requests each page in turn over one keep-alive connection, timing each request
from the client's side. It prints p50/p95 per page at each size, and how much p95 grew from the smallest
size to the largest.

The shape of the history: the client keeps a steady pace (``PACE`` milestones a day, fewer in a history
shorter than ``MIN_DAYS``), so a larger N is a longer history at the same pace, not a busier month: the
last weeks look alike at every size and the years before them grow. Each milestone is created three weeks
before its fund-by date and lives through one of these (a fixed mix, seeded):

- funded on its fund-by date, delivered five days later, approved and released three days after that;
- the same with a round of changes requested before the approval;
- the same with a release delay of three days (approved, then released by the system);
- funded ten days late (half of these with late fee terms, so funding takes the accrued fee);
- funded, then cancelled by the freelancer three days later (refunded);
- cancelled as a draft, never funded;
- delivered, disputed by the client, and split half and half by staff a week later.

So the milestones whose fund-by date is still ahead are drafts, and those of the last few weeks are
funded, delivered, approved or disputed (open disputes for the staff queue): a few hundred open ones at any
size, and the rest of the history closed. One in twenty milestones has no dates. The client deposits
(sandbox) whenever the next funding needs it; the freelancer is paid out (sandbox) once a month; at the
end a few bank transfer deposits and payouts wait for staff. On PostgreSQL the database is analysed after
loading (autovacuum would do so on its own schedule); on SQLite nothing is (the app runs no ANALYZE).

    .venv/bin/python bench/data_growth.py                              # 1k, 10k, 100k; both backends
    .venv/bin/python bench/data_growth.py --sizes 200 2000             # the quick check (< 1 minute)
    .venv/bin/python bench/data_growth.py --sizes 1000 100000 --backends postgres --requests 200

Each page is requested 100 times (``--requests``) after three unmeasured requests, or for 10 seconds
(``--seconds``) if it is slower, at least 20 times. On this machine a request now and then takes ~100 ms
more whatever the data (about one in 80, at every size, both backends): with fewer than ~60 requests
such a request can be the p95, so p95s from short runs are noisy.

To compare versions of the app on the same data, name each with ``--app NAME=SRC_DIR``, oldest first: the
data is generated once per size, then each version brings the schema to its own head (so an index a newer
version adds exists only for it) and is measured in turn:

    git archive v1 src | tar -x -C /tmp/v1
    .venv/bin/python bench/data_growth.py --app before=/tmp/v1/src --app after=src

On PostgreSQL each size gets a database of its own (``milepost_growth_<pid>_<random>``), dropped
afterwards; no other database is touched.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import psycopg

from milepost.disputes.models import DisputeStatus, Resolution
from milepost.events import EventAction
from milepost.kit.db import Database
from milepost.kit.ids import new_id
from milepost.kit.macs import KeyRing
from milepost.ledger.models import EntryKind
from milepost.ledger.service import (
    AccountRef,
    clearing_account,
    escrow_account,
    external_account,
    fee_account,
    user_account,
)
from milepost.milestones.late_fees import accrued_late_fee, validate_late_fee
from milepost.milestones.state import MilestoneStatus
from milepost.money import cumulative_fee
from milepost.users.service import create_user
from milepost.wallets.models import DepositStatus, DestinationKind, PayoutStatus
from milepost.web.session import SESSION_COOKIE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ledger_rows import Ledger, Row, Rows, milestone_row, project_row

MILEPOST = str(Path(sys.executable).parent / "milepost")
LEDGER_KEY = "bench:" + "g" * 40
PASSWORD = "data-growth-password"
PACE = 8  # milestones a day
MIN_DAYS = 60  # the shortest history: every kind of life above fits in it
PROJECTS = 8  # the first in EUR
AMOUNTS = (5_000, 12_500, 25_000, 40_000, 75_000, 150_000)
FEE_BPS = 1000  # the default MILEPOST_FEE_BPS, which the server runs with
DEPOSIT = 2_000_000  # what the client tops up by, at least
CHUNK = 2_000  # milestones per INSERT round: bounds the generator's own memory
MIN_REQUESTS = 20  # measured per page, however slow it is
LATE_FEE = {"type": "percent", "rate_bps": 200, "period_days": 7, "grace_days": 2, "cap_bps": 1000}
DAY = timedelta(days=1)
S = MilestoneStatus


class Life(StrEnum):
    """The course a milestone takes (see the module's docstring)."""

    RELEASED = "released"
    CHANGES = "changes"
    DELAYED = "delayed"
    LATE = "late"
    REFUNDED = "refunded"
    CANCELLED_DRAFT = "cancelled_draft"
    DISPUTED = "disputed"


MIX = (
    (Life.RELEASED, 62),
    (Life.CHANGES, 8),
    (Life.DELAYED, 8),
    (Life.LATE, 6),
    (Life.REFUNDED, 6),
    (Life.CANCELLED_DRAFT, 6),
    (Life.DISPUTED, 4),
)


@dataclass(frozen=True)
class Generated:
    """What the measurements need to know of the generated data."""

    client_id: str
    freelancer_id: str
    staff_id: str
    emails: dict[str, str]  # role -> e-mail (all with PASSWORD)
    project_ids: list[str]
    open_dispute_ids: list[str]
    milestones: int
    postings: int
    events: int
    statuses: dict[str, int]


@dataclass
class _Wallets:
    """What the client may still spend and what the freelancer has been paid, as time goes by."""

    spendable: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # The freelancer's credits not yet counted as available: (when, currency, amount), soonest first.
    credits: list[tuple[datetime, str, int]] = field(default_factory=list)
    available: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_payout: datetime | None = None


class History:
    """One client's milestones, written in the order of their fund-by dates."""

    def __init__(
        self, ledger: Ledger, now: datetime, client_id: str, freelancer_id: str, staff_id: str
    ) -> None:
        self.ledger = ledger
        self.now = now
        self.client_id, self.freelancer_id, self.staff_id = client_id, freelancer_id, staff_id
        self.rows = Rows()
        self.wallets = _Wallets()
        self.open_dispute_ids: list[str] = []
        self.statuses: dict[str, int] = defaultdict(int)
        self.postings = self.events = 0

    def take_rows(self) -> Rows:
        rows, self.rows = self.rows, Rows()
        self.postings += len(rows.postings)
        self.events += len(rows.events)
        return rows

    # Money in and out of the wallets ----------------------------------------------------------------

    def _client(self, currency: str) -> AccountRef:
        return user_account(self.client_id, currency)

    def _freelancer(self, currency: str) -> AccountRef:
        return user_account(self.freelancer_id, currency)

    def ensure_funds(self, currency: str, total: int, cursor: datetime) -> None:
        """A sandbox deposit before ``cursor`` (the fund-by date being written, no later than any funding
        still to come) when what the client may spend does not cover ``total``. Refunds and splits back
        to the client are not counted: the balance only runs ahead of what is spent."""
        if self.wallets.spendable[currency] >= total:
            return
        amount = max(DEPOSIT, total)
        at = cursor - timedelta(hours=1)
        deposit_id = new_id("dep")
        reference = f"sandbox-{deposit_id}"
        entry = self.ledger.entry(
            self.rows,
            EntryKind.DEPOSIT,
            [(external_account("sandbox", currency), -amount), (self._client(currency), amount)],
            actor_id=self.client_id,
            memo=f"deposit {deposit_id} ({reference})",
            at=at,
        )
        self.rows.deposits.append(
            {
                "id": deposit_id,
                "user_id": self.client_id,
                "amount": amount,
                "currency": currency,
                "provider": "sandbox",
                "status": DepositStatus.SUCCEEDED,
                "reference": reference,
                "entry_id": entry["id"],
                "created_at": at,
                "succeeded_at": at,
            }
        )
        self.wallets.spendable[currency] += amount

    def credit_freelancer(self, at: datetime, currency: str, amount: int) -> None:
        heapq.heappush(self.wallets.credits, (at, currency, amount))

    def _credits_until(self, moment: datetime) -> None:
        # Every credit due by ``moment`` is known by now: a milestone written later has a later fund-by
        # date, and pays the freelancer days after it.
        credits = self.wallets.credits
        while credits and credits[0][0] <= moment:
            _, currency, amount = heapq.heappop(credits)
            self.wallets.available[currency] += amount

    def monthly_payout(self, cursor: datetime) -> None:
        """Once every 30 days the freelancer takes out everything earned so far (sandbox: paid at once)."""
        last = self.wallets.last_payout
        if last is not None and cursor - last < timedelta(days=30):
            return
        self.wallets.last_payout = cursor
        self._credits_until(cursor)
        for currency, amount in sorted(self.wallets.available.items()):
            if amount > 0:
                self.payout(currency, amount, cursor, provider="sandbox")

    def payout(
        self,
        currency: str,
        amount: int,
        at: datetime,
        *,
        provider: str,
        destination: str | None = None,
    ) -> None:
        payout_id = new_id("po")
        reference = f"{provider}-{payout_id}" if provider == "sandbox" else f"payout-{payout_id}"
        clearing = clearing_account(provider, currency)
        self.ledger.entry(
            self.rows,
            EntryKind.PAYOUT,
            [(self._freelancer(currency), -amount), (clearing, amount)],
            actor_id=self.freelancer_id,
            memo=f"payout {payout_id}",
            at=at,
        )
        paid = provider == "sandbox"
        if paid:
            self.ledger.entry(
                self.rows,
                EntryKind.PAYOUT_PAID,
                [(clearing, -amount), (external_account(provider, currency), amount)],
                actor_id=self.freelancer_id,
                memo=f"payout {payout_id} paid ({reference})",
                at=at,
            )
        self.rows.payouts.append(
            {
                "id": payout_id,
                "user_id": self.freelancer_id,
                "amount": amount,
                "currency": currency,
                "provider": provider,
                "status": PayoutStatus.PAID if paid else PayoutStatus.PENDING,
                "reference": reference,
                "created_at": at,
                "paid_at": at if paid else None,
                "destination_id": destination,
            }
        )
        self.wallets.available[currency] -= amount

    def waiting_for_staff(self) -> None:
        """Three bank transfer deposits of the client's and two payouts of the freelancer's, pending."""
        for hours in (30, 6, 2):
            deposit_id = new_id("dep")
            self.rows.deposits.append(
                {
                    "id": deposit_id,
                    "user_id": self.client_id,
                    "amount": 250_000,
                    "currency": "USD",
                    "provider": "manual",
                    "status": DepositStatus.PENDING,
                    "reference": f"MP-{secrets.token_hex(4).upper()}",
                    "entry_id": None,
                    "created_at": self.now - timedelta(hours=hours),
                }
            )
        destination: Row = {
            "id": new_id("dst"),
            "user_id": self.freelancer_id,
            "kind": DestinationKind.IBAN,
            "label": "Main account",
            "holder_name": "Freelancer",
            "iban": "DE89370400440532013000",
            "bic": "COBADEFFXXX",
            "created_at": self.now - timedelta(days=90),
        }
        self.rows.destinations.append(destination)
        self._credits_until(self.now)
        for hours in (20, 4):
            amount = min(50_000, self.wallets.available["USD"])
            if amount > 0:
                at = self.now - timedelta(hours=hours)
                self.payout("USD", amount, at, provider="manual", destination=destination["id"])

    # One milestone's life -------------------------------------------------------------------------------

    def milestone(
        self,
        project: Row,
        position: int,
        fund_by: datetime,
        life: Life,
        amount: int,
        *,
        dated: bool,
    ) -> None:
        """Write the milestone's life as far as it has got by ``now``."""
        terms: dict[str, Any] = {}
        if dated:
            terms.update(fund_by=fund_by.date(), due_date=(fund_by + 5 * DAY).date())
        elif life is Life.LATE:
            life = Life.RELEASED  # late against no date is on time
        if life is Life.LATE and position % 2:
            terms["late_fee"] = validate_late_fee(dict(LATE_FEE))
        if life is Life.DELAYED:
            terms["release_delay_days"] = 3
        milestone = milestone_row(
            project["id"],
            self.client_id,
            position,
            amount,
            project["currency"],
            fund_by - 21 * DAY,
            **terms,
        )
        self.rows.milestones.append(milestone)
        self._event(
            milestone,
            EventAction.CREATED,
            milestone["created_at"],
            to_status=S.DRAFT,
            amount=amount,
        )
        self._live(milestone, fund_by, life)
        self.statuses[str(milestone["status"])] += 1

    def _live(self, milestone: Row, fund_by: datetime, life: Life) -> None:
        if life is Life.CANCELLED_DRAFT:
            self._step(milestone, fund_by - 5 * DAY, self._cancel)
            return
        funded_at = fund_by + (10 * DAY if life is Life.LATE else timedelta())
        if not self._step(milestone, funded_at, lambda m, at: self._fund(m, at, fund_by)):
            return
        if life is Life.REFUNDED:
            self._step(milestone, funded_at + 3 * DAY, self._cancel)
            return
        submitted_at = funded_at + (4 if life is Life.CHANGES else 5) * DAY
        if not self._step(milestone, submitted_at, self._submit):
            return
        if life is Life.CHANGES:
            if not self._step(milestone, submitted_at + 2 * DAY, self._request_changes):
                return
            submitted_at += 4 * DAY
            if not self._step(milestone, submitted_at, self._submit):
                return
        if life is Life.DISPUTED:
            opened_at = submitted_at + 3 * DAY
            if self._step(milestone, opened_at, self._open_dispute):
                self._step(milestone, opened_at + 7 * DAY, self._resolve_dispute)
            return
        approved_at = submitted_at + 3 * DAY
        if not self._step(milestone, approved_at, self._approve):
            return
        release_at = milestone["release_due_at"] or approved_at
        self._step(milestone, release_at, self._release)

    def _step(self, milestone: Row, at: datetime, change: Any) -> bool:
        """Make ``change`` at ``at`` if that moment has come; whether it had."""
        if at > self.now:
            return False
        change(milestone, at)
        milestone["updated_at"] = at
        return True

    def _event(
        self,
        milestone: Row,
        action: EventAction,
        at: datetime,
        entry: Row | None = None,
        *,
        role: str = "client",
        from_status: str | None = None,
        to_status: str | None = None,
        amount: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        actor = {"client": self.client_id, "freelancer": self.freelancer_id, "staff": self.staff_id}
        self.ledger.event(
            self.rows,
            milestone,
            action,
            entry,
            actor_id=actor.get(role),  # the system acts as nobody
            actor_role=role,
            at=at,
            from_status=from_status,
            to_status=to_status,
            amount=amount,
            data=data,
        )

    def _move(self, milestone: Row, to_status: MilestoneStatus, at: datetime) -> str:
        before = str(milestone["status"])
        milestone["status"] = to_status
        if to_status in (S.RELEASED, S.CANCELLED, S.RESOLVED):
            milestone["ended_at"] = at
        return before

    def _fund(self, milestone: Row, at: datetime, cursor: datetime) -> None:
        currency = milestone["currency"]
        late_fee = accrued_late_fee(
            milestone["late_fee"], milestone["amount"], milestone["fund_by"], at.date()
        )
        total = milestone["amount"] + late_fee
        self.ensure_funds(currency, total, cursor)
        entry = self.ledger.entry(
            self.rows,
            EntryKind.FUND,
            [(self._client(currency), -total), (escrow_account(milestone["id"], currency), total)],
            milestone_id=milestone["id"],
            actor_id=self.client_id,
            memo=f"fund milestone {milestone['id']}",
            at=at,
        )
        self.wallets.spendable[currency] -= total
        milestone.update(
            funded_amount=total, late_fee_amount=late_fee, fee_rate_bps=FEE_BPS, funded_at=at
        )
        before = self._move(milestone, S.FUNDED, at)
        self._event(
            milestone,
            EventAction.FUNDED,
            at,
            entry,
            from_status=before,
            to_status=S.FUNDED,
            amount=total,
            data={"late_fee": late_fee},
        )

    def _cancel(self, milestone: Row, at: datetime) -> None:
        refund = (
            milestone["funded_amount"] - milestone["released_amount"] - milestone["refunded_amount"]
        )
        entry = None
        role = "client"
        if refund:
            role = "freelancer"
            currency = milestone["currency"]
            entry = self.ledger.entry(
                self.rows,
                EntryKind.REFUND,
                [
                    (escrow_account(milestone["id"], currency), -refund),
                    (self._client(currency), refund),
                ],
                milestone_id=milestone["id"],
                actor_id=self.freelancer_id,
                memo=f"refund of milestone {milestone['id']}",
                at=at,
            )
            milestone["refunded_amount"] += refund
        before = self._move(milestone, S.CANCELLED, at)
        self._event(
            milestone,
            EventAction.CANCELLED,
            at,
            entry,
            role=role,
            from_status=before,
            to_status=S.CANCELLED,
            amount=refund,
            data={"reason": "No longer needed"},
        )

    def _submit(self, milestone: Row, at: datetime) -> None:
        revision = 2 if milestone["status"] is S.CHANGES_REQUESTED else 1
        submission_id = new_id("sub")
        self.rows.submissions.append(
            {
                "id": submission_id,
                "milestone_id": milestone["id"],
                "revision": revision,
                "submitted_by": self.freelancer_id,
                "note": "Delivered as agreed.",
                "evidence": [{"type": "text", "text": "See the attached report."}],
                "created_at": at,
            }
        )
        milestone.update(submitted_at=at, review_due_at=at + milestone["review_period_days"] * DAY)
        before = self._move(milestone, S.SUBMITTED, at)
        self._event(
            milestone,
            EventAction.SUBMITTED,
            at,
            role="freelancer",
            from_status=before,
            to_status=S.SUBMITTED,
            data={"submission_id": submission_id, "revision": revision},
        )

    def _request_changes(self, milestone: Row, at: datetime) -> None:
        milestone["review_due_at"] = None
        before = self._move(milestone, S.CHANGES_REQUESTED, at)
        self._event(
            milestone,
            EventAction.CHANGES_REQUESTED,
            at,
            from_status=before,
            to_status=S.CHANGES_REQUESTED,
            data={"reason": "Missing tests", "unmet_criteria": [0]},
        )

    def _approve(self, milestone: Row, at: datetime) -> None:
        milestone.update(approved_at=at, review_due_at=None)
        if milestone["release_delay_days"]:
            milestone["release_due_at"] = at + milestone["release_delay_days"] * DAY
        before = self._move(milestone, S.APPROVED, at)
        self._event(milestone, EventAction.APPROVED, at, from_status=before, to_status=S.APPROVED)

    def _release(self, milestone: Row, at: datetime) -> None:
        currency = milestone["currency"]
        amount = (
            milestone["funded_amount"] - milestone["released_amount"] - milestone["refunded_amount"]
        )
        fee = cumulative_fee(milestone["released_amount"], amount, milestone["fee_amount"], FEE_BPS)
        delayed = milestone["release_due_at"] is not None
        entry = self.ledger.entry(
            self.rows,
            EntryKind.RELEASE,
            [
                (escrow_account(milestone["id"], currency), -amount),
                (self._freelancer(currency), amount - fee),
                (fee_account(currency), fee),
            ],
            milestone_id=milestone["id"],
            actor_id=None if delayed else self.client_id,
            memo=f"release from milestone {milestone['id']}",
            at=at,
        )
        milestone["released_amount"] += amount
        milestone["fee_amount"] += fee
        self.credit_freelancer(at, currency, amount - fee)
        before = self._move(milestone, S.RELEASED, at)
        self._event(
            milestone,
            EventAction.RELEASED,
            at,
            entry,
            role="system" if delayed else "client",
            from_status=before,
            to_status=S.RELEASED,
            amount=amount,
            data={"fee": fee, "to_freelancer": amount - fee},
        )

    def _open_dispute(self, milestone: Row, at: datetime) -> None:
        dispute_id = new_id("dsp")
        reason = "The delivery does not match the acceptance criteria."
        self.rows.disputes.append(
            {
                "id": dispute_id,
                "milestone_id": milestone["id"],
                "opened_by": self.client_id,
                "opener_role": "client",
                "reason": reason,
                "status": DisputeStatus.OPEN,
                "status_before": milestone["status"],
                "respond_by": at + 7 * DAY,
                "mediation_due_at": at + 14 * DAY,
                "created_at": at,
            }
        )
        self.open_dispute_ids.append(dispute_id)
        before = self._move(milestone, S.DISPUTED, at)
        self._event(
            milestone,
            EventAction.DISPUTE_OPENED,
            at,
            from_status=before,
            to_status=S.DISPUTED,
            data={"dispute_id": dispute_id, "reason": reason},
        )

    def _resolve_dispute(self, milestone: Row, at: datetime) -> None:
        dispute = self.rows.disputes[-1]
        self.open_dispute_ids.remove(dispute["id"])
        currency = milestone["currency"]
        escrow = (
            milestone["funded_amount"] - milestone["released_amount"] - milestone["refunded_amount"]
        )
        to_freelancer = escrow // 2
        to_client = escrow - to_freelancer
        fee = cumulative_fee(
            milestone["released_amount"], to_freelancer, milestone["fee_amount"], FEE_BPS
        )
        entry = self.ledger.entry(
            self.rows,
            EntryKind.DISPUTE_SPLIT,
            [
                (escrow_account(milestone["id"], currency), -escrow),
                (self._freelancer(currency), to_freelancer - fee),
                (fee_account(currency), fee),
                (self._client(currency), to_client),
            ],
            milestone_id=milestone["id"],
            actor_id=self.staff_id,
            memo=f"dispute {dispute['id']} resolved ({Resolution.STAFF})",
            at=at,
        )
        milestone["released_amount"] += to_freelancer
        milestone["refunded_amount"] += to_client
        milestone["fee_amount"] += fee
        self.credit_freelancer(at, currency, to_freelancer - fee)
        dispute.update(
            status=DisputeStatus.RESOLVED,
            resolution=Resolution.STAFF,
            to_freelancer=to_freelancer,
            to_client=to_client,
            resolved_by=self.staff_id,
            resolution_note="Half of the work was usable.",
            ended_at=at,
        )
        data = {
            "dispute_id": dispute["id"],
            "resolution": str(Resolution.STAFF),
            "to_freelancer": to_freelancer,
            "to_client": to_client,
            "fee": fee,
        }
        before = self._move(milestone, S.RESOLVED, at)
        self._event(
            milestone,
            EventAction.DISPUTE_RESOLVED,
            at,
            entry,
            role="staff",
            from_status=before,
            to_status=S.RESOLVED,
            amount=escrow,
            data=data,
        )


def _users(database: Database, now: datetime, start: datetime) -> dict[str, str]:
    """The client, the freelancer and a staff user, made by the app's own sign-up (password hashes
    that sign in); role -> id."""
    tag = secrets.token_hex(3)
    ids = {}
    with database.unit_of_work() as session:
        for role in ("client", "freelancer", "staff"):
            user = create_user(
                session,
                email=f"{role}-{tag}@growth.example",
                name=f"Growth {role}",
                password=PASSWORD,
                is_staff=role == "staff",
            )
            user.created_at = min(start, now)
            ids[role] = user.id
            ids[role + "_email"] = user.email
    return ids


def generate(
    url: str, milestones: int, *, seed: int = 14, now: datetime | None = None, chunk: int = CHUNK
) -> Generated:
    """Write one client's history of ``milestones`` milestones into the (migrated, empty) database,
    ``chunk`` milestones per INSERT round and commit."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    rng = random.Random(seed)
    days = max(MIN_DAYS, milestones / PACE)
    first_fund_by = now + 21 * DAY - timedelta(days=days)  # the newest drafts are three weeks ahead
    step = timedelta(days=days) / milestones
    start = first_fund_by - 22 * DAY
    lives, weights = zip(*MIX, strict=True)
    database = Database(url)
    try:
        users = _users(database, now, start)
        ledger = Ledger(KeyRing.parse(LEDGER_KEY), start)
        history = History(ledger, now, users["client"], users["freelancer"], users["staff"])
        projects = [
            project_row(
                users["client"],
                users["freelancer"],
                f"Growth project {number + 1}",
                "EUR" if number == 0 else "USD",
                start,
            )
            for number in range(PROJECTS)
        ]
        history.rows.projects += projects
        positions = [0] * PROJECTS
        with database.engine.connect() as connection:
            for index in range(milestones):
                fund_by = (first_fund_by + step * index).replace(microsecond=0)
                history.monthly_payout(fund_by)
                number = index % PROJECTS
                positions[number] += 1
                history.milestone(
                    projects[number],
                    positions[number],
                    fund_by,
                    rng.choices(lives, weights)[0],
                    rng.choice(AMOUNTS),
                    dated=rng.random() >= 0.05,
                )
                if (index + 1) % chunk == 0:
                    ledger.insert(connection, history.take_rows())
                    connection.commit()
            history.waiting_for_staff()
            ledger.insert(connection, history.take_rows())
            ledger.finish(connection)
            connection.commit()
    finally:
        database.dispose()
    return Generated(
        client_id=users["client"],
        freelancer_id=users["freelancer"],
        staff_id=users["staff"],
        emails={role: users[role + "_email"] for role in ("client", "freelancer", "staff")},
        project_ids=[project["id"] for project in projects],
        open_dispute_ids=history.open_dispute_ids,
        milestones=milestones,
        postings=history.postings,
        events=history.events,
        statuses=dict(history.statuses),
    )


# Measuring ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    path: str  # {project}, {dispute}, {month_start}, {today} filled in from the data
    viewer: str  # client, freelancer or staff


PAGES = (
    Page("dashboard, outgoing tab", "/?tab=outgoing", "client"),
    Page("dashboard, incoming tab", "/?tab=incoming", "client"),
    Page("freelancer's dashboard, incoming", "/?tab=incoming", "freelancer"),
    Page("GET /v1/balances", "/v1/balances", "client"),
    Page("GET /v1/milestones (first page)", "/v1/milestones", "client"),
    Page("project page", "/projects/{project}", "client"),
    Page("GET /v1/projects/{id}", "/v1/projects/{project}", "client"),
    Page(
        "statement.csv, this month",
        "/v1/ledger/statement.csv?from={month_start}&to={today}",
        "client",
    ),
    Page("staff page (queues)", "/staff", "staff"),
    Page("staff dispute page", "/staff/disputes/{dispute}", "staff"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(url: str, workdir: Path, environment: dict[str, str]) -> Iterator[str]:
    """``milepost serve`` on ``url`` (one process, no background worker): its base URL."""
    port = free_port()
    environment = {
        **environment,
        "MILEPOST_PROVIDERS": "sandbox,manual",
        "MILEPOST_SECRET_KEY": secrets.token_urlsafe(32),
        "MILEPOST_LEDGER_KEY": LEDGER_KEY,
        "MILEPOST_FILES_DIR": str(workdir / "files"),
    }
    process = subprocess.Popen(
        [MILEPOST, "serve", "--db", url, "--port", str(port), "--no-worker"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def measure_pages(
    base: str, data: Generated, requests: int, seconds: float
) -> dict[str, tuple[float, float]]:
    """(p50, p95) in ms per page, each page requested ``requests`` times after three unmeasured, or as
    many times as fit in ``seconds`` (at least MIN_REQUESTS)."""
    today = datetime.now(UTC).date()
    fill = {
        "project": data.project_ids[1],  # a USD project: an eighth of the milestones
        "dispute": data.open_dispute_ids[0] if data.open_dispute_ids else "",
        "month_start": today.replace(day=1).isoformat(),
        "today": today.isoformat(),
    }
    results: dict[str, tuple[float, float]] = {}
    with httpx.Client(base_url=base, timeout=120) as http:
        tokens = {}
        for role, email in data.emails.items():
            signed_in = http.post("/v1/tokens", json={"email": email, "password": PASSWORD})
            signed_in.raise_for_status()
            tokens[role] = signed_in.json()["token"]
        for page in PAGES:
            if "{dispute}" in page.path and not fill["dispute"]:
                continue
            path = page.path.format(**fill)
            headers = {"Authorization": f"Bearer {tokens[page.viewer]}"}
            cookies = {SESSION_COOKIE: tokens[page.viewer]}
            times: list[float] = []
            deadline = time.monotonic() + seconds
            for attempt in range(3 + requests):
                started = time.perf_counter()
                response = http.get(path, headers=headers, cookies=cookies)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise SystemExit(f"{page.name}: {path} answered {response.status_code}")
                if attempt >= 3:
                    times.append(elapsed * 1000)
                if len(times) >= MIN_REQUESTS and time.monotonic() > deadline:
                    break  # a slow page: enough to tell how slow
            quantiles = statistics.quantiles(times, n=20, method="inclusive")
            results[page.name] = (statistics.median(times), quantiles[18])
    return results


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="milepost-growth-") as directory:
        yield f"sqlite:///{directory}/growth.db"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A database of this run's own, under a name nobody else uses; dropped afterwards (only it)."""
    name = f"milepost_growth_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # fails, rather than reuse, if the name is taken
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class App:
    """A version of the app to measure: its name in the report, and the ``src`` directory it runs from
    (None: the ``milepost`` this interpreter imports)."""

    name: str
    src: str | None

    @classmethod
    def parse(cls, value: str) -> App:
        name, _, src = value.partition("=")
        if not src:
            raise argparse.ArgumentTypeError("give NAME=SRC_DIR, e.g. before=../main/src")
        return cls(name, str(Path(src).resolve()))

    def environment(self) -> dict[str, str]:
        if self.src is None:
            return dict(os.environ)
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([self.src, os.environ.get("PYTHONPATH", "")]),
        }

    def upgrade(self, url: str) -> None:
        """Bring the schema to this version's head (its own migrations)."""
        subprocess.run(
            [MILEPOST, "db", "upgrade", "--db", url],
            env=self.environment(),
            check=True,
            capture_output=True,
        )


Results = dict[str, dict[int, dict[str, tuple[float, float]]]]  # app -> size -> page -> (p50, p95)


def run_size(
    backend: str,
    url: str,
    size: int,
    apps: list[App],
    requests: int,
    seconds: float,
    results: Results,
) -> None:
    """Generate ``size`` milestones once, then measure each app on them, oldest first (each brings the
    schema to its own head before it starts: indexes a newer version adds are there only for it)."""
    apps[0].upgrade(url)
    started = time.perf_counter()
    data = generate(url, size)
    generated = time.perf_counter() - started
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(data.statuses.items()))
    print(
        f"{backend}: {size:,} milestones generated in {generated:.1f} s "
        f"({data.postings:,} postings, {data.events:,} events; {statuses})",
        flush=True,
    )
    for app in apps:
        app.upgrade(url)
        if backend == "postgres":
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute("VACUUM ANALYZE")
        with (
            tempfile.TemporaryDirectory(prefix="milepost-growth-files-") as workdir,
            server(url, Path(workdir), app.environment()) as base,
        ):
            results[app.name][size] = measure_pages(base, data, requests, seconds)


def report(
    backend: str, app: str, sizes: list[int], results: dict[int, dict[str, tuple[float, float]]]
) -> None:
    first, last = sizes[0], sizes[-1]
    width = max(len(page.name) for page in PAGES)
    head = "".join(f"{f'{size:,}':>18}" for size in sizes)
    print(f"\n{backend}, {app}: p50 / p95 in ms per page, by milestones of the client")
    print(f"{'page':<{width}}{head}   p95 {last:,}/{first:,}")
    for page in PAGES:
        if page.name not in results[first]:
            continue
        cells = "".join(
            f"{results[size][page.name][0]:>8.1f} /{results[size][page.name][1]:>7.1f}"
            for size in sizes
        )
        ratio = results[last][page.name][1] / results[first][page.name][1]
        print(f"{page.name:<{width}}{cells}   {ratio:>5.2f}x")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument(
        "--requests",
        type=int,
        help="measured requests per page (default 100; 20 when every size is under 10,000: a quick "
        "check that the pages answer, not a measurement)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10,
        help=f"time per page: a slower page gets fewer requests (at least {MIN_REQUESTS})",
    )
    parser.add_argument(
        "--app",
        dest="apps",
        type=App.parse,
        action="append",
        metavar="NAME=SRC_DIR",
        help="measure this version of the app (repeat: oldest first, each on the same data)",
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get(
            "MILEPOST_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    options = parser.parse_args()
    sizes = sorted(options.sizes)
    requests = options.requests or (100 if sizes[-1] >= 10_000 else 20)
    apps: list[App] = options.apps or [App("this checkout", None)]
    for backend in options.backends:
        results: Results = {app.name: {} for app in apps}
        for size in sizes:
            database = (
                sqlite_database()
                if backend == "sqlite"
                else postgres_database(options.postgres_admin_url)
            )
            with database as url:
                run_size(backend, url, size, apps, requests, options.seconds, results)
        for app in apps:
            report(backend, app.name, sizes, results[app.name])


if __name__ == "__main__":
    main()
