"""ARCHITECTURE.md's import rules: agents and virt drivers never touch the database."""

from __future__ import annotations

import ast
from pathlib import Path

import gureum

PACKAGE = Path(gureum.__file__).parent
FORBIDDEN = {
    "agent": ("gureum.db", "sqlalchemy", "gureum.identity", "gureum.image",
              "gureum.compute.models", "gureum.api"),
    "virt": ("gureum.db", "sqlalchemy", "gureum.identity", "gureum.image", "gureum.agent",
             "gureum.conductor", "gureum.api", "gureum.compute.models"),
    "netagent": ("gureum.db", "sqlalchemy", "gureum.api"),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_agents_and_drivers_do_not_import_the_database() -> None:
    violations = []
    checked = 0
    for package, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / package).rglob("*.py") if (PACKAGE / package).exists() else []:
            checked += 1
            for name in imports_of(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    violations.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert checked, "no agent or virt modules found"
    assert not violations, "\n".join(violations)
