"""ARCHITECTURE.md's import rules, checked on every module of the package.

- Agents and virt drivers never touch the database (the agent reports over the
  bus and the conductor writes) nor the services' internals.
- Services never import the HTTP layer: only the HTTP layer itself (``gureum/api``,
  a family's ``api`` package or ``api*.py`` modules, its ``views``, which render
  wire shapes per microversion) and the composition roots (``gureum/cli``,
  ``gureum/cloud.py``) may import ``gureum.api``, Starlette or uvicorn.
- Workflows never import the conductor: the conductor runs workflows, so the
  other direction would make the two a cycle.
- Compute's HTTP handlers hold no SQL (the compute services do).

Every import statement counts, also one inside a function.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import gureum

PACKAGE = Path(gureum.__file__).parent


@dataclass(frozen=True)
class Rule:
    name: str
    applies: str  # "agent" (a top-level package) or "service" (not the HTTP layer)
    forbidden: tuple[str, ...]


HTTP = ("gureum.api", "starlette", "uvicorn")
RULES = (
    Rule("agents never touch the database", "agent",
         ("gureum.db", "sqlalchemy", "gureum.identity", "gureum.image",
          "gureum.compute.models", "gureum.api")),
    Rule("virt drivers never touch the database or the control plane", "virt",
         ("gureum.db", "sqlalchemy", "gureum.identity", "gureum.image", "gureum.agent",
          "gureum.conductor", "gureum.api", "gureum.compute.models")),
    Rule("network agents never touch the database", "netagent",
         ("gureum.db", "sqlalchemy", "gureum.api")),
    Rule("services never import the HTTP layer", "service", HTTP),
    Rule("workflows never import the conductor", "workflows", ("gureum.conductor",)),
)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` (a module of the package at ``root``) imports, relative
    imports resolved, with the names imported from it (``from a import b`` gives
    ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base: list[str] = []
            if node.level:
                package = module_name(root, path).split(".")
                if path.name != "__init__.py":
                    package.pop()
                base = package[:len(package) - node.level + 1]
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def is_http_layer(root: Path, path: Path) -> bool:
    parts = path.relative_to(root).with_suffix("").parts
    return (parts[0] in ("api", "cli", "cloud")
            or any(p in ("api", "views") for p in parts[:-1])
            or parts[-1] in ("api", "views") or parts[-1].startswith("api_"))


def applies(rule: Rule, root: Path, path: Path) -> bool:
    if rule.applies == "service":
        return not is_http_layer(root, path)
    return path.relative_to(root).parts[0] == rule.applies


def violations(root: Path) -> tuple[int, list[str]]:
    """(modules checked, "module imports name (rule)" for each broken rule)."""
    found: list[str] = []
    checked = 0
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        checked += 1
        names = imports_of(path, root)
        for rule in RULES:
            if not applies(rule, root, path):
                continue
            for name in sorted(names):
                if any(name == f or name.startswith(f + ".") for f in rule.forbidden):
                    found.append(f"{module_name(root, path)} imports {name} ({rule.name})")
    return checked, found


def test_every_module_keeps_the_import_rules() -> None:
    checked, found = violations(PACKAGE)
    assert checked > 150, "the package's modules were not found"
    assert not found, "\n".join(found)


def test_the_rules_cover_services_agents_and_workflows() -> None:
    def http(rel: str) -> bool:
        return is_http_layer(PACKAGE, PACKAGE / rel)

    assert http("api/web.py") and http("compute/api/servers.py")
    assert http("identity/api_auth.py") and http("compute/views/servers.py")
    assert http("cli/main.py") and http("cloud.py")
    assert not http("identity/auth.py") and not http("network/listing.py")
    assert not http("image/service.py") and not http("validation.py")


def test_a_broken_rule_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "gureum"
    files = {
        "__init__.py": "",
        "api/__init__.py": "",
        "api/web.py": "import starlette\n",
        "image/__init__.py": "",
        "image/service.py": "from gureum.api.web import Request\n",
        "image/api_data.py": "from gureum.api.web import Request\n",  # allowed
        "network/listing.py": "def f():\n    from ..api import web\n",
        "identity/auth.py": "from starlette.requests import Request\n",
        "workflows/resize.py": "from gureum.conductor import build\n",
        "agent/service.py": "import sqlalchemy.orm\n",
        "virt/fake.py": "from gureum.compute import models\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _, found = violations(root)
    assert found == [
        "gureum.agent.service imports sqlalchemy.orm (agents never touch the database)",
        "gureum.identity.auth imports starlette.requests (services never import the HTTP "
        "layer)",
        "gureum.identity.auth imports starlette.requests.Request (services never import the "
        "HTTP layer)",
        "gureum.image.service imports gureum.api.web (services never import the HTTP layer)",
        "gureum.image.service imports gureum.api.web.Request (services never import the "
        "HTTP layer)",
        "gureum.network.listing imports gureum.api (services never import the HTTP layer)",
        "gureum.network.listing imports gureum.api.web (services never import the HTTP "
        "layer)",
        "gureum.virt.fake imports gureum.compute.models (virt drivers never touch the "
        "database or the control plane)",
        "gureum.workflows.resize imports gureum.conductor (workflows never import the "
        "conductor)",
        "gureum.workflows.resize imports gureum.conductor.build (workflows never import the "
        "conductor)",
    ]


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
