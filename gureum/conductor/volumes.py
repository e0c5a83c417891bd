"""Plugging and unplugging a server's volumes on its host (the conductor's half of
os-volume_attachments; the rules and the rows are compute/volumes.py).

Each call is three short steps: read the mapping and the host (and, attaching,
get the volume's connection info for that host), ask the host's agent
(``attach_volume`` / ``detach_volume``, idempotent in the virt contract), then
record the outcome: success makes the volume in-use (or available again),
failure rolls the volume and the mapping back. The instance action's event says
which (``openstack server event list``). A server without a host (shelved
offloaded) only changes rows: its next boot plugs what they say.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gureum.agent import messages as msg
from gureum.agent import rpc as agent_rpc
from gureum.bus import BusError, RemoteError, Transport
from gureum.compute import instances
from gureum.compute import volumes as vols
from gureum.compute.models import BlockDeviceMapping, Instance
from gureum.config import Settings
from gureum.db import Database

log = logging.getLogger("gureum.conductor.volumes")

EV_ATTACH = "compute_attach_volume"
EV_DETACH = "compute_detach_volume"


class VolumeRunner:
    def __init__(self, settings: Settings, db: Database, bus: Transport) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus

    def _in_tx(self, fn: Any) -> Any:
        def run() -> Any:
            with self.db.session() as s:
                return fn(s)
        return asyncio.to_thread(run)

    async def attach(self, instance_id: str, volume_id: str, request_id: str) -> bool:
        def prepare(s: Any) -> tuple[str | None, dict[str, Any] | None, str] | None:
            inst = s.get(Instance, instance_id)
            b = vols.mapping(s, instance_id, volume_id)
            if b is None or b.status != "attaching":
                return None  # done already, or rolled back
            if inst is None or inst.deleted:
                vols.undo_attach(s, b)
                return None
            instances.event_start(s, instance_id, request_id, EV_ATTACH, inst.host)
            return inst.host, vols.connect(s, b, inst.host), b.device_name or ""

        try:
            prepared = await self._in_tx(prepare)
        except Exception as exc:  # e.g. the volume has no data: roll back, say why
            log.exception("attaching %s to %s failed", volume_id, instance_id)
            reason = str(exc)
            await self._in_tx(lambda s: self._attach_failed(s, instance_id, volume_id,
                                                            request_id, None, reason))
            return False
        if prepared is None:
            return False
        host, info, device = prepared
        if host and info is not None:
            try:
                await agent_rpc.call(self.bus, host, msg.AttachVolume(instance_id, info, device),
                                     self.settings.compute.rpc_timeout)
            except (RemoteError, BusError) as exc:
                reason = exc.remote_message if isinstance(exc, RemoteError) else exc.message
                await self._in_tx(lambda s: self._attach_failed(s, instance_id, volume_id,
                                                                request_id, host, reason))
                return False

        def done(s: Any) -> bool:
            b = vols.mapping(s, instance_id, volume_id)
            if b is None:
                return False
            vols.mark_attached(s, b, host)
            instances.event_finish(s, instance_id, request_id, EV_ATTACH, host=host)
            instances.finish_action(s, instance_id, request_id)
            return True
        ok: bool = await self._in_tx(done)
        return ok

    def _attach_failed(self, s: Any, instance_id: str, volume_id: str, request_id: str,
                       host: str | None, reason: str) -> None:
        b = vols.mapping(s, instance_id, volume_id)
        if b is not None and b.status == "attaching":
            vols.undo_attach(s, b)
        log.warning("attaching volume %s to %s failed: %s", volume_id, instance_id, reason)
        instances.event_finish(s, instance_id, request_id, EV_ATTACH, "Error", host=host,
                               details=f"Attaching volume {volume_id} failed: {reason}")
        instances.finish_action(s, instance_id, request_id)

    async def detach(self, instance_id: str, volume_id: str, request_id: str) -> bool:
        def prepare(s: Any) -> tuple[str | None] | None:
            inst = s.get(Instance, instance_id)
            b = vols.mapping(s, instance_id, volume_id)
            if b is None or b.status != "detaching" or inst is None:
                return None
            instances.event_start(s, instance_id, request_id, EV_DETACH, inst.host)
            return (inst.host,)

        prepared = await self._in_tx(prepare)
        if prepared is None:
            return False
        host = prepared[0]
        if host:
            try:
                await agent_rpc.call(self.bus, host, msg.DetachVolume(instance_id, volume_id),
                                     self._detach_timeout())
            except (RemoteError, BusError) as exc:
                reason = exc.remote_message if isinstance(exc, RemoteError) else exc.message

                def failed(s: Any) -> None:
                    b = vols.mapping(s, instance_id, volume_id)
                    if b is not None and b.status == "detaching":
                        vols.undo_detach(s, b)
                    instances.event_finish(
                        s, instance_id, request_id, EV_DETACH, "Error", host=host,
                        details=f"Detaching volume {volume_id} failed: {reason}")
                    instances.finish_action(s, instance_id, request_id)
                await self._in_tx(failed)
                return False

        def done(s: Any) -> bool:
            b = vols.mapping(s, instance_id, volume_id)
            if b is None:
                return False
            vols.mark_detached(s, b)
            instances.event_finish(s, instance_id, request_id, EV_DETACH, host=host)
            instances.finish_action(s, instance_id, request_id)
            return True
        ok: bool = await self._in_tx(done)
        return ok

    def _detach_timeout(self) -> float:
        # A guest's kernel takes a few seconds to release a PCIe disk (the QEMU driver
        # waits up to its own timeout); the call must outlast that.
        return self.settings.compute.rpc_timeout + 30.0

    # -- restart ---------------------------------------------------------------------
    def in_flight(self) -> list[tuple[str, str, str]]:
        """(kind, instance, volume) of every attach or detach a restart interrupted."""
        from sqlalchemy import select

        with self.db.session(write=False) as s:
            return [("attach" if b.status == "attaching" else "detach", b.instance_id,
                     b.volume_id or "")
                    for b in s.scalars(select(BlockDeviceMapping).where(
                        BlockDeviceMapping.status.in_(("attaching", "detaching")),
                        BlockDeviceMapping.volume_id.is_not(None)))]
