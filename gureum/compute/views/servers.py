"""Server wire shapes (Nova's views/servers.py), one place for every microversion."""

from __future__ import annotations

from typing import Any

from gureum.api.microversion import at_least
from gureum.api.web import Request
from gureum.compute import states
from gureum.compute.models import Instance
from gureum.compute.views.common import bookmark, host_id, isotime, links, usg_time
from gureum.context import RequestContext


def status(inst: Instance) -> str:
    return "DELETED" if inst.deleted else states.status_of(inst.vm_state, inst.task_state)


def addresses(inst: Instance) -> dict[str, list[dict[str, Any]]]:
    if inst.vm_state == states.BUILDING and not inst.network_info:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for vif in inst.network_info or []:
        name = vif.get("network_name") or vif.get("network_id", "")
        entries = out.setdefault(name, [])
        for ip in vif.get("fixed_ips", []):
            entries.append({"version": ip.get("version", 4), "addr": ip["ip_address"],
                            "OS-EXT-IPS:type": "fixed",
                            "OS-EXT-IPS-MAC:mac_addr": vif.get("mac_address")})
        for fip in vif.get("floating_ips", []):
            entries.append({"version": fip.get("version", 4), "addr": fip["ip_address"],
                            "OS-EXT-IPS:type": "floating",
                            "OS-EXT-IPS-MAC:mac_addr": vif.get("mac_address")})
    return out


def ips(inst: Instance) -> dict[str, list[dict[str, Any]]]:
    """/servers/{id}/ips: network label → [{"version", "addr"}] (no type, no MAC)."""
    return {label: [{"version": a["version"], "addr": a["addr"]} for a in entries]
            for label, entries in addresses(inst).items()}


def flavor(req: Request, inst: Instance, show_extra_specs: bool) -> dict[str, Any]:
    f = inst.flavor or {}
    if at_least(req, "2.47"):
        out = {"vcpus": f.get("vcpus"), "ram": f.get("ram"), "disk": f.get("disk"),
               "ephemeral": f.get("ephemeral", 0), "swap": f.get("swap", 0),
               "original_name": f.get("name")}
        if show_extra_specs:
            out["extra_specs"] = dict(f.get("extra_specs") or {})
        return out
    return {"id": str(inst.flavor_id), "links": bookmark(req, "flavors", inst.flavor_id)}


def image(req: Request, inst: Instance) -> dict[str, Any] | str:
    if not inst.image_ref:
        return ""
    out: dict[str, Any] = {"id": inst.image_ref,
                           "links": bookmark(req, "images", inst.image_ref)}
    if at_least(req, "2.98"):
        out["properties"] = dict((inst.system_metadata or {}).get("image_properties", {}))
    return out


def fault(ctx: RequestContext, inst: Instance) -> dict[str, Any] | None:
    f = inst.fault
    if not f:
        return None
    out = {"code": f.get("code", 500), "created": f.get("created"), "message": f.get("message")}
    if f.get("details") and (ctx.is_admin or f.get("code") != 500):
        out["details"] = f["details"]
    return out


def basic(req: Request, inst: Instance) -> dict[str, Any]:
    return {"id": inst.id, "name": inst.name, "links": links(req, "servers", inst.id)}


def created(req: Request, inst: Instance, security_groups: list[dict[str, str]],
            admin_pass: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": inst.id, "links": links(req, "servers", inst.id),
                           "OS-DCF:diskConfig": "MANUAL", "security_groups": security_groups}
    if admin_pass:
        out["adminPass"] = admin_pass
    return out


def show(req: Request, inst: Instance, ctx: RequestContext, *, for_list: bool = False,
         show_user_data: bool = True, host_status: str | None = None) -> dict[str, Any]:
    """The detailed server (GET /servers/{id} and each item of /servers/detail)."""
    st = status(inst)
    admin = ctx.is_admin
    server: dict[str, Any] = {
        "accessIPv4": inst.access_ip_v4 or "", "accessIPv6": inst.access_ip_v6 or "",
        "addresses": addresses(inst), "created": isotime(inst.created_at),
        "flavor": flavor(req, inst, show_extra_specs=at_least(req, "2.47")),
        "hostId": host_id(inst.host, inst.project_id), "id": inst.id,
        "image": image(req, inst), "links": links(req, "servers", inst.id),
        "metadata": dict(inst.metadata_ or {}), "name": inst.name, "status": st,
        "tenant_id": inst.project_id, "user_id": inst.user_id,
        "updated": isotime(inst.updated_at), "OS-DCF:diskConfig": "MANUAL",
    }
    # Nova shows a fault only in ERROR and DELETED; gureum also shows why a move
    # failed and was rolled back while the server stays ACTIVE (S2). A later
    # successful move or hard reboot clears it.
    f = fault(ctx, inst)
    if f:
        server["fault"] = f
    if st in ("BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"):
        server["progress"] = inst.progress or 0
    server["OS-EXT-AZ:availability_zone"] = inst.availability_zone or ""
    server["config_drive"] = "True" if inst.config_drive else ""
    server["key_name"] = inst.key_name
    server["OS-SRV-USG:launched_at"] = usg_time(inst.launched_at)
    server["OS-SRV-USG:terminated_at"] = usg_time(inst.terminated_at)
    server["security_groups"] = [{"name": name} for name in (inst.security_groups or [])]
    if admin:
        server["OS-EXT-SRV-ATTR:host"] = inst.host
        server["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{inst.seq:08x}"
        server["OS-EXT-SRV-ATTR:hypervisor_hostname"] = inst.node
        if at_least(req, "2.3"):
            server["OS-EXT-SRV-ATTR:hostname"] = inst.hostname
            server["OS-EXT-SRV-ATTR:kernel_id"] = ""
            server["OS-EXT-SRV-ATTR:launch_index"] = inst.launch_index
            server["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
            server["OS-EXT-SRV-ATTR:reservation_id"] = inst.reservation_id
            server["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
            if show_user_data:
                server["OS-EXT-SRV-ATTR:user_data"] = inst.user_data
    server["OS-EXT-STS:task_state"] = inst.task_state
    server["OS-EXT-STS:vm_state"] = inst.vm_state
    server["OS-EXT-STS:power_state"] = inst.power_state
    server["os-extended-volumes:volumes_attached"] = [
        ({"id": b["volume_id"], "delete_on_termination": bool(b.get(
            "delete_on_termination"))} if at_least(req, "2.3") else {"id": b["volume_id"]})
        for b in (inst.block_device_mapping or []) if b.get("volume_id")]
    if at_least(req, "2.9"):
        server["locked"] = bool(inst.locked)
    if at_least(req, "2.16") and host_status is not None:
        server["host_status"] = host_status
    if at_least(req, "2.19"):
        server["description"] = inst.description
    if at_least(req, "2.26"):
        server["tags"] = list(inst.tags or [])
    if at_least(req, "2.63"):
        server["trusted_image_certificates"] = None
    if at_least(req, "2.71") and not for_list:
        server["server_groups"] = [inst.server_group_id] if inst.server_group_id else []
    if at_least(req, "2.73"):
        server["locked_reason"] = inst.locked_reason
    if at_least(req, "2.90") and not admin:
        server["OS-EXT-SRV-ATTR:hostname"] = inst.hostname
    if at_least(req, "2.96"):
        server["pinned_availability_zone"] = inst.requested_az
    if at_least(req, "2.100"):
        server["scheduler_hints"] = dict(inst.scheduler_hints or {})
    return server
