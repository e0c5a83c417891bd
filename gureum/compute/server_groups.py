"""Server groups: sets of servers the scheduler keeps on one host or on different ones.

A group belongs to a project (404 for anyone else but admins); the project's
``server_groups`` quota bounds how many it has (the members are bounded at
boot, compute/servers.py). Its members are the non-deleted servers booted into
it, oldest first. The caller owns the session and has checked the policy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gureum.compute.models import Instance, ServerGroup
from gureum.compute.quotas import limits_for
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.db.locks import lock_project_quotas
from gureum.errors import Forbidden, NotFound


def members_of(s: Session, group_ids: list[str]) -> dict[str, list[str]]:
    """group id → ids of its members that are not deleted."""
    out: dict[str, list[str]] = {g: [] for g in group_ids}
    if group_ids:
        for iid, gid in s.execute(select(Instance.id, Instance.server_group_id).where(
                Instance.server_group_id.in_(group_ids), Instance.deleted.is_(False))
                .order_by(Instance.created_at, Instance.seq)):
            out.setdefault(gid or "", []).append(iid)
    return out


def visible(s: Session, ctx: RequestContext, group_id: str) -> ServerGroup:
    group = s.get(ServerGroup, group_id)
    if group is None or (not ctx.is_admin and group.project_id != ctx.project_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    return group


def list_groups(s: Session, ctx: RequestContext, all_projects: bool, offset: int,
                limit: int) -> list[ServerGroup]:
    """The caller's project's groups (every project's with all_projects), oldest first."""
    stmt = select(ServerGroup).order_by(ServerGroup.created_at, ServerGroup.id)
    if not all_projects:
        stmt = stmt.where(ServerGroup.project_id == ctx.project_id)
    return list(s.scalars(stmt.offset(offset).limit(limit)))


def create(s: Session, ctx: RequestContext, name: str, policy: str, rules: dict[str, Any],
           settings: Settings) -> ServerGroup:
    assert ctx.project_id is not None
    limit = limits_for(s, ctx.project_id, settings).get("server_groups", -1)
    if limit >= 0:
        lock_project_quotas(s, ctx.project_id)
    count = s.scalar(select(func.count(ServerGroup.id)).where(
        ServerGroup.project_id == ctx.project_id)) or 0
    if 0 <= limit <= count:
        raise Forbidden("Quota exceeded, too many server groups.")
    group = ServerGroup(name=name, project_id=ctx.project_id, user_id=ctx.user_id,
                        policy=policy, rules=rules)
    s.add(group)
    s.flush()
    return group


def delete(s: Session, group: ServerGroup) -> None:
    s.delete(group)
