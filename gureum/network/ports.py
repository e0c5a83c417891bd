"""Ports: MAC addresses, fixed IPs, device attachment, bindings, address pairs.

Detaching, the S11 way: ``openstack port set --device "" --device-owner ""
--no-binding-profile PORT`` sends ``device_owner: ""`` (the CLI drops the
empty ``--device``) and ``binding:profile: {}``. Clearing the device owner
therefore detaches the port: its device id and host binding go too, and it
becomes a port its project owns and keeps. A member may clear
``binding:profile`` (never set it) so that the command works for the port's
owner as written.
"""

from __future__ import annotations

import ipaddress
import random
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.network import bindings, ipam, policy, resources, secgroups
from gureum.network import errors as e
from gureum.network import models as m

MAC_PREFIX = "fa:16:3e"
_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")
MAX_ADDRESS_PAIRS = 10


def random_mac() -> str:
    return MAC_PREFIX + "".join(f":{random.randint(0, 255):02x}" for _ in range(3))


def check_mac(value: str, field: str = "mac_address") -> str:
    if not _MAC.match(value):
        raise e.invalid_attribute(field, f"'{value}' is not a valid MAC address")
    mac = value.lower().replace("-", ":")
    if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
        raise e.invalid_attribute(field, f"'{value}' is not a valid MAC address")
    return mac


def _pairs(pairs: list[dict[str, str]], mac: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for pair in pairs:
        raw = pair["ip_address"]
        try:
            ip = str(ipaddress.ip_network(raw, strict=False)) if "/" in raw \
                else str(ipaddress.ip_address(raw))
        except ValueError:
            raise e.invalid_attribute("allowed_address_pairs",
                                      f"'{raw}' is not a valid IP address") from None
        item = {"ip_address": ip,
                "mac_address": check_mac(pair["mac_address"], "allowed_address_pairs")
                if pair.get("mac_address") else mac}
        if item in out:
            raise e.typed_bad_request("DuplicateAddressPairInRequest", "Request contains "
                                      f"duplicate address pair: mac_address "
                                      f"{item['mac_address']} ip_address {ip}.",
                                      "allowed_address_pairs")
        out.append(item)
    if len(out) > MAX_ADDRESS_PAIRS:
        raise e.typed_bad_request("AllowedAddressPairExhausted", "The number of allowed "
                                  f"address pair exceeds the maximum {MAX_ADDRESS_PAIRS}.",
                                  "allowed_address_pairs")
    return out


def _dhcp_opts(current: list[dict[str, Any]], given: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """Neutron's extra_dhcp_opt: an option is (name, IP version); one given with a
    value replaces the same one, one given with a null value removes it."""
    out = [dict(o) for o in current]
    for opt in given:
        version = int(opt.get("ip_version") or 4)
        key = (opt["opt_name"], version)
        out = [o for o in out if (o["opt_name"], o["ip_version"]) != key]
        if opt.get("opt_value") is not None:
            out.append({"opt_name": opt["opt_name"], "opt_value": opt["opt_value"],
                        "ip_version": version})
    return out


def _check_attrs(ctx: RequestContext, body: dict[str, Any], network: m.Network,
                 action: str) -> None:
    """Neutron's per-attribute port policy."""
    if ctx.is_admin:
        return
    for attr in ("binding:host_id", "binding:vif_type", "binding:vif_details"):
        if attr in body:
            raise e.policy(f"{action}:{attr}")
    if body.get("binding:profile"):
        raise e.policy(f"{action}:binding:profile")
    if action == "update_port" and "mac_address" in body:
        raise e.policy(f"{action}:mac_address")
    if policy.owns(ctx, network.project_id):
        return
    if "mac_address" in body:
        raise e.policy(f"{action}:mac_address")
    if any("ip_address" in item for item in body.get("fixed_ips") or []):
        raise e.policy(f"{action}:fixed_ips:ip_address")
    if (body.get("device_owner") or "").startswith("network:"):
        raise e.policy(f"{action}:device_owner")
    for attr in ("port_security_enabled", "allowed_address_pairs"):
        if attr in body:
            raise e.policy(f"{action}:{attr}")


def _check_refs(body: dict[str, Any]) -> None:
    if body.get("qos_policy_id"):
        raise e.not_found("qos_policy", body["qos_policy_id"])


def _pairs_need_security(port: m.Port) -> None:
    if port.allowed_address_pairs and not port.port_security_enabled:
        raise e.conflict("AddressPairAndPortSecurityRequired", "Port Security must be "
                         "enabled in order to have allowed address pairs on a port.")


def _insert_port(s: Session, port: m.Port, mac_given: bool) -> None:
    """Insert with a MAC unique on its network; a generated one is re-drawn on collision."""
    for _attempt in range(10):
        if s.scalar(select(m.Port.id).where(m.Port.network_id == port.network_id,
                                            m.Port.mac_address == port.mac_address)):
            if mac_given:
                raise e.mac_in_use(port.network_id, port.mac_address)
            port.mac_address = random_mac()
            continue
        try:
            with s.begin_nested():
                s.add(port)
                s.flush()
            return
        except IntegrityError:
            if mac_given:
                raise e.mac_in_use(port.network_id, port.mac_address) from None
            port.mac_address = random_mac()
    raise e.conflict("MacAddressGenerationFailure", "Unable to generate unique mac on "
                     f"network {port.network_id}.")


def new_port(s: Session, network: m.Network, project_id: str, body: dict[str, Any],
             *, delete_with_instance: bool = False) -> m.Port:
    """Create a port (no policy checks: callers have made them)."""
    mac_given = bool(body.get("mac_address"))
    mac = check_mac(body["mac_address"]) if mac_given else random_mac()
    port = m.Port(
        project_id=project_id, network=network, name=body.get("name") or "",
        description=body.get("description") or "", mac_address=mac,
        admin_state_up=body.get("admin_state_up", True),
        device_id=body.get("device_id") or "", device_owner=body.get("device_owner") or "",
        port_security_enabled=body.get("port_security_enabled",
                                       network.port_security_enabled),
        dns_name=body.get("dns_name") or "", dns_domain=body.get("dns_domain") or "",
        delete_with_instance=delete_with_instance, device_index=body.get("device_index"),
        device_tag=body.get("device_tag"))
    port.allowed_address_pairs = _pairs(body.get("allowed_address_pairs") or [], mac)
    port.extra_dhcp_opts = _dhcp_opts([], body.get("extra_dhcp_opts") or [])
    _pairs_need_security(port)
    bindings.set_host(port, body.get("binding:host_id") or "",
                      body.get("binding:profile") or {}, body.get("binding:vnic_type"))
    secgroups.join_new_port(s, None, port, body)
    _insert_port(s, port, mac_given)
    subnets = list(network.subnets)
    if "fixed_ips" in body:
        ipam.allocate(s, port, ipam.resolve_requests(subnets, network.id, body["fixed_ips"]))
    else:
        ipam.allocate(s, port, ipam.default_requests(subnets), fallback=subnets)
    if body.get("tags"):
        resources.set_tags(s, port, body["tags"])
    return port


def create_port(s: Session, ctx: RequestContext, body: dict[str, Any]) -> m.Port:
    policy.writer(ctx, "create_port")
    network = resources.get_network(s, ctx, body["network_id"])
    if not policy.shared_with(ctx, network):
        raise e.policy("create_port")
    _check_attrs(ctx, body, network, "create_port")
    _check_refs(body)
    project_id = policy.target_project(ctx, body)
    resources.check_quota(s, project_id, "port")
    return new_port(s, network, project_id, body)


def _reassign_ips(s: Session, port: m.Port, fixed_ips: list[dict[str, Any]]) -> None:
    """Keep the addresses still asked for, release the others, allocate the new ones."""
    subnets = list(port.network.subnets)
    requests = ipam.resolve_requests(subnets, port.network_id, fixed_ips)
    current = list(port.fixed_ips)
    kept: dict[int, m.IPAllocation] = {}
    for i, (subnet, ip) in enumerate(requests):  # exact addresses first
        if ip is None:
            continue
        found = next((a for a in current if a.subnet_id == subnet.id
                      and a.ip_address == str(ip) and a not in kept.values()), None)
        if found is not None:
            kept[i] = found
    for i, (subnet, ip) in enumerate(requests):  # then "any address on this subnet"
        if ip is not None:
            continue
        found = next((a for a in current if a.subnet_id == subnet.id
                      and a not in kept.values()), None)
        if found is not None:
            kept[i] = found
    for a in current:
        if a not in kept.values():
            port.fixed_ips.remove(a)
    for i, a in kept.items():
        a.position = i
    s.flush()
    for i, request in enumerate(requests):
        if i not in kept:
            ipam.allocate(s, port, [request], start_position=i)


def detach(port: m.Port) -> None:
    """No device any more: the port is its project's own, unbound (S11)."""
    port.device_id = ""
    port.device_owner = ""
    port.device_index = None
    port.device_tag = None
    port.delete_with_instance = False
    bindings.set_host(port, "", {})


def update_port(s: Session, ctx: RequestContext, port_id: str, body: dict[str, Any]
                ) -> m.Port:
    port = resources.get_port(s, ctx, port_id)
    policy.writer(ctx, "update_port")
    policy.check_owner(ctx, port.project_id, "update_port")
    _check_attrs(ctx, body, port.network, "update_port")
    _check_refs(body)
    if "mac_address" in body:
        mac = check_mac(body["mac_address"])
        binding = port.active_binding()
        if mac != port.mac_address and binding is not None and binding.host:
            raise e.conflict("PortBound", f"Unable to complete operation on port {port.id}, "
                             f"port is already bound, port type: {binding.vif_type}, "
                             f"old_mac {port.mac_address}, new_mac {mac}.")
        if mac != port.mac_address and s.scalar(select(m.Port.id).where(
                m.Port.network_id == port.network_id, m.Port.mac_address == mac)):
            raise e.mac_in_use(port.network_id, mac)
        port.mac_address = mac
    for key in ("name", "description", "dns_name", "dns_domain"):
        if key in body:
            setattr(port, key, body[key] or "")
    for key in ("admin_state_up", "port_security_enabled"):
        if key in body:
            setattr(port, key, body[key])
    if "extra_dhcp_opts" in body:
        port.extra_dhcp_opts = _dhcp_opts(port.extra_dhcp_opts or [],
                                          body["extra_dhcp_opts"] or [])
    if "allowed_address_pairs" in body:
        port.allowed_address_pairs = _pairs(body["allowed_address_pairs"] or [],
                                            port.mac_address)
    _pairs_need_security(port)
    secgroups.update_port_groups(s, ctx, port, body)
    if "device_id" in body:
        port.device_id = body["device_id"] or ""
    if "device_owner" in body:
        port.device_owner = body["device_owner"] or ""
    if (body.get("device_owner") == "" and "device_id" not in body) or \
            (body.get("device_id") == "" and not port.device_owner):
        detach(port)
    if "binding:host_id" in body:
        bindings.set_host(port, body["binding:host_id"] or "",
                          body.get("binding:profile"), body.get("binding:vnic_type"))
    elif "binding:profile" in body or "binding:vnic_type" in body:
        bindings.update_active(port, profile=body["binding:profile"] or {}
                               if "binding:profile" in body else None,
                               vnic_type=body.get("binding:vnic_type"))
    if "fixed_ips" in body:
        _reassign_ips(s, port, body["fixed_ips"])
    bindings.refresh_status(port)
    resources.touch(port)
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError:
        raise e.mac_in_use(port.network_id, port.mac_address) from None
    s.expire(port, ["fixed_ips"])
    return port


def delete_port(s: Session, ctx: RequestContext, port_id: str) -> None:
    port = resources.get_port(s, ctx, port_id)
    policy.writer(ctx, "delete_port")
    if not (policy.owns(ctx, port.project_id) or policy.owns(ctx, port.network.project_id)):
        raise e.policy("delete_port")
    if port.device_owner in ROUTER_OWNED:
        raise e.conflict("ServicePortInUse", f"Port {port.id} cannot be deleted directly via "
                         f"the port API: has device owner {port.device_owner}.")
    server = port.device_id if port.device_owner.startswith("compute:") else ""
    remove_port(s, port)
    if server:  # Neutron tells Nova (network-vif-deleted); here, in this transaction
        from gureum.compute import interfaces

        interfaces.port_deleted(s, server, port_id)


# Ports a router or a floating IP owns go through their own API (Neutron's 409).
ROUTER_OWNED = ("network:router_interface", "network:router_gateway", "network:floatingip")


def remove_port(s: Session, port: m.Port) -> None:
    """Delete a port; floating IPs pointing at it are disassociated."""
    from gureum.network import floatingips

    floatingips.disassociate_port(s, port.id)
    resources.drop_tags(s, port.id)
    s.delete(port)
    s.flush()
