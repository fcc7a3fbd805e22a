"""Options shared by ``milepost``'s commands (cli.py and the command modules it gathers: ledger, backup)."""

from __future__ import annotations

from typing import Annotated

import typer

from milepost.kit.db import DEFAULT_DATABASE_URL

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (else MILEPOST_DATABASE_URL, from the environment or the configuration "
        f"file, else {DEFAULT_DATABASE_URL}).",
        show_default=False,
    ),
]
