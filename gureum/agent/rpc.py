"""Calling a compute agent: a typed message in, its typed result out.

The conductor's workflows and actions and the API's direct look-ups (console
output, migration controls) all reach an agent through these two functions, so
every call carries the protocol version and is checked by the agent before it
runs (``gureum/agent/messages.py``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from gureum.agent.messages import Message
from gureum.bus import Transport

TOPIC = "compute"
METHOD = "run"  # the agent endpoint's one method

R = TypeVar("R")


async def call(bus: Transport, host: str, message: Message[R], timeout: float) -> R:
    """Run ``message`` on ``host``'s agent and wait for its result."""
    raw: Any = await bus.call(TOPIC, METHOD, message.envelope(), server=host,
                              timeout=timeout)
    return message.result(raw)


async def cast(bus: Transport, host: str, message: Message[Any]) -> None:
    """Hand ``message`` to ``host``'s agent without waiting (its outcome is reported)."""
    await bus.cast(TOPIC, METHOD, message.envelope(), server=host)
