"""The conductor's half of a server's NIC changes (the rows are compute/interfaces.py):
unplugging the NIC of a port deleted under a server (Neutron's network-vif-deleted),
and finishing an attach or detach whose caller died or got no answer.

Each run is three short steps: claim the row (a lease, so only one runs it) and read
what it needs, ask the host's agent (``attach_interface`` / ``detach_interface``,
idempotent in the virt contract), record the outcome. When the agent does not answer
(the host is down or restarting) the row waits and is tried again by the sweep; a
server that is gone, or has no host (shelved), needs nothing from an agent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gureum.agent import messages as msg
from gureum.agent import rpc as agent_rpc
from gureum.bus import BusError, RemoteError, Transport
from gureum.compute import interfaces as ifaces
from gureum.compute import states
from gureum.compute.models import Instance
from gureum.config import Settings
from gureum.db import Database
from gureum.network import service as netsvc

log = logging.getLogger("gureum.conductor.interfaces")

RETRY = 5.0  # seconds before a row whose host did not answer is tried again
REFUSED_RETRY = 60.0  # ... and one whose guest refused to let the NIC go
# A move or rebuild in progress: the guest may be on either host, or about to be
# defined again from the database; tried again once it settled.
_MOVING_TASKS = frozenset({
    states.SCHEDULING, states.BLOCK_DEVICE_MAPPING, states.NETWORKING, states.SPAWNING,
    states.RESIZE_PREP, states.RESIZE_MIGRATING, states.RESIZE_MIGRATED,
    states.RESIZE_FINISH, states.RESIZE_REVERTING, states.RESIZE_CONFIRMING,
    states.MIGRATING, states.REBUILDING, states.REBUILD_BLOCK_DEVICE_MAPPING,
    states.REBUILD_SPAWNING, states.SHELVING, states.SHELVING_OFFLOADING,
    states.UNSHELVING, states.RESCUING, states.UNRESCUING})

class InterfaceRunner:
    def __init__(self, settings: Settings, db: Database, bus: Transport,
                 name: str = "conductor") -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.name = name
        self.holder = ifaces.holder("conductor", name)  # whose leases this run holds
        self.api_here = False  # in one process with the API (gureum up)

    def rename(self, name: str) -> None:
        self.name = name
        self.holder = ifaces.holder("conductor", name)

    @property
    def stale(self) -> tuple[str, ...]:
        """Holders whose rows are this conductor's to take at its start: its own earlier
        runs, and (one process with the API) that API's."""
        return (f"conductor@{self.name}/",) + ((ifaces.API_PREFIX,) if self.api_here else ())

    def _in_tx(self, fn: Any) -> Any:
        def run() -> Any:
            with self.db.session() as s:
                return fn(s)
        return asyncio.to_thread(run)

    @property
    def timeout(self) -> float:
        # A guest's kernel takes a few seconds to release a PCIe device.
        return self.settings.compute.rpc_timeout + 30.0

    async def run(self, instance_id: str, port_id: str, resume: bool = False) -> bool:
        """Do what the row asks; True when its outcome was recorded. ``resume`` (at the
        conductor's start): rows this conductor held before are taken at once."""
        def prepare(s: Any) -> tuple[str, str | None, str, dict[str, Any] | None] | None:
            op = ifaces.operation(s, instance_id, port_id)
            if op is None or not ifaces.claim(s, op.id, self.timeout + 5, self.holder,
                                              self.stale if resume else ()):
                return None  # done already, or someone holds it
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted:
                ifaces.drop(s, instance_id, port_id)  # its ports went with it
                return None
            if inst.task_state in _MOVING_TASKS:
                ifaces.postpone(s, instance_id, port_id, RETRY)
                return None
            vif = None
            if op.kind == ifaces.ATTACH:
                vif = next((v for v in netsvc.network_info_for_instance(s, instance_id)
                            if v["port_id"] == port_id), None)
            return op.kind, inst.host, op.request_id, vif

        prepared = await self._in_tx(prepare)
        if prepared is None:
            return False
        kind, host, request_id, vif = prepared
        error: str | None = None
        if host and (kind != ifaces.ATTACH or vif is not None):
            message: msg.Message[None] = (msg.AttachInterface(instance_id, vif or {})
                                          if kind == ifaces.ATTACH else
                                          msg.DetachInterface(instance_id, port_id))
            try:
                await agent_rpc.call(self.bus, host, message, self.timeout)
            except RemoteError as exc:
                if exc.kind == "GuestNotFound" and kind != ifaces.ATTACH:
                    error = None  # no guest here: nothing plugged to take out
                else:
                    error = exc.remote_message
            except BusError as exc:
                log.warning("interface %s of %s on %s: %s (port %s); tried again in %ss",
                            kind, instance_id, host, exc.message, port_id, RETRY)
                await self._in_tx(lambda s: ifaces.postpone(s, instance_id, port_id, RETRY))
                return False
        elif kind == ifaces.ATTACH and vif is None:
            error = f"Port {port_id} is no longer the server's."

        def record(s: Any) -> None:
            if kind == ifaces.ATTACH:
                if error is None:
                    ifaces.attached(s, instance_id, port_id, request_id, host)
                else:
                    ifaces.attach_failed(s, instance_id, port_id, request_id, host, error,
                                         unknown=False)
            elif kind in (ifaces.DETACH, ifaces.ROLLBACK):
                if error is None:
                    ifaces.detached(s, instance_id, port_id,
                                    request_id if kind == ifaces.DETACH else "", host)
                elif kind == ifaces.DETACH:
                    ifaces.detach_failed(s, instance_id, port_id, request_id, host, error,
                                         unknown=False)
                else:  # the NIC could not be taken out: it stays, and its port with it
                    log.warning("rolling back the attach of port %s to %s failed: %s; "
                                "the NIC stays attached", port_id, instance_id, error)
                    ifaces.settled(s, instance_id, port_id)
            else:
                ifaces.unplugged(s, instance_id, port_id)

        if kind == ifaces.UNPLUG and error is not None:
            # The guest holds on to the NIC (suspended, or it did not release the
            # device): the port is gone, so the NIC must go too; tried again later.
            log.warning("unplugging deleted port %s from %s on %s failed: %s; tried "
                        "again in %ss", port_id, instance_id, host, error, REFUSED_RETRY)
            await self._in_tx(lambda s: ifaces.postpone(s, instance_id, port_id,
                                                         REFUSED_RETRY))
            return False
        await self._in_tx(record)
        return True

    def pending(self, resume: bool = False) -> list[tuple[str, str]]:
        with self.db.session(write=False) as s:
            return ifaces.due(s, self.stale if resume else ())
