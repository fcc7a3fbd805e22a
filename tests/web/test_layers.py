"""The web layer sits on top: its read models and form adapters use the domains, never the other way."""

from __future__ import annotations

import ast
from pathlib import Path

import milepost

SRC = Path(milepost.__file__).parent
DOMAINS = (
    "audit",
    "auth",
    "disputes",
    "feedback",
    "files",
    "ledger",
    "milestones",
    "projects",
    "receipts",
    "reputation",
    "review",
    "users",
    "wallets",
)


def _imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_domain_package_imports_the_web_layer() -> None:
    offending = [
        f"{path.relative_to(SRC)} imports {name}"
        for domain in DOMAINS
        for path in sorted((SRC / domain).rglob("*.py"))
        for name in sorted(_imported(path))
        if name == "milepost.web" or name.startswith("milepost.web.")
    ]
    assert offending == []


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
