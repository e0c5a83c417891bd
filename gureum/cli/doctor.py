"""`gureum doctor [--fix] [--json]`: the report an operator reads (or a script parses).

Exit codes: 0 clean (or everything repaired), 1 findings remain, 2 the database could
not be read (the message says what to do).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from gureum.config import Settings
from gureum.db import Database
from gureum.doctor import STUCK_AFTER, Finding, Report, examine, repair


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _line(f: Finding, outcome: str) -> str:
    since = f" (for {_age(f.age)})" if f.age is not None else ""
    return f"{f.kind}: {f.subject} {f.problem}{since}; {outcome}: {f.action}"


def _summary(report: Report) -> str:
    checked = (f"{report.checked_ports} server port(s) and {report.checked_volumes} "
               "attached volume(s) checked")
    busy = (f"; {len(report.busy)} server(s) with a task or move in progress were left "
            "alone (run again once they finish)" if report.busy else "")
    # Said every time: --fix never takes work from a conductor that may be on it.
    return (checked + busy + "; work a live conductor holds (unexpired leases, outbox "
            "rows, NIC operations, migrations) is never touched")


def _result(outcome: bool | str) -> str:
    if outcome is True:
        return "repaired"
    return "nothing to do any more" if outcome is False else f"failed ({outcome})"


def doctor(settings: Settings, *, fix: bool, as_json: bool, out: Any = None,
           stuck_after: float = STUCK_AFTER) -> int:
    out = out or sys.stdout
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).exists():
        # Opening it would make an empty one: say where we looked instead.
        print(f"gureum doctor: there is no database at {url.database}: give the data "
              "directory (--data-dir), --config or --database-url that `gureum up` uses",
              file=sys.stderr)
        return 2
    db = Database(settings.database_url)
    try:
        problem = _schema_problem(db)
        if problem:
            print(f"gureum doctor: {problem}", file=sys.stderr)
            return 2
        report = examine(db, stuck_after)
        repaired = repair(db, report) if fix else []
        after = examine(db, stuck_after) if fix else report
    except SQLAlchemyError as exc:
        shown = url.render_as_string(hide_password=True)
        print(f"gureum doctor: cannot read the database {shown}: {exc.__class__.__name__}: "
              f"{str(exc).splitlines()[0]}. Check that the database runs and that "
              "[database] url (or --database-url, --config) names the one `gureum up` "
              "uses.", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    if as_json:
        json.dump({
            "clean": not after.findings,
            "findings": [f.as_dict() for f in report.findings],
            "repaired": [dict(f.as_dict(), result=_result(o)) for f, o in repaired],
            "remaining": [f.as_dict() for f in after.findings] if fix else None,
            "busy_servers": after.busy,
            "checked": {"server_ports": after.checked_ports,
                        "attached_volumes": after.checked_volumes},
        }, out, indent=2)
        out.write("\n")
        return 1 if after.findings else 0
    if not fix:
        for f in report.findings:
            print(_line(f, "--fix will" if f.fix else "to do"), file=out)
    else:
        outcome = {id(f): o for f, o in repaired}
        for f in report.findings:
            print(_line(f, _result(outcome[id(f)]) if id(f) in outcome else "to do"),
                  file=out)
        for f in after.findings:
            if f not in report.findings:  # appeared meanwhile (the cloud runs)
                print(_line(f, "--fix will" if f.fix else "to do"), file=out)
    if not after.findings:
        fixed = f"repaired {len(report.findings)} finding(s); " if report.findings else ""
        print(f"gureum doctor: {fixed}no problems found ({_summary(after)})", file=out)
        return 0
    fixable = sum(1 for f in after.findings if f.fix)
    hint = (f", {fixable} of them repairable: run `gureum doctor --fix`" if fixable and not fix
            else "")
    print(f"gureum doctor: {len(after.findings)} problem(s){hint} ({_summary(after)})",
          file=out)
    return 1


def _schema_problem(db: Database) -> str | None:
    from gureum.db.migrate import current, head

    have, want = current(db), head()
    if have == want:
        return None
    if have is None:
        return ("the database has no gureum schema: is this the database `gureum up` uses? "
                "(check [database] url, --database-url or --data-dir)")
    return (f"the database schema is at revision {have}, this gureum expects {want}: run "
            "`gureum manage db upgrade` (or start the upgraded cloud once) first; if the "
            "database is the newer one, run the gureum that upgraded it")
