"""Who is notified of what, in the unit of work of the change; e-mail queued beside it when SMTP is on."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from milepost.audit import service as audit_service
from milepost.disputes import service as disputes
from milepost.events import EventAction, Notice
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.errors import InsufficientFunds
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.notifications import rules
from milepost.notifications.models import EmailStatus, Notification, OutgoingEmail
from milepost.notifications.render import render_message
from milepost.notifications.service import notify
from milepost.projects.models import Project
from milepost.users.models import User
from milepost.wallets import service as wallets
from tests.world import World

EVIDENCE = [{"type": "link", "url": "https://example.com/pr/1"}]


def notifications(db: Database, user: User) -> list[Notification]:
    with db.read_only() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.user_id == user.id)
                .order_by(Notification.id)
            )
        )


def kinds(db: Database, user: User) -> list[str]:
    return [item.kind for item in notifications(db, user)]


def emails(db: Database) -> list[OutgoingEmail]:
    with db.read_only() as session:
        return list(session.scalars(select(OutgoingEmail).order_by(OutgoingEmail.id)))


def test_each_step_notifies_the_other_party_and_never_the_actor(world: World) -> None:
    client, freelancer, project = world.parties()
    milestone = world.milestone(client, project, 200_000, title="Landing page")
    assert kinds(world.db, freelancer) == ["created"]

    world.act(client, milestones.fund, milestone.id)
    assert kinds(world.db, freelancer) == ["created", "funded"]
    funded = notifications(world.db, freelancer)[-1]
    assert funded.title == "“Landing page” is funded: $2,000.00 in escrow"
    assert "$2,000.00 is now held in escrow" in funded.body
    assert funded.milestone_id == milestone.id and funded.project_id == project.id
    assert funded.read_at is None and funded.data["amount"] == 200_000

    world.act(freelancer, milestones.submit, milestone.id, note="Done", evidence=EVIDENCE)
    assert kinds(world.db, client) == ["submitted"]

    world.act(freelancer, milestones.request_release, milestone.id)
    assert kinds(world.db, client) == ["submitted", "release_requested"]
    nudge = notifications(world.db, client)[-1]
    assert nudge.title == "Freelancer asks you to release “Landing page”"

    world.act(client, milestones.approve, milestone.id)
    assert kinds(world.db, freelancer) == ["created", "funded", "approved", "released"]
    released = notifications(world.db, freelancer)[-1]
    assert released.title == "$2,000.00 released for “Landing page”"
    # The fee (10%) is taken from the freelancer's side.
    assert "$1,800.00 is now in your available balance" in released.body
    assert "$200.00" in released.body

    # The client acted in every step they were not told of.
    assert kinds(world.db, client) == ["submitted", "release_requested"]
    # SMTP is not configured in this world: in-app only, nothing queued.
    assert emails(world.db) == []


def test_changes_cancellation_and_disputes_reach_the_right_party(world: World) -> None:
    client, freelancer, milestone = world.submitted(150_000)
    world.act(client, milestones.request_changes, milestone.id, reason="The logo is missing")
    changes = notifications(world.db, freelancer)[-1]
    assert changes.kind == "changes_requested" and "The logo is missing" in changes.body

    world.act(client, milestones.request_cancellation, milestone.id, reason="Budget cut")
    assert kinds(world.db, freelancer)[-1] == "cancellation_requested"
    world.act(freelancer, milestones.answer_cancellation, milestone.id, accept=False)
    assert kinds(world.db, client)[-1] == "cancellation_declined"

    dispute = world.act(freelancer, disputes.open_dispute, milestone.id, reason="Unpaid")
    assert kinds(world.db, client)[-1] == "dispute_opened"
    offer = world.act(client, disputes.make_offer, dispute.id, to_freelancer=50_000)
    offered = notifications(world.db, freelancer)[-1]
    assert offered.kind == "settlement_offered"
    assert "$500.00 to the freelancer and $1,000.00 back to the client" in offered.body
    world.act(freelancer, disputes.accept_offer, dispute.id, offer.id)
    resolved = notifications(world.db, client)[-1]
    assert resolved.kind == "dispute_resolved"
    assert "dispute_resolved" not in kinds(world.db, freelancer)  # they accepted: their own action


def test_staff_actions_notify_both_parties(world: World) -> None:
    client, freelancer, milestone = world.funded(100_000)
    staff = world.user("staff", staff=True)
    world.act(staff, milestones.cancel, milestone.id, reason="Fraud check")
    assert kinds(world.db, client) == ["cancelled"]
    assert kinds(world.db, freelancer)[-1] == "cancelled"
    assert notifications(world.db, staff) == []
    assert "$1,000.00 went back" in notifications(world.db, client)[0].body


def test_a_rolled_back_change_leaves_no_notification(world: World) -> None:
    client, freelancer, project = world.parties(wallet=0)
    milestone = world.milestone(client, project, 100_000)
    before = kinds(world.db, freelancer)
    with pytest.raises(InsufficientFunds):
        world.act(client, milestones.fund, milestone.id)
    assert kinds(world.db, freelancer) == before


def system_event(
    world: World, milestone_id: str, action: str, *, amount: int | None = None, **data: Any
) -> None:
    """Record an event as the time-driven work does: no actor, role ``system``."""

    def record(ctx: Context) -> None:
        milestone = ctx.session.get(Milestone, milestone_id)
        assert milestone is not None
        audit_service.record(
            ctx, milestone, EventAction(action), role="system", amount=amount, data=data
        )

    world.act(None, record)


def test_system_events_notify_their_recipients_and_escalation_mails_the_billing_contact(
    db: Database, mail_world: World
) -> None:
    world = mail_world
    client, freelancer = world.user("client"), world.user("freelancer")
    project = world.project(client, freelancer, billing_contact_email="billing@example.com")
    milestone = world.milestone(client, project, 300_000, title="API", fund_by="2026-01-10")
    queued = len(emails(db))

    system_event(
        world,
        milestone.id,
        "funding_reminder",
        days_overdue=3,
        fund_by="2026-01-10",
        amount_due=300_000,
    )
    reminder = notifications(db, client)[-1]
    assert reminder.title == "Please fund “API”: $3,000.00"
    assert "(3 days ago)" in reminder.body
    assert kinds(db, freelancer) == ["created"]

    system_event(
        world,
        milestone.id,
        "funding_escalated",
        days_overdue=10,
        billing_contact_email="billing@example.com",
    )
    assert kinds(db, client)[-1] == "funding_escalated"
    told = notifications(db, freelancer)[-1]
    assert told.kind == "funding_escalated" and "You may pause work" in told.body
    escalation = [e for e in emails(db)[queued:] if "overdue" in e.subject]
    assert sorted(e.to_address for e in escalation) == sorted(
        [client.email, freelancer.email, "billing@example.com"]
    )
    billing = next(e for e in escalation if e.to_address == "billing@example.com")
    assert billing.notification_id is None
    assert "billing contact" in billing.text_body

    system_event(world, milestone.id, "late_fee_accrued", amount=1_500, late_fee_amount=4_500)
    for user in (client, freelancer):
        fee = notifications(db, user)[-1]
        assert fee.title == "Late fee of $15.00 on “API”"
        assert "$45.00" in fee.body

    system_event(world, milestone.id, "dispute_overdue")
    assert kinds(db, client)[-1] == "late_fee_accrued"

    # An action outside the one list (milepost.events.EventAction) is refused, and nothing is written: it
    # could have no rule, template or webhook event type.
    before = kinds(db, client)
    with pytest.raises(ValueError, match="not a valid EventAction"):
        system_event(world, milestone.id, "something_new", amount=700)
    assert kinds(db, client) == before


def test_project_pause_and_resume_go_to_the_client(db: Database, mail_world: World) -> None:
    client, freelancer, project = mail_world.parties()

    def paused(ctx: Context) -> None:
        notify(
            ctx,
            "project_paused",
            user_ids=[client.id],
            project_id=project.id,
            data={"overdue_milestone_ids": []},
            key=f"paused:{project.id}",
        )

    mail_world.act(freelancer, paused)
    mail_world.act(freelancer, paused)  # the same occasion again: one e-mail only
    items = notifications(db, client)
    assert [item.kind for item in items] == ["project_paused", "project_paused"]
    assert items[0].title == "Work on “Website” is paused"
    assert items[0].body.startswith("Freelancer paused work on the project “Website”")
    assert [e.to_address for e in emails(db)] == [client.email]
    assert emails(db)[0].status is EmailStatus.PENDING
    assert "https://milepost.test/projects/" + project.id in emails(db)[0].text_body


def test_every_event_queues_one_email_per_recipient(db: Database, mail_world: World) -> None:
    _client, freelancer, milestone = mail_world.funded(200_000, title="Design")
    queued = emails(db)
    assert [(e.to_address, e.subject) for e in queued] == [
        (freelancer.email, "New milestone “Design” ($2,000.00)"),
        (freelancer.email, "“Design” is funded: $2,000.00 in escrow"),
    ]
    funded = queued[1]
    assert "$2,000.00" in funded.text_body and funded.text_body.startswith("Hello Freelancer,")
    assert f"https://milepost.test/milestones/{milestone.id}" in funded.text_body
    assert funded.html_body is not None and "&#8220;" not in funded.html_body
    assert "<p>Hello Freelancer,</p>" in funded.html_body
    assert funded.notification_id == notifications(db, freelancer)[-1].id


def test_wallet_news_reaches_the_owner_in_the_app_and_by_email(
    db: Database, mail_world: World
) -> None:
    """Staff saying no to a transfer (or sending it) is news for the wallet's owner alone, with the
    reason staff gave; the e-mail goes through the same templates and outbox as milestone news."""
    user, staff = mail_world.user("fran"), mail_world.user("staff", staff=True)
    deposit = mail_world.act(
        user, wallets.create_deposit, amount=120_000, currency="EUR", provider="manual"
    )
    mail_world.act(staff, wallets.reject_deposit, deposit.id, reason="No <b>such</b> transfer")
    mail_world.deposit(user, 50_000)
    account = mail_world.destination(user, iban="GB82 WEST 1234 5698 7654 32")
    payouts = [
        mail_world.act(
            user,
            wallets.create_payout,
            amount=amount,
            currency="USD",
            provider="manual",
            destination_id=account.id,
        )
        for amount in (20_000, 5_000)
    ]
    mail_world.act(staff, wallets.fail_payout, payouts[0].id, reason="Account closed")
    mail_world.act(staff, wallets.mark_payout_paid, payouts[1].id)

    items = notifications(db, user)
    assert [item.kind for item in items] == ["deposit_rejected", "payout_failed", "payout_paid"]
    assert kinds(db, staff) == []
    rejected, failed, paid = items
    assert rejected.title == "Your deposit of €1,200.00 was not received"
    assert "No <b>such</b> transfer" in rejected.body and deposit.reference in rejected.body
    assert failed.title == "Your payout of $200.00 failed; the money is back in your wallet"
    assert "Account closed" in failed.body and "GB82 •••• •••• 5432" in failed.body
    assert "$200.00 is back in your available balance" in failed.body
    assert paid.title == "Your payout of $50.00 is on its way"
    assert (rejected.milestone_id, rejected.project_id) == (None, None)

    queued = emails(db)
    assert [(e.to_address, e.subject) for e in queued] == [
        (user.email, rejected.title),
        (user.email, failed.title),
        (user.email, paid.title),
    ]
    assert "No <b>such</b> transfer" in queued[0].text_body
    assert queued[0].html_body is not None and "&lt;b&gt;such&lt;/b&gt;" in queued[0].html_body
    assert "1234 5698" not in queued[1].text_body  # never the whole account number


def test_html_escapes_what_users_wrote(db: Database, mail_world: World) -> None:
    client, _freelancer, milestone = mail_world.submitted(100_000)
    mail_world.act(client, milestones.request_changes, milestone.id, reason="<script>x</script>")
    mail = emails(db)[-1]
    assert "<script>" in mail.text_body
    assert mail.html_body is not None
    assert "<script>" not in mail.html_body and "&lt;script&gt;" in mail.html_body


def test_every_template_renders_for_every_recipient(world: World) -> None:
    _client, _freelancer, milestone = world.funded(123_456)
    with world.db.read_only() as session:
        loaded = session.get(Milestone, milestone.id)
        project = session.get(Project, milestone.project_id)
    data = {
        "amount": 1000,
        "to_freelancer": 1,
        "to_client": 2,
        "fee": 0,
        "days_overdue": 4,
        "days_left": 1,
        "fund_by": "2026-01-01",
        "amount_due": 5,
        "late_fee_amount": 5,
        "reason": "why",
    }
    for action in [
        *rules.RECIPIENTS,
        *Notice,
        "generic",
    ]:
        for role in ("client", "freelancer", "billing_contact"):
            for actor_role in ("client", "freelancer", "staff", "system"):
                message = render_message(
                    action,
                    {
                        "kind": action,
                        "milestone": loaded,
                        "project": project,
                        "data": data,
                        "amount": 1000,
                        "currency": "USD",
                        "actor_name": "Alice",
                        "actor_role": actor_role,
                        "recipient_name": "Bob",
                        "recipient_role": role,
                        "link": "https://milepost.test/x",
                    },
                )
                assert message.title and message.body, (action, role)
                assert "Undefined" not in message.title + message.body
                if action not in ("generic", "dispute_overdue"):
                    assert "Update on" not in message.title, f"{action} fell back to generic"


def test_unknown_template_names_fall_back_to_generic() -> None:
    message = render_message("../../etc/passwd", {"kind": "odd", "data": {}})
    assert message.title == "Update from Milepost" and message.body == "Odd."


def test_a_template_that_cannot_render_falls_back_to_generic() -> None:
    # funding_escalated adds two amounts of the milestone: without one, that template fails.
    message = render_message("funding_escalated", {"kind": "funding_escalated", "data": {}})
    assert message.title == "Update from Milepost"
    assert message.body == "Funding escalated."


def test_times_in_a_notification_are_on_the_recipients_clock(world: World) -> None:
    """The client in Tokyo reads the review deadline in JST, as the header of every page shows it."""
    client, freelancer, milestone = world.funded(100_000)
    with world.db.unit_of_work() as session:
        user = session.get(User, client.id)
        assert user is not None
        user.time_zone = "Asia/Tokyo"
    world.act(freelancer, milestones.submit, milestone.id, note="Done", evidence=EVIDENCE)
    due = world.get(milestone.id).review_due_at
    assert due is not None
    [delivered] = [n for n in notifications(world.db, client) if n.kind == "submitted"]
    tokyo = due.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M JST")
    assert tokyo in " ".join(delivered.body.split()), delivered.body
    assert "UTC" not in delivered.body
