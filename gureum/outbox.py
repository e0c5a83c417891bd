"""The outbox: work handed to the conductor only after its transaction commits.

An API request that starts work (boot, delete, a server action, a move) writes
the instance's new task_state *and* an outbox row in one transaction. Only when
that transaction has committed is the conductor told (``dispatch_outbox`` with
the row ids). Whoever deletes a row owns its work, so the same work never runs
twice; a row whose message was lost (a failed send, a conductor that was busy
restarting) is found by the conductor's sweep a moment later. Nothing is sent
for a transaction that rolled back, and nothing committed is lost.

The message carries only row ids: the work itself (method and arguments) lives
in the database, the one source of truth.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gureum.bus import Transport
from gureum.db.base import Base, utcnow
from gureum.db.engine import OUTBOX_KEY

log = logging.getLogger("gureum.outbox")

# The conductor methods an outbox row may name (ConductorEndpoint's).
METHODS = frozenset({
    "build_instances", "delete_instance", "run_action", "snapshot", "shelve", "unshelve",
    "rebuild", "begin_workflow", "finish_resize", "attach_volume", "detach_volume",
    "swap_volume", "volume_work", "interface_work", "host_operation",
})



class OutboxMessage(Base):
    """One piece of work for the conductor, written with the change that asks for it."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    method: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


def add(s: Session, method: str, args: dict[str, Any]) -> int:
    """Write a row in the caller's transaction; it is announced once that commits."""
    if method not in METHODS:
        raise ValueError(f"{method!r} is not a conductor method the outbox hands over")
    row = OutboxMessage(method=method, args=args, created_at=utcnow())
    s.add(row)
    s.flush()
    s.info.setdefault(OUTBOX_KEY, []).append(row.id)
    return row.id


def take(s: Session, message_id: int) -> tuple[str, dict[str, Any]] | None:
    """Claim a row: the one whose DELETE removed it owns the work; None if gone."""
    row = s.get(OutboxMessage, message_id)
    if row is None:
        return None
    method, args = row.method, dict(row.args or {})
    result = s.execute(delete(OutboxMessage).where(OutboxMessage.id == message_id)
                       .execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return method, args


def due(s: Session, older_than: float, limit: int = 100) -> list[int]:
    """Rows nobody took within ``older_than`` seconds: their message was lost."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than)
    return list(s.scalars(select(OutboxMessage.id).where(OutboxMessage.created_at <= cutoff)
                          .order_by(OutboxMessage.id).limit(limit)))


def pending(s: Session) -> list[int]:
    return list(s.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))


class Announcer:
    """Tells the conductor which rows a transaction wrote, once it committed.

    Fire and forget: a send that fails is only logged, because the conductor's
    sweep finds the rows anyway (``due``). Called from the thread that committed.
    """

    def __init__(self, bus: Transport) -> None:
        self.bus = bus
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def __call__(self, ids: list[int]) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return  # the sweep finds them

        def send() -> None:
            task = asyncio.ensure_future(self.bus.cast("conductor", "dispatch_outbox",
                                                       {"ids": ids}))
            task.add_done_callback(_log_lost)
        try:
            loop.call_soon_threadsafe(send)
        except RuntimeError:  # the loop is shutting down
            pass


def _log_lost(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("hand-over to the conductor not sent (%s); its sweep will find it",
                    task.exception())
