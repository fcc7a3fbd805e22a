"""The package layout's two rules, read from the source (``ast``, every import at any depth, including
inside functions and ``if TYPE_CHECKING:``):

- a domain package never imports the layers above it (the web app, the scheduler, notifications,
  webhooks): those subscribe to the domain's events through the subscriber registry (``milepost.events``
  or ``milepost.subscribers``), which is what the domain imports instead;
- no private name (``_x``) crosses a package boundary: ``from milepost.x.y import _z`` (or ``y._z`` on a
  module imported from another package) is allowed only inside package ``x`` itself. A rule another
  package needs is made public, or moved to where both can use it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import milepost

DOMAIN_PACKAGES = frozenset(
    {
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
    }
)
# The layers above the domain; a domain reaches them only through the subscriber registry.
UPPER_LAYERS = ("web", "schedule", "notifications", "webhooks")
REGISTRIES = frozenset({"milepost.events", "milepost.subscribers"})

SOURCE = Path(milepost.__file__).parent


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.detail}"


def module_name(root: Path, path: Path) -> str:
    """``root/x/y.py`` -> ``milepost.x.y``; ``root/x/__init__.py`` -> ``milepost.x``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """The top package a module belongs to: ``milepost.x.y`` -> ``x`` (``milepost.app`` -> ``app``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module an ``import from`` names, with relative imports resolved against ``module``."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str, str | None]]:
    """Every import in the module as (line, module imported from, name or None for ``import m``)."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, is_package)
            found += [(node.lineno, source, alias.name) for alias in node.names]
    return found


def _module_aliases(tree: ast.AST, root: str, own: str) -> dict[str, str]:
    """Local names bound to another package's modules (``import milepost.x.y as z``, ``from milepost.x
    import y``), for spotting ``z._private`` on them."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and package_of(alias.name) != own:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] != root:
                continue
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if package_of(target) != own:
                    aliases[alias.asname or alias.name] = target
    return aliases


def check_module(root: Path, path: Path) -> list[Violation]:
    """The violations of both rules in one source file of the package at ``root``."""
    module = module_name(root, path)
    own = package_of(module)
    shown = str(path.relative_to(root.parent))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    violations: list[Violation] = []
    for line, source, name in _imports(tree, module, is_package):
        targets = [source] if name is None else [source, f"{source}.{name}"]
        if source.split(".")[0] != root.name:
            continue
        imported = f"{source}.{name}" if name else source
        if own in DOMAIN_PACKAGES and not any(target in REGISTRIES for target in targets):
            for target in targets:
                if package_of(target) in UPPER_LAYERS and target.split(".")[0] == root.name:
                    violations.append(
                        Violation(
                            shown,
                            line,
                            "domain imports an upper layer",
                            f"{module} imports {imported} "
                            f"(reach {package_of(target)} through the subscriber registry)",
                        )
                    )
                    break
        other_package = package_of(source) != own
        private_parts = [part for part in imported.split(".")[1:] if _is_private(part)]
        if other_package and private_parts:
            violations.append(
                Violation(
                    shown,
                    line,
                    "private name imported across packages",
                    f"{module} imports {imported} (private to {package_of(source)})",
                )
            )
    aliases = _module_aliases(tree, root.name, own)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
        ):
            target = aliases[node.value.id]
            violations.append(
                Violation(
                    shown,
                    node.lineno,
                    "private name used across packages",
                    f"{module} uses {target}.{node.attr} (private to {package_of(target)})",
                )
            )
    return violations


def check_tree(root: Path) -> list[Violation]:
    """The violations in every module of the package at ``root`` (a directory named after it)."""
    found: list[Violation] = []
    for path in sorted(root.rglob("*.py")):
        found += check_module(root, path)
    return sorted(set(found))


def report(violations: list[Violation]) -> str:
    return f"{len(violations)} import(s) break the package layout:\n" + "\n".join(
        f"  {violation}" for violation in violations
    )


def test_the_package_layout_holds() -> None:
    violations = check_tree(SOURCE)
    assert not violations, report(violations)


# The checker itself, on a small package written for the purpose -----------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "milepost"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if not init.exists():
                init.write_text("")
        path.write_text(text)
    return root


def _found(root: Path) -> list[tuple[str, int, str]]:
    return [(violation.path, violation.line, violation.rule) for violation in check_tree(root)]


def test_the_checker_catches_a_domain_importing_an_upper_layer(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "audit/service.py": (
                "from milepost.notifications.service import notify\n"
                "def record():\n"
                "    from milepost.webhooks import service\n"
                "    import milepost.web.pages\n"
            ),
            "wallets/service.py": "from milepost import schedule\n",
            "notifications/service.py": "def notify(): ...\n",
            "webhooks/service.py": "",
            "web/pages.py": "",
            "schedule/__init__.py": "",
        },
    )
    layer = "domain imports an upper layer"
    assert _found(root) == [
        ("milepost/audit/service.py", 1, layer),
        ("milepost/audit/service.py", 3, layer),
        ("milepost/audit/service.py", 4, layer),
        ("milepost/wallets/service.py", 1, layer),
    ]
    message = report(check_tree(root))
    assert "milepost/audit/service.py:3: domain imports an upper layer" in message
    assert "milepost.audit.service imports milepost.webhooks.service" in message


def test_the_checker_allows_the_registry_and_the_upper_layers_own_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "audit/service.py": "from milepost.events import publish\nfrom milepost import events\n",
            "milestones/service.py": "from milepost.subscribers import subscribe\n",
            "events.py": "def publish(): ...\n",
            "subscribers.py": "def subscribe(): ...\n",
            # The upper layers may import the domain, and each other.
            "web/pages.py": "from milepost.milestones import service\nfrom milepost.schedule import x\n",
            "notifications/service.py": "from milepost.webhooks import service\n",
            # A domain's private names inside its own package are its own business.
            "projects/service.py": "from milepost.projects.rules import _next_position\n",
            "projects/rules.py": "from ._helpers import _x\nfrom . import _helpers\n_helpers._x\n",
            "projects/_helpers.py": "_x = 1\n",
            "kit/db.py": "from __future__ import annotations\nfrom sqlalchemy import _private\n",
        },
    )
    assert _found(root) == []


def test_the_checker_catches_private_names_across_packages(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "disputes/service.py": (
                "from milepost.milestones.service import _authorize, transition\n"
                "from milepost.milestones import service as milestones\n"
                "def resolve():\n"
                "    return milestones._transition()\n"
            ),
            "milestones/service.py": "def _authorize(): ...\ndef _transition(): ...\n",
            "web/pages.py": "from ..projects.service import _next_position\n",
            "projects/service.py": "def _next_position(): ...\n",
            "app.py": "import milepost.kit._internal as internal\n",
            "kit/_internal.py": "",
        },
    )
    assert _found(root) == [
        ("milepost/app.py", 1, "private name imported across packages"),
        ("milepost/disputes/service.py", 1, "private name imported across packages"),
        ("milepost/disputes/service.py", 4, "private name used across packages"),
        ("milepost/web/pages.py", 1, "private name imported across packages"),
    ]
    message = report(check_tree(root))
    assert "milepost.disputes.service imports milepost.milestones.service._authorize" in message
    assert "milepost.web.pages imports milepost.projects.service._next_position" in message
