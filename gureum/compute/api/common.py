"""Helpers shared by the compute API modules: context, visibility, paging, the bus."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from gureum.agent import rpc as agent_rpc
from gureum.agent.messages import Message
from gureum.api.web import Request
from gureum.compute import instances, policy
from gureum.compute.models import Instance
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.errors import Forbidden, InvalidInput
from gureum.query import parse_bool

R = TypeVar("R")


def ctx_of(req: Request) -> RequestContext:
    """The caller; every compute call needs a project-scoped token."""
    return policy.scoped(req.context)


def settings_of(req: Request) -> Settings:
    settings: Settings = req.app_state.settings
    return settings


def require_admin(ctx: RequestContext, rule: str) -> None:
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def require_manager(ctx: RequestContext, rule: str) -> None:
    """Nova's PROJECT_MANAGER_OR_ADMIN (the caller's token is scoped to the server's
    project: ``instance_for`` only finds other projects' servers for admins)."""
    if not ctx.is_manager:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def require_reader(ctx: RequestContext, rule: str) -> None:
    """Nova's PROJECT_READER_OR_ADMIN: reader, member or admin; another role alone is not."""
    if not ctx.can_read:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def require_writer(ctx: RequestContext, rule: str) -> None:
    if not ctx.can_write:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def instance_for(s: Session, ctx: RequestContext, instance_id: str) -> Instance:
    policy.authorize(ctx, "os_compute_api:servers:show")
    return instances.visible(s, ctx, instance_id)


check_not_locked = instances.check_not_locked


def run(req: Request, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
    """Run a coroutine on the server's event loop from a handler's worker thread."""
    assert req.loop is not None
    return asyncio.run_coroutine_threadsafe(coro, req.loop).result(timeout)


def call_agent(req: Request, host: str, message: Message[R],
               timeout: float | None = None) -> R:
    """One typed call to a host's compute agent (gureum/agent/messages.py)."""
    settings = settings_of(req)
    t = timeout or settings.compute.rpc_timeout
    result: R = run(req, agent_rpc.call(req.app_state.bus, host, message, t), t + 5)
    return result


def int_arg(req: Request, name: str, minimum: int = 0) -> int | None:
    value = req.arg(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"Invalid input for query parameters {name}. Value: {value}. "
                           f"'{value}' is not a 'integer'", field=name) from None
    if number < minimum:
        raise InvalidInput(f"Invalid input for query parameters {name}. Value: {value}. "
                           f"{value} is less than the minimum of {minimum}", field=name)
    return number


def bool_arg(req: Request, name: str) -> bool | None:
    value = req.arg(name)
    if value is None:
        return None
    if not value.strip():
        return True  # a bare flag (?all_tenants) is a true one, as with Nova
    parsed = parse_bool(value)
    if parsed is not None:
        return parsed
    raise InvalidInput(f"Invalid input for query parameters {name}. Value: {value}. "
                       f"'{value}' is not a 'boolean'", field=name)
