"""Floating IPs and their port forwardings.

A floating IP holds an address of its external network through a port
(``network:floatingip``, device_id = the floating IP's id). Associated with a
port, it points at one of the port's fixed addresses, which must be reachable
from the external network: the fixed address's subnet has an interface on a
router whose gateway is on that external network (404
ExternalGatewayForFloatingIPNotFound otherwise). Its status is ACTIVE while
associated, DOWN otherwise. Functions take an open session; the caller owns the
transaction.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.network import errors as e
from gureum.network import l3_models as l3
from gureum.network import models as m
from gureum.network import policy, ports, resources, routers

PROTOCOLS = ("tcp", "udp", "udplite", "dccp", "sctp", "icmp", "ipv6-icmp")


def not_found(fip_id: str) -> Exception:
    return e.typed_not_found("FloatingIPNotFound", f"Floating IP {fip_id} could not be found")


def get_floatingip(s: Session, ctx: RequestContext | None, fip_id: str) -> l3.FloatingIP:
    fip = s.get(l3.FloatingIP, fip_id)
    if fip is None or (ctx is not None and not policy.owns(ctx, fip.project_id)):
        raise not_found(fip_id)
    return fip


def floatingip_visible(ctx: RequestContext) -> Any:
    if ctx.is_admin:
        return None
    return l3.FloatingIP.project_id == (ctx.project_id or "")


def _external_network(s: Session, ctx: RequestContext, network_id: Any) -> m.Network:
    if not isinstance(network_id, str) or not network_id:
        raise e.bad_request("Failed to parse request. Required attribute "
                            "'floating_network_id' not specified", "floating_network_id")
    net = resources.get_network(s, ctx, network_id)
    if not net.external:
        raise e.bad_request(f"Bad floatingip request: Network {net.id} is not a valid "
                            "external network.", "floating_network_id")
    return net


def create_floatingip(s: Session, ctx: RequestContext, body: dict[str, Any]
                      ) -> l3.FloatingIP:
    policy.writer(ctx, "create_floatingip")
    net = _external_network(s, ctx, body.get("floating_network_id"))
    project_id = policy.target_project(ctx, body)
    resources.check_quota(s, project_id, "floatingip")
    fip = l3.FloatingIP(project_id=project_id, floating_network_id=net.id,
                        description=body.get("description") or "",
                        dns_name=body.get("dns_name") or "",
                        dns_domain=body.get("dns_domain") or "",
                        floating_port_id="", floating_ip_address="")
    s.add(fip)
    s.flush()
    fixed: dict[str, Any] = {}
    if body.get("subnet_id"):
        fixed["subnet_id"] = body["subnet_id"]
    if body.get("floating_ip_address"):
        if not ctx.is_admin:
            raise e.policy("create_floatingip:floating_ip_address")
        fixed["ip_address"] = body["floating_ip_address"]
    if not net.subnets:
        raise e.bad_request(f"Bad floatingip request: Network {net.id} has no subnet.",
                            "floating_network_id")
    port_body: dict[str, Any] = {"device_owner": l3.FLOATINGIP, "device_id": fip.id}
    if fixed:
        port_body["fixed_ips"] = [fixed]
    else:
        v4 = [sn for sn in net.subnets if sn.ip_version == 4]
        if v4:
            port_body["fixed_ips"] = [{"subnet_id": v4[0].id}]
    port = ports.new_port(s, net, "", port_body)
    s.flush()
    s.refresh(port, ["fixed_ips"])
    if not port.fixed_ips:
        raise e.bad_request(f"Bad floatingip request: no address on network {net.id}.",
                            "floating_network_id")
    fip.floating_port_id = port.id
    fip.floating_ip_address = port.fixed_ips[0].ip_address
    if body.get("port_id"):
        associate(s, ctx, fip, body["port_id"], body.get("fixed_ip_address"))
    if body.get("tags"):
        resources.set_tags(s, fip, body["tags"])
    s.flush()
    refresh_servers(s, [fip.fixed_port_id])
    return fip


def update_floatingip(s: Session, ctx: RequestContext, fip_id: str, body: dict[str, Any]
                      ) -> l3.FloatingIP:
    fip = get_floatingip(s, ctx, fip_id)
    policy.writer(ctx, "update_floatingip")
    before = fip.fixed_port_id
    if "description" in body:
        fip.description = body["description"] or ""
    if "port_id" in body:
        if body["port_id"]:
            associate(s, ctx, fip, body["port_id"], body.get("fixed_ip_address"))
        else:
            disassociate(fip)
    elif "fixed_ip_address" in body:
        if not fip.fixed_port_id:
            raise e.bad_request("fixed_ip_address cannot be specified without a port_id",
                                "fixed_ip_address")
        associate(s, ctx, fip, fip.fixed_port_id, body["fixed_ip_address"])
    resources.touch(fip)
    s.flush()
    refresh_servers(s, [before, fip.fixed_port_id])
    return fip


def delete_floatingip(s: Session, ctx: RequestContext, fip_id: str) -> None:
    fip = get_floatingip(s, ctx, fip_id)
    policy.writer(ctx, "delete_floatingip")
    port = s.get(m.Port, fip.floating_port_id)
    fixed_port_id = fip.fixed_port_id
    resources.drop_tags(s, fip.id)
    s.delete(fip)
    s.flush()
    refresh_servers(s, [fixed_port_id])
    if port is not None:
        ports.remove_port(s, port)


def refresh_servers(s: Session, port_ids: list[str | None]) -> None:
    """The servers of these ports see their floating IPs in their addresses at once:
    their cached network_info is rebuilt (Nova's info cache, refreshed on Neutron's
    network-changed event)."""
    from gureum.compute.models import Instance
    from gureum.network import service

    for port_id in {p for p in port_ids if p}:
        port = s.get(m.Port, port_id)
        if port is None or not port.device_owner.startswith("compute:") or not port.device_id:
            continue
        inst = s.get(Instance, port.device_id)
        if inst is not None and inst.network_info:
            info = service.network_info_for_instance(s, inst.id)
            if info != inst.network_info:
                inst.network_info = info


def disassociate(fip: l3.FloatingIP) -> None:
    fip.fixed_port_id = None
    fip.fixed_ip_address = None
    fip.router_id = None
    fip.status = l3.DOWN


def disassociate_port(s: Session, port_id: str) -> None:
    """A port going away takes its floating IPs' association with it."""
    for fip in s.scalars(select(l3.FloatingIP).where(l3.FloatingIP.fixed_port_id == port_id)):
        disassociate(fip)
        resources.touch(fip)


def reachable_router(s: Session, external_network_id: str, subnet_id: str
                     ) -> l3.Router | None:
    """A router with an interface on the subnet and its gateway on the external network."""
    candidates = s.scalars(select(l3.Router).join(
        m.Port, m.Port.device_id == l3.Router.id).join(
        m.IPAllocation, m.IPAllocation.port_id == m.Port.id).where(
        m.Port.device_owner == l3.ROUTER_INTERFACE, m.IPAllocation.subnet_id == subnet_id)
        .order_by(l3.Router.created_at))
    for router in candidates:
        gw = routers.gateway_port(s, router)
        if gw is not None and gw.network_id == external_network_id:
            return router
    return None


def associate(s: Session, ctx: RequestContext, fip: l3.FloatingIP, port_id: Any,
              fixed_ip: Any = None) -> None:
    if not isinstance(port_id, str):
        raise e.invalid_attribute("port_id", f"'{port_id}' is not a valid UUID")
    port = resources.get_port(s, ctx, port_id)
    if not policy.owns(ctx, port.project_id):
        raise e.not_found("port", port_id)
    if port.device_owner.startswith("network:"):
        raise e.bad_request(f"Port {port.id} has owner {port.device_owner} and therefore "
                            "cannot be assigned a floating IP", "port_id")
    v4 = [a for a in port.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4]
    if fixed_ip:
        chosen = next((a for a in port.fixed_ips if a.ip_address == fixed_ip), None)
        if chosen is None:
            raise e.bad_request(f"Port {port.id} does not have fixed ip {fixed_ip}",
                                "fixed_ip_address")
    else:
        if not v4:
            raise e.bad_request(f"Bad floatingip request: Port {port.id} does not have any "
                                "IPv4 address", "port_id")
        if len(v4) > 1:
            raise e.bad_request(f"Port {port.id} has multiple fixed IPv4 addresses. Must "
                                "provide a specific IPv4 address when assigning a floating "
                                "IP", "fixed_ip_address")
        chosen = v4[0]
    taken = s.scalar(select(l3.FloatingIP.id).where(
        l3.FloatingIP.fixed_port_id == port.id,
        l3.FloatingIP.fixed_ip_address == chosen.ip_address,
        l3.FloatingIP.floating_network_id == fip.floating_network_id,
        l3.FloatingIP.id != fip.id).limit(1))
    if taken is not None:
        raise e.conflict("FloatingIPPortAlreadyAssociated", f"Cannot associate floating IP "
                         f"{fip.floating_ip_address} ({fip.id}) with port {port.id} using "
                         f"fixed IP {chosen.ip_address}, as that fixed IP already has a "
                         f"floating IP on external network {fip.floating_network_id}.")
    router = reachable_router(s, fip.floating_network_id, chosen.subnet_id)
    if router is None:
        raise e.typed_not_found("ExternalGatewayForFloatingIPNotFound", f"External network "
                                f"{fip.floating_network_id} is not reachable from subnet "
                                f"{chosen.subnet_id}.  Therefore, cannot associate Port "
                                f"{port.id} with a Floating IP.")
    fip.fixed_port_id = port.id
    fip.fixed_ip_address = chosen.ip_address
    fip.router_id = router.id
    fip.status = l3.ACTIVE


# -- port forwardings -------------------------------------------------------------------

def _pf_not_found(pf_id: str, fip_id: str) -> Exception:
    return e.typed_not_found("PortForwardingNotFound", f"Port Forwarding {pf_id} could not "
                             f"be found for Floating IP {fip_id}")


def get_port_forwarding(fip: l3.FloatingIP, pf_id: str) -> l3.PortForwarding:
    for pf in fip.port_forwardings:
        if pf.id == pf_id:
            return pf
    raise _pf_not_found(pf_id, fip.id)


def _port_number(value: Any, field: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise e.invalid_attribute(field, f"{value!r} is not a valid port number")
    return value


def _apply_pf(s: Session, ctx: RequestContext, fip: l3.FloatingIP, pf: l3.PortForwarding,
              body: dict[str, Any]) -> None:
    if "protocol" in body:
        if body["protocol"] not in PROTOCOLS:
            raise e.invalid_attribute("protocol", f"{body['protocol']!r} is not in "
                                      f"{list(PROTOCOLS)}")
        pf.protocol = body["protocol"]
    for key in ("internal_port", "external_port"):
        if key in body:
            setattr(pf, key, _port_number(body[key], key))
    if "description" in body:
        pf.description = body["description"] or ""
    if "internal_port_id" in body:
        port = resources.get_port(s, ctx, str(body["internal_port_id"]))
        pf.internal_port_id = port.id
        if "internal_ip_address" not in body and port.fixed_ips:
            pf.internal_ip_address = port.fixed_ips[0].ip_address
    if "internal_ip_address" in body:
        pf.internal_ip_address = str(body["internal_ip_address"])
    internal = s.get(m.Port, pf.internal_port_id or "")
    if internal is None:
        raise e.bad_request("Failed to parse request. Required attribute 'internal_port_id' "
                            "not specified", "internal_port_id")
    chosen = next((a for a in internal.fixed_ips
                   if a.ip_address == pf.internal_ip_address), None)
    if chosen is None:
        raise e.bad_request(f"The requested internal IP address {pf.internal_ip_address} is "
                            f"not a fixed IP of port {internal.id}", "internal_ip_address")
    if fip.fixed_port_id:
        raise e.conflict("FipInUseByPortForwarding", f"Floating IP {fip.id} is associated "
                         "with a port; it cannot have port forwardings as well.")
    if reachable_router(s, fip.floating_network_id, chosen.subnet_id) is None:
        raise e.typed_not_found("ExternalGatewayForFloatingIPNotFound", f"External network "
                                f"{fip.floating_network_id} is not reachable from subnet "
                                f"{chosen.subnet_id}.  Therefore, cannot associate Port "
                                f"{internal.id} with a Floating IP.")
    for other in fip.port_forwardings:
        if other is not pf and other.protocol == pf.protocol and \
                other.external_port == pf.external_port:
            raise e.bad_request(f"A duplicate port forwarding entry with same attributes "
                                f"already exists, conflicting values are "
                                f"{{'external_port': {pf.external_port}, 'protocol': "
                                f"'{pf.protocol}'}}", "external_port")


def create_port_forwarding(s: Session, ctx: RequestContext, fip_id: str,
                           body: dict[str, Any]) -> l3.PortForwarding:
    fip = get_floatingip(s, ctx, fip_id)
    policy.writer(ctx, "create_floatingip_port_forwarding")
    for key in ("protocol", "internal_port", "external_port", "internal_port_id"):
        if key not in body:
            raise e.bad_request(f"Failed to parse request. Required attribute '{key}' not "
                                "specified", key)
    pf = l3.PortForwarding(internal_port_id="", internal_ip_address="", internal_port=0,
                           external_port=0, protocol="tcp")
    _apply_pf(s, ctx, fip, pf, body)
    fip.port_forwardings.append(pf)
    router = reachable_router(s, fip.floating_network_id, next(
        a.subnet_id for a in s.get(m.Port, pf.internal_port_id).fixed_ips  # type: ignore[union-attr]
        if a.ip_address == pf.internal_ip_address))
    fip.router_id = router.id if router is not None else None
    fip.status = l3.ACTIVE
    resources.touch(fip)
    s.flush()
    return pf


def update_port_forwarding(s: Session, ctx: RequestContext, fip_id: str, pf_id: str,
                           body: dict[str, Any]) -> l3.PortForwarding:
    fip = get_floatingip(s, ctx, fip_id)
    policy.writer(ctx, "update_floatingip_port_forwarding")
    pf = get_port_forwarding(fip, pf_id)
    _apply_pf(s, ctx, fip, pf, body)
    resources.touch(fip)
    s.flush()
    return pf


def delete_port_forwarding(s: Session, ctx: RequestContext, fip_id: str, pf_id: str) -> None:
    fip = get_floatingip(s, ctx, fip_id)
    policy.writer(ctx, "delete_floatingip_port_forwarding")
    pf = get_port_forwarding(fip, pf_id)
    fip.port_forwardings.remove(pf)
    if not fip.port_forwardings and not fip.fixed_port_id:
        fip.router_id = None
        fip.status = l3.DOWN
    resources.touch(fip)
    s.flush()
