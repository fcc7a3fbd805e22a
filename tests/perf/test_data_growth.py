"""bench/data_growth.py's generator writes a history that the ledger's own check accepts: every hash and
MAC, balance, escrow, fee, event chain, entry-event link and clearing account as the app would leave
them. The benchmark measures pages on this data, so it must stay data the app could have written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.data_growth import LEDGER_KEY, generate

from milepost.kit.db import Database
from milepost.milestones.state import MilestoneStatus as S

MILEPOST = str(Path(sys.executable).parent / "milepost")


def test_the_generated_history_verifies_with_its_macs(db: Database, db_url: str) -> None:
    data = generate(db_url, 200, chunk=64)  # several chunks: balances carried across them
    # Open and closed milestones of every common course (approved and changes requested last only a
    # few days each, so 200 milestones may have none in that state today).
    assert set(data.statuses) >= {
        S.DRAFT,
        S.FUNDED,
        S.SUBMITTED,
        S.DISPUTED,
        S.RELEASED,
        S.CANCELLED,
        S.RESOLVED,
    }
    assert sum(data.statuses.values()) == 200 and data.open_dispute_ids
    verified = subprocess.run(
        [MILEPOST, "ledger", "verify", "--db", db_url],
        env={**os.environ, "MILEPOST_LEDGER_KEY": LEDGER_KEY},
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "keyed MACs with ledger key 'bench'" in verified.stdout, verified.stdout
    assert verified.stdout.strip().endswith("ledger OK"), verified.stdout
