"""What the instance's host can do: actions its driver lacks are refused up front.

Each compute agent reports its driver's capabilities (``VirtDriver.capabilities``)
with its resources; they are stored on the compute node. An action the host's
driver cannot do is answered the way Nova answers when its driver lacks it —
before any state changes — instead of being accepted and recorded as a success
that did nothing. A host that has not reported yet (None) is not refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute.models import ComputeNode, Instance
from gureum.errors import GureumError, InvalidInput, NotImplementedYet


@dataclass(frozen=True)
class Needs:
    capability: str
    error: type[GureumError] = NotImplementedYet
    message: str = "Action is not supported by this cloud's hypervisor."


_FEATURE = "Action is not supported by this cloud's hypervisor."

# Server action (the action table's name) → the capability it needs, and Nova's answer
# when the driver lacks it (nova/api/openstack/compute/*: NotImplementedError → 501,
# TriggerCrashDumpNotSupported → 400).
ACTIONS: dict[str, Needs] = {
    "pause": Needs("supports_pause"), "unpause": Needs("supports_pause"),
    "suspend": Needs("supports_suspend"), "resume": Needs("supports_suspend"),
    "rescue": Needs("supports_rescue", message="The rescue operation is not implemented "
                                               "by this cloud."),
    "unrescue": Needs("supports_rescue", message="The unrescue operation is not "
                                                 "implemented by this cloud."),
    "createImage": Needs("supports_snapshot"), "createBackup": Needs("supports_snapshot"),
    "shelve": Needs("supports_snapshot"),
    "resize": Needs("supports_resize"), "migrate": Needs("supports_resize"),
    "os-migrateLive": Needs("supports_live_migration"),
    "os-getConsoleOutput": Needs("supports_console_output"),
    "os-getVNCConsole": Needs("supports_vnc_console",
                              message="The requested functionality is not supported."),
    "changePassword": Needs("supports_set_admin_password",
                            message="Unable to set password on instance"),
    "trigger_crash_dump": Needs("supports_trigger_crash_dump", InvalidInput,
                                "Triggering crash dump is not supported"),
}
BLOCK_MIGRATION = Needs("supports_block_migration", InvalidInput,
                        "Block migration is not supported by the hypervisor of this host.")


def of_host(s: Session, host: str | None) -> dict[str, bool] | None:
    """The capabilities the host last reported; None when unknown."""
    if not host:
        return None
    caps = s.scalar(select(ComputeNode.capabilities).where(ComputeNode.host == host)
                    .limit(1))
    return dict(caps) if caps is not None else None


def check(s: Session, inst: Instance, action: str) -> None:
    """Refuse ``action`` when the instance's host reported it cannot do it."""
    needs = ACTIONS.get(action)
    if needs is not None:
        require(s, inst.host, needs)


def require(s: Session, host: str | None, needs: Needs) -> None:
    caps = of_host(s, host)
    if caps is not None and not caps.get(needs.capability, False):
        raise needs.error(needs.message)
