"""ARCHITECTURE.md's layer rules: agents and virt drivers never touch the database, and
compute's HTTP handlers hold no SQL (the compute services do)."""

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


# Compute's handlers parse, check policy and render; the rules and every query live in
# the compute services (issue 7). What a handler may not do, seen in its source:
HANDLERS = PACKAGE / "compute" / "api"
NO_SQL_IMPORTS = ("sqlalchemy", "gureum.outbox", "gureum.paging")
DB_NAMES_ALLOWED = {"gureum.db", "gureum.db.Session", "gureum.db.utcnow"}  # a type, a clock
# Session methods: on any receiver when the name is SQLAlchemy's alone, on a session
# variable (s, session) when the name is also a dict's or a set's.
SQL_METHODS = {"scalar", "scalars", "execute", "flush", "refresh", "expire_all", "expire",
               "begin_nested", "query", "merge", "commit", "rollback"}
SESSION_METHODS = {"get", "add", "add_all", "delete"}
SESSION_NAMES = {"s", "session"}


def sql_in_handler(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for name in imports_of(path):
        if any(name == f or name.startswith(f + ".") for f in NO_SQL_IMPORTS):
            found.append(f"imports {name}")
        elif name.endswith(".models") or ".models." in name:
            found.append(f"imports {name} (models are the services')")
        elif name.startswith("gureum.db") and name not in DB_NAMES_ALLOWED:
            found.append(f"imports {name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("db", "session"):
            found.append(f"line {node.lineno}: .{node.attr} (sessions come from the route)")
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, node.func.value
        if method in SQL_METHODS or (method in SESSION_METHODS and isinstance(receiver, ast.Name)
                                     and receiver.id in SESSION_NAMES):
            found.append(f"line {node.lineno}: .{method}()")
    return found


def test_compute_handlers_hold_no_sql() -> None:
    violations = []
    checked = 0
    for path in sorted(HANDLERS.rglob("*.py")):
        checked += 1
        violations += [f"{path.relative_to(PACKAGE.parent)}: {v}" for v in sql_in_handler(path)]
    assert checked >= 20, "no compute handler modules found"
    assert not violations, "\n".join(violations)


def test_the_no_sql_check_sees_what_it_forbids(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text(
        "from sqlalchemy import select\n"
        "from gureum import outbox\n"
        "from gureum.compute.models import Instance\n"
        "from gureum.db import compare_and_swap\n"
        "def h(req, s):\n"
        "    with req.app_state.db.session() as t:\n"
        "        t.scalar(select(Instance))\n"
        "    s.add(Instance())\n"
        "    s.get(Instance, 1)\n"
        "    outbox.add(s, 'x', {})\n"
        "    return {}.get('key')\n")
    found = set(sql_in_handler(handler))
    expected = {"imports sqlalchemy", "imports gureum.outbox",
                "imports gureum.compute.models (models are the services')",
                "imports gureum.db.compare_and_swap",
                "line 6: .db (sessions come from the route)",
                "line 6: .session (sessions come from the route)",
                "line 7: .scalar()", "line 8: .add()", "line 9: .get()"}
    assert expected <= found, expected - found
    assert not [f for f in found if f.startswith("line 11")]  # a dict's get is no SQL


def test_every_compute_policy_rule_a_handler_names_exists() -> None:
    from gureum.compute.policy import RULES

    unknown = []
    for path in sorted(HANDLERS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and
                    node.value.startswith(("os_compute_api:", "compute:"))):
                continue
            # A whole rule, or the fixed start of one built with an f-string.
            if node.value not in RULES and not any(r.startswith(node.value) for r in RULES):
                unknown.append(f"{path.name}: {node.value}")
    assert not unknown, unknown
