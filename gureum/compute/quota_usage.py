"""What a project uses of its compute quotas, counted from the rows themselves.

Nothing is reserved ahead of time in gureum (quota checks count live rows), so
"reserved" is always 0. Key pairs belong to users, not projects: they are
counted for the calling user when the project asked about is the caller's own.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.compute.models import Instance, KeyPair, QuotaLimit, ServerGroup
from gureum.compute.quotas import RESOURCES, limits_for
from gureum.config import Settings
from gureum.errors import InvalidInput

# Network quotas Nova still shows before 2.36 (they live in the network service now).
LEGACY_NETWORK = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
ALL_RESOURCES = (*RESOURCES, *LEGACY_NETWORK)


def usage(s: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    used = {name: 0 for name in ALL_RESOURCES}
    for flavor in s.scalars(select(Instance.flavor).where(Instance.project_id == project_id,
                                                          Instance.deleted.is_(False))):
        used["instances"] += 1
        used["cores"] += int((flavor or {}).get("vcpus", 0))
        used["ram"] += int((flavor or {}).get("ram", 0))
    used["server_groups"] = s.scalar(select(func.count(ServerGroup.id)).where(
        ServerGroup.project_id == project_id)) or 0
    if user_id:
        used["key_pairs"] = s.scalar(select(func.count(KeyPair.id)).where(
            KeyPair.user_id == user_id)) or 0
    return used


def limits(s: Session, project_id: str, settings: Settings) -> dict[str, int]:
    """Every resource's hard limit for a project (-1: unlimited), legacy ones included."""
    out = {name: -1 for name in LEGACY_NETWORK}
    out.update(limits_for(s, project_id, settings))
    return out


def set_limit(s: Session, project_id: str, resource: str, value: int) -> None:
    row = s.get(QuotaLimit, (project_id, resource))
    if row is not None:
        row.hard_limit = value
        return
    try:
        with s.begin_nested():
            s.add(QuotaLimit(project_id=project_id, resource=resource, hard_limit=value))
    except IntegrityError:  # a concurrent update inserted it first: update theirs
        s.execute(update(QuotaLimit).where(QuotaLimit.project_id == project_id,
                                           QuotaLimit.resource == resource)
                  .values(hard_limit=value))


def clear(s: Session, project_id: str) -> None:
    for row in s.scalars(select(QuotaLimit).where(QuotaLimit.project_id == project_id)):
        s.delete(row)


def verify_project(s: Session, project_id: str) -> None:
    """Quotas are kept for projects that exist (Nova asks Keystone; 400 otherwise)."""
    from gureum.identity.models import Project

    if s.get(Project, project_id) is None:
        raise InvalidInput(f"Project ID {project_id} is not a valid project.",
                           field="project_id")


def set_limits(s: Session, project_id: str, values: dict[str, int], force: bool,
               user_id: str | None, settings: Settings) -> dict[str, int]:
    """Set a project's limits; a limit below what is already used is refused unless
    forced (-1 is unlimited). Every resource's hard limit afterwards."""
    verify_project(s, project_id)
    used = usage(s, project_id, user_id)
    for resource, value in values.items():
        minimum = used.get(resource, 0)
        if not force and value != -1 and value < minimum:
            raise InvalidInput(f"Quota limit {value} for {resource} must be greater than or "
                               f"equal to already used and reserved {minimum}.",
                               field=f"quota_set.{resource}")
        set_limit(s, project_id, resource, value)
    s.flush()
    return limits(s, project_id, settings)
