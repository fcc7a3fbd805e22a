"""A hand-built history between one client and one freelancer, at known moments, for the records tests.

All on a USD project, platform fee 10 % (the world's settings). Day 0 is 2030-03-01 09:00 UTC.

milestone amount   what happened                                                        fee    net
m1        100_000  fund_by 03-05; funded d1, submitted d2, approved d3: released        10_000 90_000
m2         50_000  funded d1; the freelancer cancels d2: refunded                       -      -
m3         80_000  funded d1, submitted d2; client disputes d4; staff 20_000/60_000 d5  2_000  18_000
m4         40_000  fund_by 03-03; funded late d5 (03-06), submitted d6, approved d7     4_000  36_000
m5         10_000  a draft the client cancels on d1                                     -      -
m6         30_000  funded d1, submitted d2, approved d17 (14-day review period: late)   3_000  27_000
m8         60_000  funded d1, submitted d2; freelancer disputes d3, offers 30_000; d4   3_000  27_000
m9         20_000  fund_by 03-02, still a draft                                         -      -
m10        25_000  funded d1, submitted d18, waiting for review                         -      -
bonus      10_000  paid on d1                                                           1_000  9_000
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from milepost.disputes import service as disputes
from milepost.feedback import service as feedback
from milepost.milestones import service as milestones
from milepost.projects import service as projects
from milepost.projects.models import Project
from milepost.users.models import User
from tests.world import World

DAY0 = datetime(2030, 3, 1, 9, tzinfo=UTC)


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


@dataclass
class History:
    client: User
    freelancer: User
    staff: User
    project: Project
    ids: dict[str, str]


def build(world: World) -> History:
    client, freelancer, project = world.parties(wallet=1_000_000)
    staff = world.user("staff", staff=True)
    ids: dict[str, str] = {}

    def create(name: str, amount: int, **terms: object) -> str:
        milestone = world.act(
            client,
            milestones.create_milestone,
            project.id,
            title=name,
            amount=amount,
            acceptance_criteria=["It works"],
            now=day(0),
            **terms,
        )
        ids[name] = milestone.id
        return str(milestone.id)

    def fund(milestone_id: str, when: float) -> None:
        world.act(client, milestones.fund, milestone_id, now=day(when))

    def submit(milestone_id: str, when: float) -> None:
        world.act(freelancer, milestones.submit, milestone_id, note="Done", now=day(when))

    def approve(milestone_id: str, when: float) -> None:
        world.act(client, milestones.approve, milestone_id, now=day(when))

    m1 = create("m1", 100_000, fund_by=date(2030, 3, 5))
    fund(m1, 1)
    submit(m1, 2)
    approve(m1, 3)

    m2 = create("m2", 50_000)
    fund(m2, 1)
    world.act(freelancer, milestones.cancel, m2, reason="Cannot do it", now=day(2))

    m3 = create("m3", 80_000)
    fund(m3, 1)
    submit(m3, 2)
    dispute3 = world.act(client, disputes.open_dispute, m3, reason="Broken", now=day(4))
    world.act(
        staff, disputes.resolve, dispute3.id, to_freelancer=20_000, to_client=60_000, now=day(5)
    )

    m4 = create("m4", 40_000, fund_by=date(2030, 3, 3))
    fund(m4, 5)
    submit(m4, 6)
    approve(m4, 7)

    m5 = create("m5", 10_000)
    world.act(client, milestones.cancel, m5, now=day(1))

    m6 = create("m6", 30_000)
    fund(m6, 1)
    submit(m6, 2)
    approve(m6, 17)

    m8 = create("m8", 60_000)
    fund(m8, 1)
    submit(m8, 2)
    dispute8 = world.act(freelancer, disputes.open_dispute, m8, reason="Unpaid", now=day(3))
    offer = world.act(
        freelancer, disputes.make_offer, dispute8.id, to_freelancer=30_000, now=day(3)
    )
    world.act(client, disputes.accept_offer, dispute8.id, offer.id, now=day(4))

    create("m9", 20_000, fund_by=date(2030, 3, 2))

    m10 = create("m10", 25_000)
    fund(m10, 1)
    submit(m10, 18)

    world.act(client, projects.create_bonus, project.id, amount=10_000, now=day(1))

    world.act(client, feedback.leave_feedback, m1, rating=5, now=day(8))
    world.act(client, feedback.leave_feedback, m3, rating=2, now=day(8))
    world.act(freelancer, feedback.leave_feedback, m1, rating=4, now=day(8))
    return History(client, freelancer, staff, project, ids)
