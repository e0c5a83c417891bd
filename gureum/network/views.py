"""Wire shapes of networks, subnets and ports, as Neutron's API returns them.

Attributes Neutron's policy hides from non-admins (provider:*, binding:* but
vnic_type) are left out of their responses entirely, as Neutron does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gureum.context import RequestContext
from gureum.network import address_scopes, policy
from gureum.network import models as m

AVAILABILITY_ZONE = "nova"
DNS_DOMAIN = "openstacklocal."


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _standard(row: Any) -> dict[str, Any]:
    return {"tenant_id": row.project_id, "project_id": row.project_id,
            "description": row.description, "revision_number": row.revision_number,
            "tags": [t.tag for t in row.tags], "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at)}


def network(n: m.Network, ctx: RequestContext) -> dict[str, Any]:
    scopes = address_scopes.network_scopes(n)
    out: dict[str, Any] = {
        "id": n.id, "name": n.name, "admin_state_up": n.admin_state_up, "status": n.status,
        "shared": n.shared or policy.granted(ctx, n, policy.RBAC_SHARED), "mtu": n.mtu,
        "subnets": [sn.id for sn in n.subnets],
        "router:external": n.external, "port_security_enabled": n.port_security_enabled,
        "availability_zone_hints": list(n.availability_zone_hints or []),
        "availability_zones": [AVAILABILITY_ZONE], "is_default": n.is_default,
        "ipv4_address_scope": scopes[4], "ipv6_address_scope": scopes[6], "l2_adjacency": True,
        "qos_policy_id": None, "dns_domain": n.dns_domain, **_standard(n),
    }
    if ctx.is_admin:
        out["provider:network_type"] = n.network_type
        out["provider:physical_network"] = n.physical_network or None
        out["provider:segmentation_id"] = n.segmentation_id
    return out


def subnet(sn: m.Subnet, ctx: RequestContext) -> dict[str, Any]:
    return {
        "id": sn.id, "name": sn.name, "network_id": sn.network_id,
        "ip_version": sn.ip_version, "cidr": sn.cidr, "gateway_ip": sn.gateway_ip,
        "allocation_pools": [dict(p) for p in sn.allocation_pools],
        "dns_nameservers": list(sn.dns_nameservers),
        "host_routes": [dict(r) for r in sn.host_routes], "enable_dhcp": sn.enable_dhcp,
        "ipv6_ra_mode": sn.ipv6_ra_mode, "ipv6_address_mode": sn.ipv6_address_mode,
        "subnetpool_id": sn.subnetpool_id, "segment_id": None,
        "service_types": list(sn.service_types),
        "dns_publish_fixed_ip": sn.dns_publish_fixed_ip,
        "router:external": sn.network.external, **_standard(sn),
    }


def host_name_for(ip: str) -> str:
    return "host-" + ip.replace(".", "-").replace(":", "-")


def dns_assignment(p: m.Port) -> list[dict[str, str]]:
    out = []
    for a in p.fixed_ips:
        hostname = p.dns_name or host_name_for(a.ip_address)
        out.append({"ip_address": a.ip_address, "hostname": hostname,
                    "fqdn": f"{hostname}.{DNS_DOMAIN}"})
    return out


def port(p: m.Port, ctx: RequestContext) -> dict[str, Any]:
    binding = p.active_binding()
    out: dict[str, Any] = {
        "id": p.id, "name": p.name, "network_id": p.network_id,
        "mac_address": p.mac_address, "admin_state_up": p.admin_state_up,
        "status": p.status, "device_id": p.device_id, "device_owner": p.device_owner,
        "fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                      for a in p.fixed_ips],
        "allowed_address_pairs": [dict(pair) for pair in p.allowed_address_pairs],
        "security_groups": [g.id for g in p.security_groups],
        "port_security_enabled": p.port_security_enabled,
        "dns_name": p.dns_name, "dns_domain": p.dns_domain,
        "dns_assignment": dns_assignment(p), "ip_allocation": "immediate",
        "extra_dhcp_opts": [dict(o) for o in p.extra_dhcp_opts or []],
        "binding:vnic_type": binding.vnic_type if binding else "normal",
        "qos_policy_id": None, "qos_network_policy_id": None, "resource_request": None,
        **_standard(p),
    }
    if ctx.is_admin:
        out["binding:host_id"] = binding.host if binding else ""
        out["binding:profile"] = dict(binding.profile) if binding else {}
        out["binding:vif_type"] = binding.vif_type if binding else "unbound"
        out["binding:vif_details"] = dict(binding.vif_details) if binding else {}
    return out


def binding(b: m.PortBinding) -> dict[str, Any]:
    """One binding of a port (``binding-extended``): its host, status and what it plugs."""
    return {"host": b.host, "vif_type": b.vif_type, "vnic_type": b.vnic_type,
            "status": b.status, "profile": dict(b.profile),
            "vif_details": dict(b.vif_details), "project_id": b.port.project_id}


def only_fields(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """``?fields=a&fields=b``: just those attributes (unknown names are ignored)."""
    if not fields:
        return item
    return {k: v for k, v in item.items() if k in fields}
