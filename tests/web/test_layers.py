"""The web layer sits on top: its read models and form adapters use the domains, never the other way."""

from __future__ import annotations

from pathlib import Path

import milepost

SRC = Path(milepost.__file__).parent
# That no domain package imports the web layer is checked with every other import rule in
# tests/test_architecture.py; this file keeps the moved modules from coming back.


def test_the_read_models_and_form_adapters_live_in_the_web_layer() -> None:
    for gone in (
        "milestones/views.py",
        "milestones/page_view.py",
        "projects/views.py",
        "projects/forms.py",
        "disputes/queue.py",
        "wallets/pending.py",
        "reputation/profile.py",
    ):
        assert not (SRC / gone).exists(), gone
