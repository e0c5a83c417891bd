"""Plugging and unplugging a server's volumes on its host (the conductor's half of
os-volume_attachments; the rules and the rows are compute/volumes.py).

Each call is three short steps: read the mapping and the host (and, attaching,
get the volume's connection info for that host), ask the host's agent
(``attach_volume`` / ``detach_volume`` / ``swap_volume``, idempotent in the virt
contract), then record the outcome: success makes the volume in-use (or available again),
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
EV_SWAP = "compute_swap_volume"
_IN_FLIGHT = {"attaching": "attach", "detaching": "detach", "swapping": "swap"}


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

    async def swap(self, instance_id: str, volume_id: str, request_id: str) -> bool:
        """Nova's swap volume: the host copies the disk of ``volume_id`` onto the swap's
        target volume and switches the guest to it; then the rows are merged (or, when
        the host fails, both volumes go back to where they were)."""
        def prepare(s: Any) -> tuple[str | None, dict[str, Any] | None] | None:
            inst = s.get(Instance, instance_id)
            b = vols.mapping(s, instance_id, volume_id)
            target = vols.swap_target(s, instance_id)
            if b is None or b.status != "swapping":
                return None  # done already, or rolled back
            if inst is None or inst.deleted or target is None:
                vols.undo_swap(s, b, target)
                return None
            instances.event_start(s, instance_id, request_id, EV_SWAP, inst.host)
            return inst.host, vols.connect(s, target, inst.host)

        try:
            prepared = await self._in_tx(prepare)
        except Exception as exc:  # e.g. the new volume has no data: roll back, say why
            log.exception("swapping %s of %s failed", volume_id, instance_id)
            reason = str(exc)
            await self._in_tx(lambda s: self._swap_failed(s, instance_id, volume_id,
                                                          request_id, None, reason))
            return False
        if prepared is None:
            return False
        host, info = prepared
        if host and info is not None:
            try:
                await agent_rpc.call(self.bus, host, msg.SwapVolume(instance_id, volume_id,
                                                                    info),
                                     self._swap_timeout())
            except (RemoteError, BusError) as exc:
                reason = exc.remote_message if isinstance(exc, RemoteError) else exc.message
                await self._in_tx(lambda s: self._swap_failed(s, instance_id, volume_id,
                                                              request_id, host, reason))
                return False

        def done(s: Any) -> bool:
            b = vols.mapping(s, instance_id, volume_id)
            target = vols.swap_target(s, instance_id)
            if b is None or b.status != "swapping" or target is None:
                return False
            vols.finish_swap(s, b, target, host)
            instances.event_finish(s, instance_id, request_id, EV_SWAP, host=host)
            instances.finish_action(s, instance_id, request_id)
            return True
        ok: bool = await self._in_tx(done)
        return ok

    def _swap_failed(self, s: Any, instance_id: str, volume_id: str, request_id: str,
                     host: str | None, reason: str) -> None:
        b = vols.mapping(s, instance_id, volume_id)
        if b is not None and b.status == "swapping":
            vols.undo_swap(s, b, vols.swap_target(s, instance_id))
        log.warning("swapping volume %s of %s failed: %s", volume_id, instance_id, reason)
        instances.event_finish(s, instance_id, request_id, EV_SWAP, "Error", host=host,
                               details=f"Swapping volume {volume_id} failed: {reason}")
        instances.finish_action(s, instance_id, request_id)

    def _swap_timeout(self) -> float:
        # The host copies the whole disk (QEMU's mirror, up to its own timeout).
        return self.settings.compute.rpc_timeout + 600.0

    def _detach_timeout(self) -> float:
        # A guest's kernel takes a few seconds to release a PCIe disk (the QEMU driver
        # waits up to its own timeout); the call must outlast that.
        return self.settings.compute.rpc_timeout + 30.0

    # -- restart ---------------------------------------------------------------------
    def in_flight(self) -> list[tuple[str, str, str]]:
        """(kind, instance, volume) of every attach, detach or swap a restart
        interrupted."""
        from sqlalchemy import select

        with self.db.session(write=False) as s:
            return [(_IN_FLIGHT[b.status], b.instance_id, b.volume_id or "")
                    for b in s.scalars(select(BlockDeviceMapping).where(
                        BlockDeviceMapping.status.in_(tuple(_IN_FLIGHT)),
                        BlockDeviceMapping.volume_id.is_not(None)))]
