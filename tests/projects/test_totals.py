"""A project's kept totals (``ProjectTotals``): filled by the migration from the milestones already
there, and caught by ``ledger verify`` when they no longer match them. (That every change of a milestone
keeps them is checked after every test that moves money, by the same verify, and on the project page in
tests/web/views/test_project.py; races in tests/test_concurrency.py.)"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from milepost.kit.db import Database
from milepost.projects.models import ProjectTotals
from tests.ledger.test_macs import _alembic
from tests.ledger.test_verify import busy, run_sql
from tests.world import World


def kept(db: Database) -> dict[str, tuple[int, int, int]]:
    with db.read_only() as session:
        return {
            row.project_id: (row.planned_amount, row.in_escrow_amount, row.released_amount)
            for row in session.scalars(select(ProjectTotals))
        }


def test_the_migration_fills_the_totals_of_existing_projects(
    world: World, db: Database, db_url: str
) -> None:
    b = busy(world)
    empty = world.project(b.client)
    before = kept(db)
    # 100,000 + 50,000 + 10,000 planned; nothing left in escrow; 100,000 released in full and 20,005
    # of the split dispute.
    assert before == {b.released.project_id: (160_000, 0, 120_005), empty.id: (0, 0, 0)}
    db.engine.dispose()
    _alembic(db_url, "downgrade", "0017")
    try:
        _alembic(db_url, "upgrade", "head")
    finally:
        db.engine.dispose()
    assert kept(db) == before
    assert world.verify().ok


@pytest.mark.tampers
def test_a_missing_or_changed_totals_row_is_caught(world: World, db: Database) -> None:
    b = busy(world)
    project_id = b.released.project_id
    empty = world.project(b.client)
    run_sql(
        db,
        "UPDATE project_totals SET planned_amount = planned_amount + 1 WHERE project_id = :id",
        id=project_id,
    )
    run_sql(db, "DELETE FROM project_totals WHERE project_id = :id", id=empty.id)

    assert sorted(world.verify().problems) == sorted(
        [
            f"project {project_id}: its totals say 160001 planned, 0 in escrow and 120005 "
            "released, but its milestones add up to 160000, 0 and 120005",
            f"project {empty.id} has no totals row",
        ]
    )
