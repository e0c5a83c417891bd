"""`gureum doctor`: find the rows that disagree with each other, and repair them (S5).

A cloud's tables say the same thing twice in places: a server's host and its ports'
bindings, a binding and what its host's agent plugs, a volume's attachments and its
server's block device mappings. An upgrade, a crash in the middle of a move or a
hand-written UPDATE can leave the two disagreeing; the guest then loses its network
(or its disk) at its next stop/start, long after the cause.

Each check reads the database (the same one the running cloud uses) and returns
``Finding``s: what is wrong, and what ``--fix`` will do about it. A fix runs in its
own write transaction that first locks the server row (the row every workflow
changes with a compare-and-swap), checks the port again, and repairs with the same
code the services use (a binding is recomputed from its host's agent by
``network.bindings``, never copied). Servers with a task or a move in progress are
left alone: their rows are legitimately in between, and the workflow that owns them
finishes or rolls back on its own. A second run after ``--fix`` finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gureum.db import Database, Session


@dataclass(frozen=True)
class Finding:
    """One disagreement: ``kind`` is a stable code for scripts, ``subject`` names the
    row (``port <id>``), ``problem`` says what is wrong, ``action`` what --fix does
    (or what the operator should do, when ``fix`` is None)."""

    kind: str
    subject: str
    problem: str
    action: str
    fix: Callable[[Session], bool] | None = field(default=None, compare=False, repr=False)
    # Findings with the same key share one repair (a port's every problem at once).
    key: str = ""
    # How long the row has been like this (seconds; stuck work only).
    age: float | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        shown = {"kind": self.kind, "subject": self.subject, "problem": self.problem,
                 "action": self.action, "fixable": self.fix is not None}
        if self.age is not None:
            shown["age_seconds"] = round(self.age)
        return shown


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    # Servers skipped because a task or a move is in progress.
    busy: list[str] = field(default_factory=list)
    checked_ports: int = 0
    checked_volumes: int = 0


# Work in progress for longer than this (seconds) is reported as stuck.
STUCK_AFTER = 600.0


def examine(db: Database, stuck_after: float = STUCK_AFTER) -> Report:
    """Every check, in one read transaction."""
    from gureum.doctor import ports, stuck, volumes

    report = Report()
    with db.session(write=False) as s:
        ports.check(s, report)
        volumes.check(s, report)
        stuck.check(s, report, stuck_after)
    return report


def repair(db: Database, report: Report) -> list[tuple[Finding, bool | str]]:
    """Run each fixable finding's repair in its own transaction. Returns (finding,
    True when repaired / False when it no longer applied / an error message)."""
    done: list[tuple[Finding, bool | str]] = []
    outcome: dict[str, bool | str] = {}
    for finding in report.findings:
        if finding.fix is None:
            continue
        key = finding.key or finding.subject
        if key not in outcome:
            try:
                with db.session() as s:
                    outcome[key] = finding.fix(s)
            except Exception as exc:  # one bad row does not stop the others
                outcome[key] = f"{type(exc).__name__}: {exc}"
        done.append((finding, outcome[key]))
    return done
