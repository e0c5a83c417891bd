"""/v2.1/servers/{id}/os-interface: a server's ports, attached and detached while it runs.

`openstack server add port|network` and `remove port|network`. As Nova's, an attach
is a call the request waits for: the port is taken (or made) and bound to the
server's host in one transaction, the host's agent plugs it (hot-plugged into a
running guest, only defined for a stopped one), and a second transaction records
the outcome — the network_info refreshed and the ``attach_interface`` action's
``compute_attach_interface`` event — or undoes the port's part when the plug
failed (409 with the reason; the guest is as before). A detach unplugs first and
then releases the port: one Compute made is deleted, one the user made is kept,
detached (S11).

Each is recorded as an interface operation while under way (compute/interfaces.py):
when the agent does not answer, or this process dies waiting, the conductor finishes
it — a detach is completed (the answer is 202 as Nova's), an attach is rolled back
(the NIC unplugged again, then the port freed) — so no guest keeps a NIC without a
port. The NIC's device role tag (2.49) is kept with its port and shown from 2.70.
"""

from __future__ import annotations

from typing import Any

from gureum.agent import messages as msg
from gureum.api.microversion import at_least
from gureum.api.transaction import READ, WRITE, AfterTransaction, InTransaction
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.bus import BusError, RemoteError
from gureum.compute import actions, instances, policy
from gureum.compute import interfaces as ifaces
from gureum.compute.api.common import call_agent, ctx_of, settings_of
from gureum.context import RequestContext
from gureum.db import Session
from gureum.errors import Conflict, GureumError, InvalidInput, NotFound
from gureum.network import service as netsvc

router = Router()
_P = "os_compute_api:os-attach-interfaces"

_create = {
    "type": "object", "additionalProperties": False, "required": ["interfaceAttachment"],
    "properties": {"interfaceAttachment": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "net_id": {"type": "string", "format": "uuid"},
            "port_id": {"type": "string", "format": "uuid"},
            "fixed_ips": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                "type": "object", "additionalProperties": False,
                "required": ["ip_address"],
                "properties": {"ip_address": {"type": "string"}}}},
            "tag": {"type": "string", "minLength": 1, "maxLength": 60,
                    "pattern": "^[^,/]*$"},
        }}},
}


def view(req: Request, port: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "fixed_ips": [{"ip_address": a.ip_address, "subnet_id": a.subnet_id}
                      for a in port.fixed_ips],
        "mac_addr": port.mac_address, "net_id": port.network_id, "port_id": port.id,
        "port_state": port.status}
    if at_least(req, "2.70"):
        out["tag"] = port.device_tag
    return out


def _ports(s: Session, instance_id: str) -> list[Any]:
    return [p for p in (netsvc.instance_port(s, instance_id, v["port_id"])
                        for v in netsvc.network_info_for_instance(s, instance_id))
            if p is not None]


@router.get("/v2.1/servers/{server_id}/os-interface", tx=READ)
def list_interfaces(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), f"{_P}:list")
    inst = instances.visible(s, ctx, req.path_params["server_id"])
    return json_response({"interfaceAttachments": [view(req, p) for p in _ports(s, inst.id)]})


@router.get("/v2.1/servers/{server_id}/os-interface/{port_id}", tx=READ)
def show_interface(req: Request, s: Session) -> Response:
    ctx = policy.authorize(ctx_of(req), f"{_P}:show")
    inst = instances.visible(s, ctx, req.path_params["server_id"])
    port = netsvc.instance_port(s, inst.id, req.path_params["port_id"])
    if port is None:
        raise NotFound(f"Instance {inst.id} is not attached to port "
                       f"{req.path_params['port_id']}.")
    return json_response({"interfaceAttachment": view(req, port)})


def _begin(s: Session, ctx: RequestContext, server_id: str, action: str) -> Any:
    inst = actions.changeable(s, ctx, server_id)
    instances.start_task(s, inst, action)  # the action table: ACTIVE, PAUSED, STOPPED
    instances.start_action(s, inst.id, action, ctx.request_id, ctx.user_id, ctx.project_id)
    instances.event_start(s, inst.id, ctx.request_id, f"compute_{action}", host=inst.host)
    return inst


def _ask(req: Request, host: str | None, message: msg.Message[Any]
         ) -> tuple[str | None, bool]:
    """(the agent's error message or None when it did it, whether the outcome is
    unknown: the agent did not answer, so it may have done it)."""
    try:
        if not host:
            return "The server has no host.", False
        call_agent(req, host, message)
    except RemoteError as exc:
        return exc.remote_message, False
    except BusError as exc:
        return exc.message, True
    return None, False


def _lease(req: Request) -> float:
    """How long the request holds its operation: its agent call's timeout, and more."""
    return settings_of(req).compute.rpc_timeout + 15.0


@router.post("/v2.1/servers/{server_id}/os-interface", tx=WRITE)
def attach_interface(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.authorize(ctx_of(req), f"{_P}:create")
    body = validate(_create, req.json())["interfaceAttachment"]
    if "tag" in body and not at_least(req, "2.49"):
        raise InvalidInput("Additional properties are not allowed ('tag' was unexpected)")
    if body.get("net_id") and body.get("port_id"):
        raise InvalidInput("Must not input both network_id and port_id")
    if body.get("fixed_ips") and not body.get("net_id"):
        raise InvalidInput("Must input network_id when request IP address")
    inst = _begin(s, ctx, req.path_params["server_id"], "attach_interface")
    vif = netsvc.attach_port(
        s, instance_id=inst.id, project_id=inst.project_id, is_admin=ctx.is_admin,
        host=inst.host, availability_zone=inst.availability_zone,
        port_id=body.get("port_id"), network_id=body.get("net_id"),
        fixed_ip=(body.get("fixed_ips") or [{}])[0].get("ip_address"),
        security_groups=list(inst.security_groups or []), tag=body.get("tag"))
    instance_id, host, request_id = inst.id, inst.host, ctx.request_id
    port_id = vif["port_id"]
    ifaces.begin(s, instance_id, port_id, ifaces.ATTACH, request_id, _lease(req))

    def plug() -> InTransaction:
        error, unknown = _ask(req, host, msg.AttachInterface(instance_id, vif))

        def record(s2: Session) -> Response | GureumError:
            if error is not None:
                ifaces.attach_failed(s2, instance_id, port_id, request_id, host, error,
                                     unknown)
                return Conflict(f"Failed to attach network adapter device to {instance_id}: "
                                f"{error}", nova_type="InterfaceAttachFailed")
            if not ifaces.attached(s2, instance_id, port_id, request_id, host):
                return NotFound(f"Port {port_id} was deleted while it was being attached.",
                                nova_type="PortNotFound")
            port = netsvc.instance_port(s2, instance_id, port_id)
            assert port is not None
            return json_response({"interfaceAttachment": view(req, port)})
        return InTransaction(record)

    return AfterTransaction(plug)


@router.delete("/v2.1/servers/{server_id}/os-interface/{port_id}", tx=WRITE)
def detach_interface(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.authorize(ctx_of(req), f"{_P}:delete")
    server_id, port_id = req.path_params["server_id"], req.path_params["port_id"]
    inst = instances.visible(s, ctx, server_id)
    if netsvc.instance_port(s, inst.id, port_id) is None:
        raise NotFound(f"Port {port_id} is not attached", nova_type="PortNotFound")
    inst = _begin(s, ctx, server_id, "detach_interface")
    instance_id, host, request_id = inst.id, inst.host, ctx.request_id
    ifaces.begin(s, instance_id, port_id, ifaces.DETACH, request_id, _lease(req))

    def unplug() -> InTransaction:
        error, unknown = _ask(req, host, msg.DetachInterface(instance_id, port_id))

        def record(s2: Session) -> Response | GureumError:
            if error is None:
                ifaces.detached(s2, instance_id, port_id, request_id, host)
                return empty(202)
            ifaces.detach_failed(s2, instance_id, port_id, request_id, host, error, unknown)
            if unknown:  # the conductor finishes it once the host answers
                return empty(202)
            return Conflict(f"Failed to detach network adapter device from "
                            f"{instance_id}: {error}", nova_type="InterfaceDetachFailed")
        return InTransaction(record)

    return AfterTransaction(unplug)
