"""Remote consoles (os-getVNCConsole, /servers/{id}/remote-consoles, os-console-auth-tokens).

The checks come in Nova's order (nova/compute/api.py and manager.py
get_vnc_console): the server must be visible (404), on a host and not being
deleted or migrated (409), the console type enabled (400 "Unavailable console
type") and one this cloud serves (400 "Invalid console type"), and the host's
driver must have a graphical console (501). Then the caller asks the host's
agent where the console listens, after the transaction, and records a token
with ``record_vnc`` (gureum/console/tokens.py). SPICE, serial and MKS consoles
are off here, as they are by default in Nova: 400 "Unavailable console type".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from gureum.compute import capabilities, instances, states
from gureum.config import Settings
from gureum.console import tokens
from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput, NotFound
from gureum.virt.driver import VncConsole

# vm_states in which the guest's process runs (a paused one shows its frozen screen).
RUNNING_STATES = (states.ACTIVE, states.PAUSED, states.RESCUED, states.RESIZED)
# Nova's reject_instance_state on get_vnc_console.
REFUSED_TASKS = (states.DELETING, states.MIGRATING)


@dataclass(frozen=True)
class Target:
    instance_id: str
    host: str
    console_type: str


def unavailable(console_type: str) -> InvalidInput:
    return InvalidInput(f"Unavailable console type {console_type}.")


def not_ready(instance_id: str) -> Conflict:
    return Conflict(f"Instance {instance_id} is not ready")


# Nova's compute API method per console protocol: named in its 409 for a refused state.
_METHODS = {"vnc": "get_vnc_console", "spice": "get_spice_console",
            "serial": "get_serial_console", "mks": "get_mks_console"}


def target(s: Session, ctx: RequestContext, server_id: str, protocol: str, console_type: str,
           settings: Settings) -> Target:
    """Whose agent to ask for the server's console; the caller checked the policy.
    Only VNC consoles are served here; the other protocols are off (Nova's 400)."""
    inst = instances.visible(s, ctx, server_id)
    if not inst.host:
        raise not_ready(inst.id)
    if inst.task_state in REFUSED_TASKS:
        raise Conflict(f"Cannot '{_METHODS.get(protocol, 'get_vnc_console')}' instance "
                       f"{inst.id} while it is in task_state {inst.task_state}")
    if protocol != "vnc" or not settings.vnc.enabled:
        raise unavailable(console_type)
    if console_type != "novnc":
        raise InvalidInput(f"Invalid console type {console_type}")
    if inst.vm_state not in RUNNING_STATES:
        raise not_ready(inst.id)
    capabilities.check(s, inst, "os-getVNCConsole")
    return Target(inst.id, inst.host, console_type)


def record_vnc(s: Session, target: Target, console: VncConsole, settings: Settings) -> str:
    """Give out a token for the console the agent named; the URL to open."""
    issued = tokens.issue(s, instance_id=target.instance_id, compute_host=target.host,
                          console_type=target.console_type, host=console.host,
                          port=console.port, path=console.path,
                          base_url=settings.novncproxy_base_url,
                          ttl=settings.vnc.token_ttl)
    return issued.url


def show_token(s: Session, token: str) -> tokens.Connect:
    """os-console-auth-tokens: what a valid token connects to (404 otherwise)."""
    found = tokens.find(s, token)
    if found is None:
        raise NotFound("Token not found")
    return found
