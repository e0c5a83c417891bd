"""Snapshot (createImage), shelve/unshelve and rebuild: actions that touch images.

Each runs from the task_state the API set and ends with a compare-and-swap;
a failure clears the task_state and records the fault, as every action does.
The snapshot is written by the host's driver into the image store's staging
area and committed by the conductor through the image service (one machine
for now; distributed agents will upload over the Image API).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from gureum.agent import messages as msg
from gureum.agent import rpc as agent_rpc
from gureum.bus import BusError, RemoteError, Transport
from gureum.compute import instances, states
from gureum.compute.guests import bind_network, guest_spec, shutdown_timeout, unbind_network
from gureum.compute.instances import StateConflict
from gureum.compute.models import Instance
from gureum.config import Settings
from gureum.context import RequestContext
from gureum.db import Database, utcnow
from gureum.errors import GureumError
from gureum.scheduler import claims
from gureum.scheduler.requests import request_spec
from gureum.scheduler.select import NoValidHost, select_and_claim

log = logging.getLogger("gureum.conductor.lifecycle")

R = TypeVar("R")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def superseded_ok(fn: F) -> F:
    """An action whose instance was reset or deleted meanwhile stops; theirs stands."""
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except StateConflict as lost:
            log.warning("%s superseded: %s", fn.__name__, lost.message)
            return None
    return wrapper  # type: ignore[return-value]


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


class LifecycleRunner:
    def __init__(self, settings: Settings, db: Database, bus: Transport) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus

    async def _driver(self, host: str, message: msg.Message[R], *,
                      rpc_timeout: float | None = None) -> R:
        """One typed driver operation on a host's agent."""
        return await agent_rpc.call(self.bus, host, message,
                                    rpc_timeout or self.settings.compute.rpc_timeout)

    def _with(self, fn: Any) -> Any:
        def _do() -> Any:
            with self.db.session() as s:
                return fn(s)
        return asyncio.to_thread(_do)

    def _load(self, s: Session, instance_id: str, task_state: str) -> Instance | None:
        inst = s.get(Instance, instance_id)
        if inst is None or inst.deleted or inst.task_state != task_state:
            return None
        s.expunge(inst)
        return inst

    async def _fail(self, instance_id: str, task_state: str, request_id: str, event: str,
                    message: str, vm_state: str | None = None) -> None:
        def failed(s: Session) -> None:
            values: dict[str, Any] = {"task_state": None}
            if vm_state:
                values["vm_state"] = vm_state
            instances.save(s, instance_id, values, expected_task_state=task_state)
            instances.set_fault(s, instance_id, message, 500, message)
            instances.event_finish(s, instance_id, request_id, event, "Error",
                                   details=message)
            instances.finish_action(s, instance_id, request_id)
        await self._with(failed)

    # -- snapshot ----------------------------------------------------------------------
    async def _snapshot_to(self, inst: Instance, image_id: str) -> None:
        from gureum.image.data import upload
        from gureum.image.store import ImageStore

        store = ImageStore(self.settings.image_store_dir)
        target = store.path(image_id, staging=True).with_suffix(".snapshot")
        target.parent.mkdir(parents=True, exist_ok=True)
        assert inst.host is not None
        await self._driver(inst.host, msg.Snapshot(inst.id, target_path=str(target)))
        ctx = RequestContext(user_id=inst.user_id, project_id=inst.project_id,
                             roles=frozenset({"admin", "member", "reader"}))
        try:
            await asyncio.to_thread(upload, self.db, store, ctx, image_id, _chunks(target),
                                    None, 0)
        finally:
            if target.exists():
                os.unlink(target)

    @superseded_ok
    async def snapshot(self, instance_id: str, image_id: str, request_id: str,
                       backup: dict[str, Any] | None = None) -> None:
        event = "compute_backup_instance" if backup else "compute_snapshot_instance"
        inst = await self._with(lambda s: self._load(s, instance_id, states.IMAGE_SNAPSHOT))
        if inst is None:
            return
        await self._with(lambda s: instances.event_start(s, instance_id, request_id, event,
                                                         inst.host))
        try:
            await self._snapshot_to(inst, image_id)
        except (RemoteError, BusError, GureumError) as exc:
            await self._delete_image(image_id)
            await self._fail(instance_id, states.IMAGE_SNAPSHOT, request_id, event,
                             f"Snapshot failed: {_msg(exc)}")
            return

        def done(s: Session) -> None:
            instances.save(s, instance_id, {"task_state": None},
                           expected_task_state=states.IMAGE_SNAPSHOT)
            instances.event_finish(s, instance_id, request_id, event, host=inst.host)
            instances.finish_action(s, instance_id, request_id)
        await self._with(done)
        if backup:
            for old in await self._with(lambda s: self._expired_backups(
                    s, instance_id, backup["type"], int(backup["rotation"]))):
                await self._delete_image(old)

    def _expired_backups(self, s: Session, instance_id: str, backup_type: str,
                         rotation: int) -> list[str]:
        """Backups of this server and type beyond the newest ``rotation`` ones."""
        from sqlalchemy import select

        from gureum.image import models as im

        def prop(name: str, value: str) -> Any:
            return im.Image.id.in_(select(im.ImageProperty.image_id).where(
                im.ImageProperty.name == name, im.ImageProperty.value == value))

        rows = s.scalars(select(im.Image.id).where(
            prop("instance_uuid", instance_id), prop("image_type", "backup"),
            prop("backup_type", backup_type), im.Image.status == "active")
            .order_by(im.Image.created_at.desc(), im.Image.id.desc())).all()
        return list(rows[rotation:])

    async def _delete_image(self, image_id: str) -> None:
        from gureum.image import models as im
        from gureum.image.store import ImageStore

        def drop(s: Session) -> None:
            row = s.get(im.Image, image_id)
            if row is not None:
                s.delete(row)
        await self._with(drop)
        ImageStore(self.settings.image_store_dir).delete(image_id)

    # -- shelve / unshelve --------------------------------------------------------------
    @superseded_ok
    async def shelve(self, instance_id: str, image_id: str, request_id: str) -> None:
        event = "compute_shelve_instance"
        inst = await self._with(lambda s: self._load(s, instance_id, states.SHELVING))
        if inst is None:
            return
        assert inst.host is not None
        await self._with(lambda s: instances.event_start(s, instance_id, request_id, event,
                                                         inst.host))
        try:
            timeout = shutdown_timeout(inst, self.settings)
            result = await self._driver(
                inst.host, msg.PowerOff(
                    inst.id, timeout=timeout,
                    retry_interval=self.settings.compute.shutdown_retry_interval),
                rpc_timeout=timeout + self.settings.compute.rpc_timeout)
            if not result.clean:
                await self._with(lambda s: instances.event_finish(  # S1: forcing is recorded
                    s, instance_id, request_id, "compute_power_off_forced", host=inst.host,
                    details=f"The guest did not shut down within {timeout:.0f}s of ACPI "
                            "power-down requests; it was forced off."))
            await self._with(lambda s: instances.save(s, instance_id, {
                "task_state": states.SHELVING_IMAGE_UPLOADING,
                "power_state": states.SHUTDOWN}, expected_task_state=states.SHELVING))
            await self._snapshot_to(inst, image_id)
            # Offload at once (Nova's shelved_offload_time = 0): free the host.
            await self._driver(inst.host, msg.Destroy(inst.id))
        except (RemoteError, BusError, GureumError) as exc:
            await self._delete_image(image_id)
            await self._with(lambda s: instances.save(s, instance_id, {
                "task_state": states.SHELVING},
                expected_task_state=(states.SHELVING, states.SHELVING_IMAGE_UPLOADING)))
            await self._fail(instance_id, states.SHELVING, request_id, event,
                             f"Shelve failed: {_msg(exc)}")
            return

        def offloaded(s: Session) -> None:
            claims.release(s, instance_id)
            unbind_network(s, instance_id)
            row = s.get(Instance, instance_id)
            sysmeta = dict(row.system_metadata or {}) if row is not None else {}
            sysmeta["shelved_image_id"] = image_id
            sysmeta["shelved_at"] = utcnow().isoformat()
            instances.save(s, instance_id, {
                "vm_state": states.SHELVED_OFFLOADED, "task_state": None,
                "power_state": states.SHUTDOWN, "host": None, "node": None,
                "system_metadata": sysmeta},
                expected_task_state=states.SHELVING_IMAGE_UPLOADING)
            instances.event_finish(s, instance_id, request_id, event, host=inst.host)
            instances.finish_action(s, instance_id, request_id)
        await self._with(offloaded)

    @superseded_ok
    async def unshelve(self, instance_id: str, request_id: str, az: str | None,
                       host: str | None) -> None:
        event = "compute_unshelve_instance"

        def place(s: Session) -> tuple[str, str | None, Any] | str:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted or inst.task_state != states.UNSHELVING:
                return "gone"
            spec = request_spec(s, inst, requested_host=host,
                                availability_zone=az if az else True)
            try:
                chosen = select_and_claim(s, spec, self.settings.compute)
            except NoValidHost as exc:
                return exc.message
            sysmeta = inst.system_metadata or {}
            instances.save(s, inst.id, {"host": chosen.host, "node": chosen.node,
                                        "availability_zone": chosen.availability_zone,
                                        "task_state": states.SPAWNING},
                           expected_task_state=states.UNSHELVING)
            s.refresh(inst)
            gs = guest_spec(inst)
            snap = sysmeta.get("shelved_image_id")
            if snap:
                gs = type(gs).from_dict({**gs.to_dict(), "image_id": snap})
            return chosen.host, snap, gs
        placed = await self._with(place)
        if placed == "gone":
            return
        if isinstance(placed, str):
            await self._fail(instance_id, states.UNSHELVING, request_id, event, placed,
                             vm_state=states.SHELVED_OFFLOADED)
            return
        chosen_host, snap, gs = placed
        try:
            await self._driver(chosen_host, msg.Spawn(gs))
        except (RemoteError, BusError) as exc:
            def undo(s: Session) -> None:
                claims.release(s, instance_id)
                instances.save(s, instance_id, {"host": None, "node": None,
                                                "task_state": states.UNSHELVING},
                               expected_task_state=states.SPAWNING)
            await self._with(undo)
            await self._fail(instance_id, states.UNSHELVING, request_id, event,
                             f"Unshelve failed on {chosen_host}: {_msg(exc)}",
                             vm_state=states.SHELVED_OFFLOADED)
            return

        def active(s: Session) -> None:
            inst = s.get(Instance, instance_id)
            assert inst is not None
            sysmeta = {k: v for k, v in (inst.system_metadata or {}).items()
                       if k not in ("shelved_image_id", "shelved_at")}
            instances.save(s, instance_id, {
                "vm_state": states.ACTIVE, "task_state": None, "power_state": states.RUNNING,
                "system_metadata": sysmeta}, expected_task_state=states.SPAWNING)
            bind_network(s, instance_id, chosen_host)
            instances.event_finish(s, instance_id, request_id, event, host=chosen_host)
            instances.finish_action(s, instance_id, request_id)
        await self._with(active)
        if snap:
            await self._delete_image(snap)

    # -- rebuild ---------------------------------------------------------------------------
    @superseded_ok
    async def rebuild(self, instance_id: str, request_id: str) -> None:
        event = "compute_rebuild_instance"
        inst = await self._with(lambda s: self._load(s, instance_id, states.REBUILDING))
        if inst is None:
            return
        if not inst.host:
            await self._fail(instance_id, states.REBUILDING, request_id, event,
                             "The server has no host to rebuild on.")
            return
        try:
            await self._driver(inst.host, msg.Destroy(inst.id))
            await self._with(lambda s: instances.save(s, instance_id, {
                "task_state": states.REBUILD_SPAWNING}, expected_task_state=states.REBUILDING))
            await self._driver(inst.host, msg.Spawn(guest_spec(inst)))
        except (RemoteError, BusError) as exc:
            await self._with(lambda s: instances.save(s, instance_id, {
                "task_state": states.REBUILDING},
                expected_task_state=(states.REBUILDING, states.REBUILD_SPAWNING)))
            await self._fail(instance_id, states.REBUILDING, request_id, event,
                             f"Rebuild failed: {_msg(exc)}", vm_state=states.ERROR)
            return

        def done(s: Session) -> None:
            instances.save(s, instance_id, {"vm_state": states.ACTIVE, "task_state": None,
                                            "power_state": states.RUNNING, "fault": None,
                                            "launched_at": utcnow()},
                           expected_task_state=states.REBUILD_SPAWNING)
            instances.event_finish(s, instance_id, request_id, event, host=inst.host)
            instances.finish_action(s, instance_id, request_id)
        await self._with(done)


def _msg(exc: BaseException) -> str:
    if isinstance(exc, RemoteError):
        return exc.remote_message
    if isinstance(exc, GureumError):
        return exc.message
    return str(exc)
