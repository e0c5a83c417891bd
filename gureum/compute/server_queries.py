"""Finding servers for GET /servers and /servers/detail, and the state of their hosts.

The handler turns the query string into a ``ServerQuery`` (which filters the
caller named, at the caller's microversion); this module decides what they
mean: whose servers a caller sees (its project's; an admin any project, or all
with ``all_tenants``), which filters an admin alone may use, how a status
(ACTIVE, VERIFY_RESIZE, …) maps to vm_state and task_state, and the sort order,
made total by the instance's sequence number so that keyset pages never skip
or repeat a server.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, or_, select, true
from sqlalchemy.orm import Session

from gureum.compute import states, zones
from gureum.compute.listing import MAX_LIMIT, page
from gureum.compute.models import ComputeService, Instance
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.errors import InvalidInput
from gureum.paging import SortKey
from gureum.scheduler.select import COMPUTE_BINARY

SORT_KEYS = {"created_at": Instance.created_at, "display_name": Instance.name,
             "updated_at": Instance.updated_at, "uuid": Instance.id, "host": Instance.host,
             "node": Instance.node, "vm_state": Instance.vm_state,
             "task_state": Instance.task_state, "power_state": Instance.power_state,
             "launched_at": Instance.launched_at, "terminated_at": Instance.terminated_at,
             "launch_index": Instance.launch_index, "key_name": Instance.key_name,
             "project_id": Instance.project_id, "user_id": Instance.user_id,
             "availability_zone": Instance.availability_zone,
             "hostname": Instance.hostname, "display_description": Instance.description,
             "locked": Instance.locked}

# Filters by equality; the admin's alone are ignored for anyone else, as Nova does.
EXACT = {"flavor": Instance.flavor_id, "image": Instance.image_ref,
         "reservation_id": Instance.reservation_id, "key_name": Instance.key_name,
         "user_id": Instance.user_id, "availability_zone": Instance.availability_zone,
         "vm_state": Instance.vm_state, "task_state": Instance.task_state,
         "power_state": Instance.power_state, "host": Instance.host, "node": Instance.node,
         "launch_index": Instance.launch_index}
ADMIN_ONLY = frozenset({"host", "node", "launch_index"})
PATTERNS = ("name", "description", "hostname")  # regular expressions, matched in Python


@dataclass
class ServerQuery:
    all_tenants: bool = False
    project_id: str | None = None
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None
    deleted: bool | None = None  # admin only
    status: str | None = None
    exact: dict[str, str] = field(default_factory=dict)
    locked: bool | None = None
    ip: str | None = None
    patterns: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    sort_keys: list[str] = field(default_factory=list)
    sort_dirs: list[str] = field(default_factory=list)
    limit: int = MAX_LIMIT
    marker: str | None = None


def list_servers(s: Session, ctx: RequestContext, q: ServerQuery) -> list[Instance]:
    """One page of the servers ctx may see that match q.

    The marker need not pass the filters (Nova finds it by id alone); paging goes
    on from its place in the sort order.
    """
    if q.changes_since and q.changes_before and q.changes_since > q.changes_before:
        raise InvalidInput("The value of changes-since must be less than or equal to "
                           "changes-before.", field="changes-since")
    stmt = _filtered(s, ctx, q)
    keep = _python_filters(q)
    where = [Instance.id == q.marker]
    if not ctx.is_admin:
        where.append(Instance.project_id == ctx.project_id)
    return page(s, stmt, sort_keys(q.sort_keys, q.sort_dirs), q.limit, q.marker, *where,
                not_found="marker [{marker}] not found", keep=keep)


def _filtered(s: Session, ctx: RequestContext, q: ServerQuery) -> Select[Any]:
    stmt = select(Instance)
    if not ctx.is_admin:
        stmt = stmt.where(Instance.project_id == ctx.project_id)
    elif q.project_id:
        stmt = stmt.where(Instance.project_id == q.project_id)
    elif not q.all_tenants:
        stmt = stmt.where(Instance.project_id == ctx.project_id)
    deleted = q.deleted if ctx.is_admin else None
    if deleted is not None:
        stmt = stmt.where(Instance.deleted.is_(deleted))
    elif q.changes_since is None and q.changes_before is None:
        stmt = stmt.where(Instance.deleted.is_(False))
    if q.changes_since is not None:
        stmt = stmt.where(Instance.updated_at >= q.changes_since)
    if q.changes_before is not None:
        stmt = stmt.where(Instance.updated_at <= q.changes_before)
    if q.status:
        stmt = stmt.where(status_condition(q.status))
    for name, value in q.exact.items():
        if name in ADMIN_ONLY and not ctx.is_admin:
            continue
        if name == "image":
            value = value.rstrip("/").rsplit("/", 1)[-1]
        stmt = stmt.where(EXACT[name] == value)
    if q.locked is not None:
        stmt = stmt.where(Instance.locked.is_(q.locked))
    if q.ip:
        from gureum.network import service as netsvc

        stmt = stmt.where(Instance.id.in_(list(netsvc.instance_ids_with_ip(s, q.ip))))
    return stmt


def status_condition(status: str) -> Any:
    """The WHERE clause of a Nova status (ACTIVE, REBOOT, VERIFY_RESIZE, DELETED…)."""
    conds: list[Any] = []
    for m in states.status_matches(status.upper()):
        parts: list[Any] = []
        if m.task_states:
            parts.append(Instance.task_state.in_(m.task_states))
        if m.default:
            own = states.own_status_tasks(m.vm_state)
            parts.append(or_(Instance.task_state.is_(None), Instance.task_state.not_in(own))
                         if own else true())
        conds.append(and_(Instance.vm_state == m.vm_state, or_(*parts)))
    if status.upper() == "DELETED":
        conds.append(Instance.deleted.is_(True))
    return or_(*conds) if conds else False


def _python_filters(q: ServerQuery) -> Callable[[Instance], bool] | None:
    """Regular expressions and tags: checked on the rows, as Nova does."""
    checks = []
    for name in PATTERNS:
        pattern = q.patterns.get(name)
        if pattern:
            try:
                checks.append((name, re.compile(pattern)))
            except re.error:
                raise InvalidInput(f"Invalid regular expression for {name}: {pattern!r}",
                                   field=name) from None
    tag_all, tag_any = set(q.tags), set(q.tags_any)
    not_all, not_any = set(q.not_tags), set(q.not_tags_any)
    if not (checks or tag_all or tag_any or not_all or not_any):
        return None

    def keep(inst: Instance) -> bool:
        for attr, rx in checks:
            if not rx.search(getattr(inst, attr) or ""):
                return False
        tags = set(inst.tags or [])
        if tag_all and not tag_all <= tags:
            return False
        if tag_any and not tag_any & tags:
            return False
        if not_all and not_all <= tags:
            return False
        return not (not_any and not_any & tags)

    return keep


def sort_keys(keys: list[str], dirs: list[str]) -> list[SortKey]:
    """Nova's sort_key/sort_dir pairs (default: newest first), made total by seq."""
    out: list[SortKey] = []
    for i, key in enumerate(keys):
        column = SORT_KEYS.get(key)
        if column is None:
            raise InvalidInput(f"Invalid input for query parameters sort_key. Value: {key}.",
                               field="sort_key")
        direction = dirs[i] if i < len(dirs) else (dirs[0] if dirs else "desc")
        if direction not in ("asc", "desc"):
            raise InvalidInput(f"Invalid input for query parameters sort_dir. Value: "
                               f"{direction}.", field="sort_dir")
        out.append(SortKey(column, direction == "asc"))
    if not out:
        out.append(SortKey(Instance.created_at, ascending=False))
    out.append(SortKey(Instance.seq, ascending=False))  # unique: the order is total
    return out


def host_statuses(s: Session, hosts: set[str], settings: Settings) -> dict[str, str]:
    """2.16 host_status: UP, DOWN (forced), UNKNOWN (no heartbeat) or MAINTENANCE
    (disabled), per host."""
    if not hosts:
        return {}
    out = {}
    for svc in s.scalars(select(ComputeService).where(ComputeService.host.in_(hosts),
                                                      ComputeService.binary == COMPUTE_BINARY)):
        if svc.forced_down:
            out[svc.host] = "DOWN"
        elif not zones.is_up(svc, settings):
            out[svc.host] = "UNKNOWN"
        else:
            out[svc.host] = "MAINTENANCE" if svc.disabled else "UP"
    return out
