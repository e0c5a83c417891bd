"""Single-host server actions as data: which driver calls, which end state.

The API has already moved the instance into the action's task_state (a
compare-and-swap, see compute/states.py). The conductor then asks the host's
agent for the driver calls in order and records the outcome with another
compare-and-swap from that task_state: success → the action's end state;
failure → task_state cleared, vm_state unchanged, the reason in the fault and
in the action's event. Every step is idempotent, so after a restart the same
action simply runs again (``recover``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from gureum.agent import messages as msg
from gureum.agent import rpc as agent_rpc
from gureum.bus import BusError, RemoteError, Transport
from gureum.compute import instances, states
from gureum.compute.guests import guest_spec, shutdown_timeout
from gureum.compute.instances import StateConflict
from gureum.compute.models import Instance, InstanceAction
from gureum.config import Settings
from gureum.db import Database
from gureum.virt.driver import GuestSpec, PowerOffResult
from gureum.workflows.engine import wait_for_hosts

log = logging.getLogger("gureum.conductor.actions")

Params = dict[str, Any]


# One driver operation on the instance's host: the typed message for it.
Call = Callable[[Instance, Settings, Params], msg.Message[Any]]


def by_id(cls: Callable[[str], msg.Message[Any]]) -> Call:
    return lambda inst, settings, p: cls(inst.id)


def by_spec(cls: Callable[[GuestSpec], msg.Message[Any]]) -> Call:
    return lambda inst, settings, p: cls(guest_spec(inst))


@dataclass(frozen=True)
class SimpleAction:
    name: str  # the key in states.ACTIONS
    event: str  # Nova's event name, shown by `openstack server event list`
    calls: tuple[Call, ...]
    success: Callable[[Instance, Params], dict[str, Any]]
    timeout: Callable[[Instance, Settings, Params], float] = field(
        default=lambda i, s, p: s.compute.rpc_timeout)
    # The API runs it itself, waiting for the agent (changePassword: the password is
    # never stored); here only to end one a restart interrupted, as a failure.
    api_only: bool = False


def _power_off(inst: Instance, settings: Settings, p: Params) -> msg.PowerOff:
    timeout = 0.0 if p.get("force") else shutdown_timeout(inst, settings)
    return msg.PowerOff(inst.id, timeout, settings.compute.shutdown_retry_interval)


def _long(inst: Instance, settings: Settings, p: Params) -> float:
    return shutdown_timeout(inst, settings) + settings.compute.rpc_timeout


def _end(vm_state: str, power_state: int, **extra: Any
         ) -> Callable[[Instance, Params], dict[str, Any]]:
    return lambda inst, p: {"vm_state": vm_state, "power_state": power_state, **extra}


SIMPLE: dict[str, SimpleAction] = {a.name: a for a in (
    SimpleAction("stop", "compute_stop_instance", (_power_off,),
                 _end(states.STOPPED, states.SHUTDOWN), timeout=_long),
    SimpleAction("start", "compute_start_instance", (by_spec(msg.PowerOn),),
                 _end(states.ACTIVE, states.RUNNING)),
    SimpleAction("reboot", "compute_reboot_instance",
                 (lambda i, s, p: msg.Reboot(guest_spec(i), hard=False),),
                 _end(states.ACTIVE, states.RUNNING)),
    SimpleAction("reboot_hard", "compute_reboot_instance",
                 (lambda i, s, p: msg.Reboot(guest_spec(i), hard=True),),
                 _end(states.ACTIVE, states.RUNNING, fault=None)),
    SimpleAction("pause", "compute_pause_instance", (by_id(msg.Pause),),
                 _end(states.PAUSED, states.POWER_PAUSED)),
    SimpleAction("unpause", "compute_unpause_instance", (by_id(msg.Unpause),),
                 _end(states.ACTIVE, states.RUNNING)),
    SimpleAction("suspend", "compute_suspend_instance", (by_id(msg.Suspend),),
                 _end(states.SUSPENDED, states.POWER_SUSPENDED)),
    SimpleAction("resume", "compute_resume_instance", (by_spec(msg.Resume),),
                 _end(states.ACTIVE, states.RUNNING)),
    SimpleAction("rescue", "compute_rescue_instance",
                 (_power_off,
                  lambda i, s, p: msg.Rescue(guest_spec(i), p.get("image_ref") or "")),
                 _end(states.RESCUED, states.RUNNING), timeout=_long),
    SimpleAction("unrescue", "compute_unrescue_instance", (by_spec(msg.Unrescue),),
                 _end(states.ACTIVE, states.RUNNING)),
    SimpleAction("changePassword", "compute_set_admin_password", (),
                 lambda inst, p: {}, api_only=True),
    SimpleAction("trigger_crash_dump", "compute_trigger_crash_dump",
                 (by_id(msg.TriggerCrashDump),), lambda inst, p: {}),
)}

# What an in-flight task_state means after a restart: the action to run again.
RESUME_ACTION = {
    states.POWERING_OFF: "stop", states.POWERING_ON: "start", states.REBOOTING: "reboot",
    states.REBOOT_PENDING: "reboot", states.REBOOT_STARTED: "reboot",
    states.REBOOTING_HARD: "reboot_hard", states.REBOOT_PENDING_HARD: "reboot_hard",
    states.REBOOT_STARTED_HARD: "reboot_hard", states.PAUSING: "pause",
    states.UNPAUSING: "unpause", states.SUSPENDING: "suspend", states.RESUMING: "resume",
    states.RESCUING: "rescue", states.UNRESCUING: "unrescue",
    states.UPDATING_PASSWORD: "changePassword",
}


class ActionRunner:
    def __init__(self, settings: Settings, db: Database, bus: Transport) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus

    async def run(self, instance_id: str, action: str, request_id: str,
                  params: Params | None = None, resuming: bool = False) -> bool:
        """Run a single-host action to its end; True when it succeeded.

        ``resuming`` (after a restart): wait, bounded, for the host's agent first."""
        params = params or {}
        spec_def = SIMPLE[action]
        task_state = states.ACTIONS[action].task_state
        loaded = await asyncio.to_thread(self._load, instance_id, task_state, request_id,
                                         spec_def.event)
        if loaded is None:
            return False
        inst, host = loaded
        try:
            if spec_def.api_only:
                raise BusError(f"The {action} was interrupted by a restart; do it again.")
            if resuming and host and spec_def.calls:
                away = await wait_for_hosts(self.bus, {host},
                                            self.settings.conductor.resume_host_wait)
                if away:
                    raise BusError(f"Compute host {host} did not come back after a restart.")
            if spec_def.calls and not host:
                raise BusError(f"Instance {instance_id} has no host to run {action} on.")
            for call in spec_def.calls:
                assert host is not None
                result = await agent_rpc.call(
                    self.bus, host, call(inst, self.settings, params),
                    spec_def.timeout(inst, self.settings, params))
                if isinstance(result, PowerOffResult) and not result.clean and \
                        not params.get("force"):
                    await asyncio.to_thread(self._forced, inst.id, request_id, host,
                                            result.waited)
        except (RemoteError, BusError) as exc:
            message = exc.remote_message if isinstance(exc, RemoteError) else exc.message
            await asyncio.to_thread(self._failed, inst.id, task_state, request_id,
                                    spec_def.event, host, message)
            return False
        return await asyncio.to_thread(self._succeeded, inst, task_state, request_id,
                                       spec_def, params, host)

    def _load(self, instance_id: str, task_state: str | None, request_id: str,
              event: str) -> tuple[Instance, str | None] | None:
        with self.db.session() as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted or inst.task_state != task_state:
                log.info("%s: not in %s any more; action dropped", instance_id, task_state)
                return None
            instances.event_start(s, instance_id, request_id, event, inst.host)
            s.expunge(inst)
            return inst, inst.host

    def _forced(self, instance_id: str, request_id: str, host: str | None,
                waited: float) -> None:
        with self.db.session() as s:
            instances.event_finish(
                s, instance_id, request_id, "compute_power_off_forced", "Success", host=host,
                details=f"The guest did not shut down within {waited:.0f}s of ACPI power-down "
                        "requests; it was forced off.")

    def _failed(self, instance_id: str, task_state: str | None, request_id: str, event: str,
                host: str | None, message: str) -> None:
        with self.db.session() as s:
            try:
                instances.save(s, instance_id, {"task_state": None},
                               expected_task_state=task_state)
                instances.set_fault(s, instance_id, message, 500, message)
            except StateConflict as lost:  # reset or deleted meanwhile: theirs stands
                message = f"{message} ({lost.message})"
            instances.event_finish(s, instance_id, request_id, event, "Error", host=host,
                                   details=message)
            instances.finish_action(s, instance_id, request_id)

    def _succeeded(self, inst: Instance, task_state: str | None, request_id: str,
                   spec_def: SimpleAction, params: Params, host: str | None) -> bool:
        with self.db.session() as s:
            details = None
            try:
                instances.save(s, inst.id, {"task_state": None,
                                            **spec_def.success(inst, params)},
                               expected_task_state=task_state)
                ok = True
            except StateConflict as lost:  # reset or deleted meanwhile: theirs stands
                ok, details = False, lost.message
            instances.event_finish(s, inst.id, request_id, spec_def.event,
                                   "Success" if ok else "Error", host=host, details=details)
            instances.finish_action(s, inst.id, request_id)
            return ok

    # -- restart ----------------------------------------------------------------------
    def in_flight(self) -> list[tuple[str, str, str]]:
        """(instance, action, request id) of every simple action left in flight."""
        out = []
        with self.db.session(write=False) as s:
            rows = s.scalars(select(Instance).where(
                Instance.deleted.is_(False),
                Instance.task_state.in_(list(RESUME_ACTION))))
            for inst in rows:
                action = RESUME_ACTION[inst.task_state or ""]
                last = s.scalar(select(InstanceAction.request_id).where(
                    InstanceAction.instance_id == inst.id).order_by(
                    InstanceAction.id.desc()).limit(1))
                out.append((inst.id, action, last or "req-recovered"))
        return out
