"""The networking service Compute calls: ports for an instance, their bindings, their release.

The conductor (and the Compute API, to answer synchronously) call these with
an open session; the caller owns the transaction, so an allocation that fails
half-way leaves nothing behind. Requests are Nova's ``networks`` entries:
``{"uuid": net}``, ``{"uuid": net, "fixed_ip": ip}``, ``{"port": port}``, or the
strings ``"auto"`` / ``"none"``; an empty list or None means "not specified"
(Nova before 2.37): the one usable network if there is one, nothing if there
is none. Errors carry Nova's wording and status (a
missing network is a 400 in Nova's servers API, a port in use a 409).

Ports Compute creates go with the instance; ports the user created and
handed over are only detached when the instance goes (S11).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound
from gureum.network import bindings, policy, ports, resources, secgroups
from gureum.network import models as m

Requests = list[dict[str, Any]] | str | None
DEFAULT_AZ = "nova"


# -- validation -----------------------------------------------------------------------

def _usable(s: Session, project_id: str) -> list[m.Network]:
    """Networks "auto" may pick from: the project's own, else the shared ones."""
    order = (m.Network.created_at, m.Network.id)
    own = list(s.scalars(select(m.Network).where(
        m.Network.project_id == project_id, m.Network.external.is_(False)).order_by(*order)))
    if own:
        return own
    return [net for net in s.scalars(select(m.Network).where(
        m.Network.external.is_(False)).order_by(*order)) if _shared_with(net, project_id)]


def _shared_with(net: m.Network, project_id: str) -> bool:
    """Shared with every project, or with this one by an RBAC policy (access_as_shared)."""
    return net.shared or any(r.action == policy.RBAC_SHARED and
                             r.target_project in (project_id, "*")
                             for r in net.rbac_entries)


def _auto_network(s: Session, project_id: str, required: bool) -> m.Network | None:
    candidates = _usable(s, project_id)
    if len(candidates) > 1:
        raise Conflict("More than one possible network found. Specify network ID(s) to "
                       "select which one(s) to connect to.", nova_type="NetworkAmbiguous")
    if not candidates:
        if required:
            raise InvalidInput(f"Unable to automatically allocate a network for project "
                               f"{project_id}", nova_type="UnableToAutoAllocateNetwork")
        return None
    return candidates[0]


def _network(s: Session, project_id: str, is_admin: bool, network_id: str) -> m.Network:
    net = s.get(m.Network, network_id) if isinstance(network_id, str) else None
    if net is None or not (is_admin or net.project_id == project_id or net.external
                           or _shared_with(net, project_id)):
        raise InvalidInput(f"Network {network_id} could not be found.",
                           nova_type="NetworkNotFound")
    if net.external and not _shared_with(net, project_id) and not is_admin:
        raise Forbidden(f"It is not allowed to create an interface on external network "
                        f"{net.id}", nova_type="ExternalNetworkAttachForbidden")
    if not net.subnets:
        raise InvalidInput(f"Network {net.id} requires a subnet in order to boot instances "
                           "on.", nova_type="NetworkRequiresSubnet")
    return net


def _port(s: Session, project_id: str, is_admin: bool, port_id: str,
          instance_id: str | None) -> m.Port:
    port = s.get(m.Port, port_id) if isinstance(port_id, str) else None
    if port is None or not (is_admin or port.project_id == project_id
                            or port.network.project_id == project_id):
        raise InvalidInput(f"Port id {port_id} could not be found.", nova_type="PortNotFound")
    if port.device_id and port.device_id != instance_id:
        raise Conflict(f"Port {port_id} is still in use.", nova_type="PortInUse")
    if not port.fixed_ips:
        raise InvalidInput(f"Port {port_id} requires a FixedIP in order to be used.",
                           nova_type="PortRequiresFixedIP")
    return port


def _fixed_ip(s: Session, net: m.Network, value: Any) -> str:
    try:
        ip = ipaddress.ip_address(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid fixed IP address ({value})",
                           nova_type="InvalidInput") from None
    if not any(ip in ipaddress.ip_network(sn.cidr) for sn in net.subnets):
        raise InvalidInput(f"Fixed IP address {ip} is not a valid IP for any of the subnets "
                           f"on network {net.id}.", nova_type="InvalidInput")
    holder = s.scalar(select(m.Port).join(m.IPAllocation).where(
        m.IPAllocation.network_id == net.id, m.IPAllocation.ip_address == str(ip)))
    if holder is not None:
        raise InvalidInput(f"Fixed IP address {ip} is already in use on instance "
                           f"{holder.device_id or holder.id}.", nova_type="FixedIpAlreadyInUse")
    return str(ip)


Plan = list[tuple[m.Network, m.Port | None, str | None]]


def _tags(requests: Requests) -> list[str | None]:
    """The device role tag of each requested NIC (Nova's ``networks[].tag``)."""
    if not isinstance(requests, list):
        return []
    return [r.get("tag") if isinstance(r, dict) and isinstance(r.get("tag"), str) else None
            for r in requests]


def _plan(s: Session, project_id: str, is_admin: bool, requests: Requests,
          instance_id: str | None = None) -> Plan:
    """(network, existing port or None, fixed ip or None) per NIC to attach."""
    if requests == "none":
        return []
    if requests is None or requests == "auto" or requests == []:
        net = _auto_network(s, project_id, required=requests == "auto")
        if net is None:
            return []
        _network(s, project_id, is_admin, net.id)
        return [(net, None, None)]
    if not isinstance(requests, list):
        raise InvalidInput("Bad networks format: expected a list, 'auto' or 'none'.")
    plan: Plan = []
    seen_ports: set[str] = set()
    for request in requests:
        if not isinstance(request, dict):
            raise InvalidInput("Bad networks format: each network is an object.")
        if request.get("port"):
            port = _port(s, project_id, is_admin, request["port"], instance_id)
            if port.id in seen_ports:
                raise InvalidInput(f"Port {port.id} is requested more than once.")
            seen_ports.add(port.id)
            plan.append((port.network, port, None))
        elif request.get("uuid"):
            net = _network(s, project_id, is_admin, request["uuid"])
            fixed = request.get("fixed_ip")
            plan.append((net, None, _fixed_ip(s, net, fixed) if fixed else None))
        else:
            raise InvalidInput("Bad networks format: each network needs a 'uuid' or a "
                               "'port'.")
    return plan


def validate_requested_networks(s: Session, project_id: str, is_admin: bool,
                                requests: Requests, count: int = 1) -> None:
    """Raise Nova's error for requests that cannot be satisfied; None when they can.

    ``count`` is the number of instances asked for (the port quota covers them all).
    """
    plan = _plan(s, project_id, is_admin, requests)
    fixed = [ip for _, _, ip in plan if ip]
    if fixed and count > 1:
        raise InvalidInput("max_count cannot be greater than 1 if an fixed_ip is specified.",
                           nova_type="InvalidFixedIpAndMaxCountRequest")
    ports_needed = sum(1 for _, port, _ in plan if port is None) * count
    if ports_needed:
        limit = resources.quota_limits(s, project_id)["port"]
        if limit >= 0 and resources.usage(s, project_id, "port") + ports_needed > limit:
            raise Forbidden("Maximum number of ports exceeded",
                            nova_type="PortLimitExceeded")


# -- allocation -----------------------------------------------------------------------

def _instance_ports(s: Session, instance_id: str) -> list[m.Port]:
    return list(s.scalars(select(m.Port).where(m.Port.device_id == instance_id).order_by(
        m.Port.device_index.is_(None), m.Port.device_index, m.Port.created_at, m.Port.id)))


def _floating_ips(port: m.Port) -> list[dict[str, Any]]:
    """The floating IPs associated with the port, as Nova's network_info lists them."""
    from gureum.network import l3_models as l3

    s = object_session(port)
    if s is None:
        return []
    found = s.scalars(select(l3.FloatingIP.floating_ip_address).where(
        l3.FloatingIP.fixed_port_id == port.id).order_by(l3.FloatingIP.floating_ip_address))
    return [{"ip_address": ip, "version": ipaddress.ip_address(ip).version} for ip in found]


def _vif(port: m.Port, host: str | None = None) -> dict[str, Any]:
    """The port as Compute's network_info shows it: bound as its active binding says,
    or (``host``) as its binding for that host says, active or not."""
    binding = port.active_binding() if host is None else bindings.binding_for(port, host)
    subnets = {sn.id: sn for sn in port.network.subnets}
    return {
        "port_id": port.id, "network_id": port.network_id,
        "network_name": port.network.name, "mac_address": port.mac_address,
        "fixed_ips": [{"ip_address": a.ip_address, "subnet_id": a.subnet_id,
                       "version": ipaddress.ip_address(a.ip_address).version}
                      for a in port.fixed_ips],
        "mtu": port.network.mtu,
        "vif_type": binding.vif_type if binding else bindings.UNBOUND,
        "vif_details": dict(binding.vif_details) if binding else {},
        "vnic_type": binding.vnic_type if binding else "normal",
        "binding_host_id": (binding.host or None) if binding else None,
        "floating_ips": _floating_ips(port),
        "preexisting": not port.delete_with_instance,
        "active": port.status == m.ACTIVE,
        "device_index": port.device_index,
        "tag": port.device_tag,
        "subnets": [{"id": sn.id, "cidr": sn.cidr, "ip_version": sn.ip_version,
                     "gateway_ip": sn.gateway_ip, "enable_dhcp": sn.enable_dhcp,
                     "ipv6_address_mode": sn.ipv6_address_mode,
                     "ipv6_ra_mode": sn.ipv6_ra_mode,
                     "dns_nameservers": list(sn.dns_nameservers),
                     "host_routes": [dict(r) for r in sn.host_routes]}
                    for sn in (subnets[a.subnet_id] for a in port.fixed_ips
                               if a.subnet_id in subnets)],
    }


def allocate_for_instance(s: Session, *, instance_id: str, project_id: str,
                          requests: Requests, host: str | None = None,
                          availability_zone: str | None = None, is_admin: bool = True,
                          security_groups: list[str] | None = None
                          ) -> list[dict[str, Any]]:
    """Ports for the instance's NICs, in request order; returns its network_info.

    The Compute API validated the requests with the caller's rights
    (``validate_requested_networks``); the conductor allocates on the caller's
    behalf, so by default it may use whatever the caller could (an admin's
    server on another project's network). Pass ``is_admin=False`` to have a
    member's rights checked again here.

    ``security_groups`` (names or ids, Nova's) go on the ports created here
    (not on the user's own ports, nor where the network has no port security);
    none or just ``default``: the networking default.

    Idempotent: when the instance already has ports (a resumed workflow), they
    are what it gets.
    """
    existing = _instance_ports(s, instance_id)
    if not existing:
        owner = f"compute:{availability_zone or DEFAULT_AZ}"
        group_ids = secgroups.ids_for_new_ports(s, project_id, security_groups)
        tags = _tags(requests)
        for index, (net, port, fixed_ip) in enumerate(
                _plan(s, project_id, is_admin, requests, instance_id)):
            tag = tags[index] if index < len(tags) else None
            if port is None:
                resources.check_quota(s, project_id, "port")
                body: dict[str, Any] = {"device_id": instance_id, "device_owner": owner,
                                        "device_index": index, "device_tag": tag}
                if fixed_ip:
                    body["fixed_ips"] = [{"ip_address": fixed_ip}]
                if group_ids is not None and net.port_security_enabled:
                    body["security_groups"] = group_ids
                ports.new_port(s, net, project_id, body, delete_with_instance=True)
            else:
                port.device_id, port.device_owner = instance_id, owner
                port.device_index, port.device_tag = index, tag
                resources.touch(port)
        s.flush()
    if host:
        bind_ports(s, instance_id, host)
    return network_info_for_instance(s, instance_id)


def bind_ports(s: Session, instance_id: str, host: str) -> None:
    """Bind every port of the instance to ``host``, details computed for that host (S5)."""
    for port in _instance_ports(s, instance_id):
        bindings.set_host(port, host)
        resources.touch(port)
    s.flush()


def prepare_bindings(s: Session, instance_id: str, host: str) -> list[dict[str, Any]]:
    """Before a live migration: an INACTIVE binding on ``host`` for every port of the
    instance (computed for that host, S5), beside the active one on the source.
    Idempotent (a binding already there is computed again). Returns the network_info
    the destination plugs from: the ports as bound on ``host``."""
    for port in _instance_ports(s, instance_id):
        existing = bindings.binding_for(port, host)
        if existing is not None and existing.status == m.BINDING_ACTIVE:
            continue  # already bound there (a resumed run after the cut-over)
        if existing is not None:
            bindings.update_binding(port, host)
        else:
            bindings.create_binding(port, host)
        resources.touch(port)
    s.flush()
    return network_info_for_instance(s, instance_id, host=host)


def activate_bindings(s: Session, instance_id: str, host: str) -> None:
    """At a live migration's cut-over: ``host``'s binding becomes the active one
    (computed for it again) and every other binding of the ports goes (the source's).
    A port without a binding for ``host`` is bound there afresh."""
    for port in _instance_ports(s, instance_id):
        binding = bindings.binding_for(port, host)
        if binding is None:
            bindings.set_host(port, host)
        elif binding.status != m.BINDING_ACTIVE:
            bindings.activate(port, host)
        for other in [b for b in port.bindings if b.host != host]:
            port.bindings.remove(other)
        bindings.refresh_status(port)
        resources.touch(port)
    s.flush()


def discard_bindings(s: Session, instance_id: str, host: str) -> None:
    """A live migration rolled back: the INACTIVE bindings it made on ``host`` go; the
    active ones (the source's) stay as they are."""
    for port in _instance_ports(s, instance_id):
        if bindings.drop_inactive(port, host):
            resources.touch(port)
    s.flush()


def unbind_ports(s: Session, instance_id: str) -> None:
    for port in _instance_ports(s, instance_id):
        bindings.set_host(port, "", {})
        resources.touch(port)
    s.flush()


def deallocate_for_instance(s: Session, instance_id: str) -> None:
    """Delete the ports Compute made; detach (keep) the ones the user made (S11)."""
    for port in _instance_ports(s, instance_id):
        if port.delete_with_instance:
            ports.remove_port(s, port)
        else:
            ports.detach(port)
            resources.touch(port)
    s.flush()


# -- interfaces attached to a running server (Nova's os-interface) ---------------------

def _as_not_found(exc: InvalidInput) -> NotFound | InvalidInput:
    """The servers API answers a missing network or port with 400; os-interface 404."""
    if exc.details.get("nova_type") in ("NetworkNotFound", "PortNotFound"):
        return NotFound(exc.message, nova_type=exc.details["nova_type"])
    return exc


def attach_port(s: Session, *, instance_id: str, project_id: str, is_admin: bool,
                host: str | None, availability_zone: str | None = None,
                port_id: str | None = None, network_id: str | None = None,
                fixed_ip: str | None = None, security_groups: list[str] | None = None,
                tag: str | None = None) -> dict[str, Any]:
    """One more NIC for the instance: the user's port (``port_id``, 409 PortInUse when
    another device has it) or a new port on ``network_id`` (optionally with
    ``fixed_ip``; neither: the one usable network). It takes the lowest free NIC
    place (``device_index``) and is bound to ``host``; a port made here gets the
    server's ``security_groups`` (names, Nova's). Returns its network_info entry.
    """
    used = {p.device_index for p in _instance_ports(s, instance_id)}
    index = next(i for i in range(len(used) + 1) if i not in used)
    owner = f"compute:{availability_zone or DEFAULT_AZ}"
    try:
        if port_id:
            port = _port(s, project_id, is_admin, port_id, instance_id)
            if port.device_id == instance_id:
                raise Conflict(f"Port {port_id} is still in use.", nova_type="PortInUse")
            port.device_id, port.device_owner, port.device_index = instance_id, owner, index
            port.device_tag = tag
            resources.touch(port)
        else:
            net = (_network(s, project_id, is_admin, network_id) if network_id
                   else _auto_network(s, project_id, required=True))
            assert net is not None
            if not network_id:
                _network(s, project_id, is_admin, net.id)
            fixed = _fixed_ip(s, net, fixed_ip) if fixed_ip else None
            resources.check_quota(s, project_id, "port")
            body: dict[str, Any] = {"device_id": instance_id, "device_owner": owner,
                                    "device_index": index, "device_tag": tag}
            if fixed:
                body["fixed_ips"] = [{"ip_address": fixed}]
            group_ids = secgroups.ids_for_new_ports(s, project_id, security_groups)
            if group_ids is not None and net.port_security_enabled:
                body["security_groups"] = group_ids
            port = ports.new_port(s, net, project_id, body, delete_with_instance=True)
    except InvalidInput as exc:
        raise _as_not_found(exc) from None
    if host:
        bindings.set_host(port, host)
    s.flush()
    return _vif(port)


def instance_port(s: Session, instance_id: str, port_id: str) -> m.Port | None:
    """The instance's port ``port_id`` (None: no such port, or not the instance's)."""
    port = s.get(m.Port, port_id) if isinstance(port_id, str) else None
    return port if port is not None and port.device_id == instance_id else None


def release_port(s: Session, instance_id: str, port_id: str) -> None:
    """A NIC detached: the port goes if Compute made it, else it is detached and kept
    (S11)."""
    port = instance_port(s, instance_id, port_id)
    if port is None:
        return
    if port.delete_with_instance:
        ports.remove_port(s, port)
    else:
        ports.detach(port)
        resources.touch(port)
    s.flush()


def report_host_vif(s: Session, host: str, binary: str, vif: dict[str, Any]) -> None:
    """A compute host says how it plugs ports (``HostResources.vif``): bindings to the
    host get that ``vif_type`` and ``vif_details`` from now on."""
    vif_type = vif.get("vif_type")
    if not isinstance(vif_type, str) or not vif_type:
        return
    details = vif.get("vif_details")
    bindings.report_agent(s, host, binary, str(vif.get("agent_type") or f"{vif_type} agent"),
                          {"vif_type": vif_type,
                           "vif_details": dict(details) if isinstance(details, dict) else {}})


def network_info_for_instance(s: Session, instance_id: str, host: str | None = None
                              ) -> list[dict[str, Any]]:
    """The instance's ports (Nova's network_info), bound as their active bindings say,
    or as their bindings for ``host`` say (a live migration's destination)."""
    return [_vif(p, host) for p in _instance_ports(s, instance_id)]


def instance_ids_with_ip(s: Session, ip_regex_or_ip: str) -> list[str]:
    """Instances with an address matching Nova's ``?ip=`` filter (a regex matched at the start)."""
    try:
        pattern = re.compile(ip_regex_or_ip)
    except (re.error, TypeError):
        pattern = re.compile(re.escape(str(ip_regex_or_ip)))
    stmt = (select(m.Port.device_id, m.IPAllocation.ip_address)
            .join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id)
            .where(m.Port.device_id != "", m.Port.device_owner.like("compute:%")))
    literal = re.fullmatch(r"[0-9a-fA-F:.]+", ip_regex_or_ip or "")
    if literal:
        # A plain address: '.' is "any character" to the regex, '_' to LIKE.
        stmt = stmt.where(m.IPAllocation.ip_address.like(
            ip_regex_or_ip.replace(".", "_") + "%"))
    found = {device for device, ip in s.execute(stmt) if pattern.match(ip)}
    return sorted(found)


def floating_ip_pool_names(s: Session) -> list[str]:
    """Nova's floating IP pools: the external networks, by name (id when unnamed)."""
    rows = s.execute(select(m.Network.id, m.Network.name)
                     .where(m.Network.external.is_(True))
                     .order_by(m.Network.created_at, m.Network.id)).all()
    return [name or id_ for id_, name in rows]
