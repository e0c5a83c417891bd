"""A server's metadata and tags: changed atomically, in the states that allow it.

Metadata changes in the states the action table gives "update_metadata" (409
otherwise, and while locked), and the merged result may hold at most ``[quota]
metadata_items`` keys (403). Tags (2.26+) change in those vm_states whatever
the task, as Nova allows, and a locked server's tags still change. Each change
is a compare-and-swap on the server row, retried a few times, so two
concurrent requests never lose one another's keys or tags.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from gureum.compute import instances, states
from gureum.compute.models import Instance
from gureum.compute.quotas import check_metadata_items
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.db import compare_and_swap, utcnow
from gureum.errors import Conflict

ATTEMPTS = 5
MAX_TAGS = 50
MAX_TAG_LENGTH = 60


def _busy(server_id: str) -> Conflict:
    return Conflict(f"Instance {server_id} is being changed by other requests; try again.")


def metadata(s: Session, ctx: RequestContext, server_id: str) -> dict[str, str]:
    return dict(instances.visible(s, ctx, server_id).metadata_ or {})


def change_metadata(s: Session, ctx: RequestContext, server_id: str, verb: str,
                    mutate: Callable[[dict[str, str]], dict[str, str]],
                    settings: Settings) -> dict[str, str]:
    """Apply mutate to the server's metadata atomically; the new metadata. ``verb``
    ("update metadata", "delete metadata") names the change in a 409."""
    for _ in range(ATTEMPTS):
        inst = instances.visible(s, ctx, server_id)
        instances.check_not_locked(ctx, inst)
        try:
            states.check("update_metadata", inst.id, inst.vm_state, inst.task_state,
                         launched=inst.launched_at is not None)
        except states.ActionNotAllowed as err:
            raise Conflict(f"Cannot '{verb}' instance {inst.id} while it is in {err.attr} "
                           f"{err.state}") from None
        old = dict(inst.metadata_ or {})
        new = mutate(dict(old))
        if len(new) > len(old):
            check_metadata_items(s, inst.project_id, settings, len(new))
        expected = {"deleted": False, "vm_state": inst.vm_state,
                    "task_state": inst.task_state, "updated_at": inst.updated_at}
        if compare_and_swap(s, Instance, inst.id, expected,
                            {"metadata_": new, "updated_at": utcnow()}):
            s.expire_all()
            return new
        s.expire_all()  # somebody else changed the server first: read it again
    raise _busy(server_id)


def tags(s: Session, ctx: RequestContext, server_id: str) -> list[str]:
    return list(instances.visible(s, ctx, server_id).tags or [])


def change_tags(s: Session, ctx: RequestContext, server_id: str, verb: str,
                mutate: Callable[[list[str]], list[str]]) -> list[str]:
    """Apply mutate to the server's tags atomically; the new tags."""
    allowed = states.ACTIONS["update_metadata"].vm_states or frozenset()
    for _ in range(ATTEMPTS):
        inst = instances.visible(s, ctx, server_id)
        if inst.vm_state not in allowed:
            raise Conflict(f"Cannot '{verb}' instance {inst.id} while it is in vm_state "
                           f"{inst.vm_state}")
        new = mutate(list(inst.tags or []))
        expected = {"deleted": False, "updated_at": inst.updated_at}
        if compare_and_swap(s, Instance, inst.id, expected,
                            {"tags": new, "updated_at": utcnow()}):
            s.expire_all()
            return new
        s.expire_all()
    raise _busy(server_id)
