"""Helpers shared by the compute API handlers: the caller, settings, query values, the bus.

Nothing here reads the database: handlers pass their session to the compute
services, and call an agent (``call_agent``) only after their transaction
(gureum/api/transaction.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from gureum.agent import rpc as agent_rpc
from gureum.agent.messages import Message
from gureum.api.web import Request
from gureum.compute import policy
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.errors import InvalidInput
from gureum.query import parse_bool

R = TypeVar("R")


def ctx_of(req: Request) -> RequestContext:
    """The caller; every compute call needs a project-scoped token."""
    return policy.scoped(req.context)


def settings_of(req: Request) -> Settings:
    settings: Settings = req.app_state.settings
    return settings


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
