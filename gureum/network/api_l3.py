"""/v2.0/routers, /v2.0/floatingips (+ port_forwardings), /v2.0/agents and the
scheduler routes (l3-routers, l3-agents, dhcp-networks, dhcp-agents).

A change that alters what a host carries is told to the conductor once its
transaction has committed ("network changed", best effort: the agents also
resync on a period), which schedules what needs an agent and tells the agents.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gureum.api.transaction import AfterTransaction
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.context import RequestContext
from gureum.network import agents as agent_ops
from gureum.network import errors as e
from gureum.network import floatingips as fip_ops
from gureum.network import l3_listing, l3_views, listing, policy, resources, schemas, views
from gureum.network import routers as router_ops

log = logging.getLogger("gureum.network.api")
router = Router()

NOTICE_TOPIC = "netconductor"

_str, _obj, _bool = schemas._str, schemas._obj, schemas._bool
_route = _obj({"destination": _str(64, 1), "nexthop": _str(64, 1)},
              ("destination", "nexthop"))
_fixed = _obj({"subnet_id": _str(64, 1), "ip_address": _str(64, 1)})
_gateway = {"type": ["object", "null"], "properties": {
    "network_id": _str(64, 1), "enable_snat": _bool,
    "external_fixed_ips": {"type": "array", "maxItems": 16, "items": _fixed},
    "qos_policy_id": {"type": "null"}}, "additionalProperties": False}
_zones = {"type": "array", "maxItems": 10, "items": _str(255, 1)}
_router_common = {"name": _str(), "description": _str(), "admin_state_up": _bool,
                  "external_gateway_info": _gateway, "ha": _bool, "distributed": _bool}
ROUTER_CREATE = _obj({**_router_common, "project_id": _str(64, 1), "tenant_id": _str(64, 1),
                      "availability_zone_hints": _zones, "tags": schemas._tags,
                      "flavor_id": {"type": "null"}})
ROUTER_UPDATE = _obj({**_router_common,
                      "routes": {"type": ["array", "null"], "maxItems": 100, "items": _route}})
FIP_CREATE = _obj({"floating_network_id": _str(64, 1), "port_id": _str(64, 1, nullable=True),
                   "fixed_ip_address": _str(64, 1, nullable=True),
                   "floating_ip_address": _str(64, 1), "subnet_id": _str(64, 1),
                   "description": _str(), "project_id": _str(64, 1),
                   "tenant_id": _str(64, 1), "dns_name": _str(), "dns_domain": _str(),
                   "tags": schemas._tags, "qos_policy_id": {"type": "null"}},
                  ("floating_network_id",))
FIP_UPDATE = _obj({"port_id": _str(64, 1, nullable=True),
                   "fixed_ip_address": _str(64, 1, nullable=True), "description": _str(),
                   "qos_policy_id": {"type": "null"}})
_pf_common = {"protocol": _str(16, 1), "internal_ip_address": _str(64, 1),
              "internal_port": {"type": ["integer", "string"]},
              "external_port": {"type": ["integer", "string"]},
              "internal_port_id": _str(64, 1), "description": _str()}
PF_BODY = _obj(_pf_common)
AGENT_UPDATE = _obj({"admin_state_up": _bool, "description": _str(255, nullable=True)})


# -- helpers ----------------------------------------------------------------------------

def down_time(req: Request) -> float:
    return float(req.app_state.settings.network.agent_down_time)


def notify(req: Request) -> None:
    """Tell the conductor something a host carries changed; never waits, never fails."""
    bus = getattr(req.app_state, "bus", None)
    if bus is None or req.loop is None:
        return
    try:
        future = asyncio.run_coroutine_threadsafe(
            bus.cast(NOTICE_TOPIC, "network_changed", {}), req.loop)
        future.add_done_callback(_log_failure)
    except RuntimeError:  # the loop is closing
        pass


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("network changed notice not delivered: %s", future.exception())


def changed(req: Request, response: Response) -> AfterTransaction:
    def work() -> Response:
        notify(req)
        return response
    return AfterTransaction(work)


def _one(req: Request, singular: str, schema: dict[str, Any]) -> dict[str, Any]:
    items, bulk = schemas.body_items(req.json(), singular, singular + "s", schema)
    if bulk:
        raise e.bad_request(f"Bulk creation of {singular}s is not supported.")
    return items[0]


def _listed(req: Request, s: Session, ctx: RequestContext, coll: listing.Collection,
            visible: Any, plural: str, view: Any) -> Response:
    page = listing.list_page(req, s, ctx, coll, visible)
    body: dict[str, Any] = {plural: [views.only_fields(view(row), page.fields)
                                     for row in page.rows]}
    if page.links:
        body[f"{plural}_links"] = page.links
    return json_response(body)


def _fields(req: Request) -> list[str] | None:
    return [f for v in req.query.get("fields", []) for f in v.split(",") if f] or None


# -- routers ----------------------------------------------------------------------------

@router.get("/v2.0/routers", tx=True)
def list_routers(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_router")
    return _listed(req, s, ctx, l3_listing.ROUTERS, router_ops.router_visible(ctx), "routers",
                   lambda r: l3_views.router(s, r, ctx))


@router.get("/v2.0/routers/{router_id}", tx=True)
def show_router(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_router")
    r = router_ops.get_router(s, ctx, req.path_params["router_id"])
    return json_response({"router": views.only_fields(l3_views.router(s, r, ctx),
                                                      _fields(req))})


@router.post("/v2.0/routers", tx=True)
def create_router(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "create_router")
    r = router_ops.create_router(s, ctx, _one(req, "router", ROUTER_CREATE), down_time(req))
    s.flush()
    return changed(req, json_response({"router": l3_views.router(s, r, ctx)}, 201))


@router.put("/v2.0/routers/{router_id}", tx=True)
def update_router(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "update_router")
    body = schemas.update_item(req.json(), "router", ROUTER_UPDATE, ())
    r = router_ops.update_router(s, ctx, req.path_params["router_id"], body, down_time(req))
    s.flush()
    return changed(req, json_response({"router": l3_views.router(s, r, ctx)}))


@router.delete("/v2.0/routers/{router_id}", tx=True)
def delete_router(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "delete_router")
    router_ops.delete_router(s, ctx, req.path_params["router_id"])
    return changed(req, empty())


@router.put("/v2.0/routers/{router_id}/add_router_interface", tx=True)
def add_router_interface(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "add_router_interface")
    info = router_ops.add_interface(s, ctx, req.path_params["router_id"], req.json(),
                                    down_time(req))
    return changed(req, json_response(info))


@router.put("/v2.0/routers/{router_id}/remove_router_interface", tx=True)
def remove_router_interface(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "remove_router_interface")
    info = router_ops.remove_interface(s, ctx, req.path_params["router_id"], req.json())
    return changed(req, json_response(info))


@router.put("/v2.0/routers/{router_id}/add_extraroutes", tx=True)
def add_extraroutes(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "add_extraroutes")
    r = router_ops.add_extraroutes(s, ctx, req.path_params["router_id"], req.json())
    s.flush()
    return changed(req, json_response({"router": l3_views.router(s, r, ctx)}))


@router.put("/v2.0/routers/{router_id}/remove_extraroutes", tx=True)
def remove_extraroutes(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "remove_extraroutes")
    r = router_ops.remove_extraroutes(s, ctx, req.path_params["router_id"], req.json())
    s.flush()
    return changed(req, json_response({"router": l3_views.router(s, r, ctx)}))


@router.get("/v2.0/routers/{router_id}/l3-agents", tx=True)
def list_router_agents(req: Request, s: Session) -> Response:
    ctx = policy.admin(req.context, "get_l3-agents")
    r = router_ops.get_router(s, ctx, req.path_params["router_id"])
    found = agent_ops.router_agents(s, r.id)
    dt = down_time(req)
    out = []
    for i, a in enumerate(found):
        state = None
        if r.ha:
            state = "active" if i == 0 else "standby"
        out.append(l3_views.agent(a, dt, state))
    return json_response({"agents": out})


# -- floating IPs -----------------------------------------------------------------------

@router.get("/v2.0/floatingips", tx=True)
def list_floatingips(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_floatingip")
    return _listed(req, s, ctx, l3_listing.FLOATINGIPS, fip_ops.floatingip_visible(ctx),
                   "floatingips", lambda f: l3_views.floatingip(s, f, ctx))


@router.get("/v2.0/floatingips/{fip_id}", tx=True)
def show_floatingip(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_floatingip")
    f = fip_ops.get_floatingip(s, ctx, req.path_params["fip_id"])
    return json_response({"floatingip": views.only_fields(l3_views.floatingip(s, f, ctx),
                                                          _fields(req))})


@router.post("/v2.0/floatingips", tx=True)
def create_floatingip(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "create_floatingip")
    f = fip_ops.create_floatingip(s, ctx, _one(req, "floatingip", FIP_CREATE))
    s.flush()
    return changed(req, json_response({"floatingip": l3_views.floatingip(s, f, ctx)}, 201))


@router.put("/v2.0/floatingips/{fip_id}", tx=True)
def update_floatingip(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "update_floatingip")
    body = schemas.update_item(req.json(), "floatingip", FIP_UPDATE, ())
    f = fip_ops.update_floatingip(s, ctx, req.path_params["fip_id"], body)
    s.flush()
    return changed(req, json_response({"floatingip": l3_views.floatingip(s, f, ctx)}))


@router.delete("/v2.0/floatingips/{fip_id}", tx=True)
def delete_floatingip(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "delete_floatingip")
    fip_ops.delete_floatingip(s, ctx, req.path_params["fip_id"])
    return changed(req, empty())


_PF = "/v2.0/floatingips/{fip_id}/port_forwardings"


@router.get(_PF, tx=True)
def list_port_forwardings(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_floatingip_port_forwarding")
    f = fip_ops.get_floatingip(s, ctx, req.path_params["fip_id"])
    items = [l3_views.port_forwarding(pf) for pf in f.port_forwardings]
    for key in ("protocol", "internal_port_id", "external_port", "id"):
        wanted = req.query.get(key)
        if wanted:
            items = [i for i in items if str(i[key]) in wanted]
    fields = _fields(req)
    return json_response({"port_forwardings": [views.only_fields(i, fields) for i in items]})


@router.get(_PF + "/{pf_id}", tx=True)
def show_port_forwarding(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_floatingip_port_forwarding")
    f = fip_ops.get_floatingip(s, ctx, req.path_params["fip_id"])
    pf = fip_ops.get_port_forwarding(f, req.path_params["pf_id"])
    return json_response({"port_forwarding": l3_views.port_forwarding(pf)})


@router.post(_PF, tx=True)
def create_port_forwarding(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "create_floatingip_port_forwarding")
    body = req.json()
    if not isinstance(body, dict) or set(body) != {"port_forwarding"}:
        raise e.bad_request("Resource body required: expected 'port_forwarding'.")
    item = schemas.check(PF_BODY, body["port_forwarding"], "port_forwarding")
    pf = fip_ops.create_port_forwarding(s, ctx, req.path_params["fip_id"], item)
    return changed(req, json_response({"port_forwarding": l3_views.port_forwarding(pf)}, 201))


@router.put(_PF + "/{pf_id}", tx=True)
def update_port_forwarding(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "update_floatingip_port_forwarding")
    item = schemas.update_item(req.json(), "port_forwarding", PF_BODY, ())
    pf = fip_ops.update_port_forwarding(s, ctx, req.path_params["fip_id"],
                                        req.path_params["pf_id"], item)
    return changed(req, json_response({"port_forwarding": l3_views.port_forwarding(pf)}))


@router.delete(_PF + "/{pf_id}", tx=True)
def delete_port_forwarding(req: Request, s: Session) -> AfterTransaction:
    ctx = policy.writer(req.context, "delete_floatingip_port_forwarding")
    fip_ops.delete_port_forwarding(s, ctx, req.path_params["fip_id"], req.path_params["pf_id"])
    return changed(req, empty())


# -- agents -----------------------------------------------------------------------------

@router.get("/v2.0/agents", tx=True)
def list_agents(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_agent")
    if not ctx.is_admin:
        # Neutron leaves out of a list what its policy hides (get_agent: admins).
        return json_response({"agents": []})
    alive_filter = req.query.pop("alive", None)
    dt = down_time(req)
    page = listing.list_page(req, s, ctx, l3_listing.AGENTS, None)
    items = [l3_views.agent(a, dt) for a in page.rows]
    if alive_filter:
        wanted = {listing.to_bool(v, "alive") for v in alive_filter}
        items = [i for i in items if i["alive"] in wanted]
    return json_response({"agents": [views.only_fields(i, page.fields) for i in items]})


@router.get("/v2.0/agents/{agent_id}", tx=True)
def show_agent(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "get_agent")
    if not ctx.is_admin:
        # What its policy hides from a reader, Neutron answers as missing.
        agent_id = req.path_params["agent_id"]
        raise e.typed_not_found("AgentNotFound", f"Agent {agent_id} could not be found.")
    a = agent_ops.get_agent(s, req.path_params["agent_id"])
    return json_response({"agent": views.only_fields(l3_views.agent(a, down_time(req)),
                                                     _fields(req))})


@router.put("/v2.0/agents/{agent_id}", tx=True)
def update_agent(req: Request, s: Session) -> AfterTransaction:
    policy.admin(req.context, "update_agent")
    a = agent_ops.get_agent(s, req.path_params["agent_id"])
    body = schemas.update_item(req.json(), "agent", AGENT_UPDATE, ())
    if "admin_state_up" in body:
        a.admin_state_up = bool(body["admin_state_up"])
    if "description" in body:
        a.description = body["description"]
    s.flush()
    return changed(req, json_response({"agent": l3_views.agent(a, down_time(req))}))


@router.delete("/v2.0/agents/{agent_id}", tx=True)
def delete_agent(req: Request, s: Session) -> AfterTransaction:
    policy.admin(req.context, "delete_agent")
    agent_ops.delete_agent(s, agent_ops.get_agent(s, req.path_params["agent_id"]))
    return changed(req, empty())


def _id_body(req: Request, key: str) -> str:
    body = req.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "ha_chassis_priority"}  # OVN's
    if not isinstance(body, dict) or not isinstance(body.get(key), str) or not body[key]:
        raise e.bad_request(f"Failed to parse request. Required attribute '{key}' not "
                            "specified", key)
    return str(body[key])


@dataclass(frozen=True)
class Hosting:
    """What one type of agent hosts, for the admin's by-hand scheduling routes
    (``/v2.0/agents/{agent_id}/<noun>s``): routers on L3 agents, networks on DHCP
    agents. The policy rules are ``get_<noun>s``, ``create_<noun>``, ``delete_<noun>``."""

    noun: str  # "l3-router", "dhcp-network"
    key: str  # the list body's key: "routers", "networks"
    id_field: str  # the add body's (and the remove path's) id: "router_id", "network_id"
    get: Callable[[Session, RequestContext, str], Any]
    hosted_by: Callable[[Session, str], list[Any]]  # an agent's id -> what it hosts
    view: Callable[[Session, Any, RequestContext], dict[str, Any]]
    add: Callable[[Session, Any, Any], None]  # (agent, what): 404/409 as Neutron
    remove: Callable[[Session, Any, str], None]  # (agent, id): 404 when not hosted


L3_ROUTERS = Hosting("l3-router", "routers", "router_id", router_ops.get_router,
                     agent_ops.agent_routers, l3_views.router, agent_ops.add_router_to_agent,
                     agent_ops.remove_router_from_agent)
DHCP_NETWORKS = Hosting("dhcp-network", "networks", "network_id", resources.get_network,
                        agent_ops.agent_networks, lambda s, n, ctx: views.network(n, ctx),
                        agent_ops.add_network_to_agent, agent_ops.remove_network_from_agent)


def _list_hosted(req: Request, s: Session, h: Hosting) -> Response:
    ctx = policy.admin(req.context, f"get_{h.noun}s")
    a = agent_ops.get_agent(s, req.path_params["agent_id"])
    return json_response({h.key: [h.view(s, x, ctx) for x in h.hosted_by(s, a.id)]})


def _add_hosted(req: Request, s: Session, h: Hosting) -> AfterTransaction:
    ctx = policy.admin(req.context, f"create_{h.noun}")
    a = agent_ops.get_agent(s, req.path_params["agent_id"])
    h.add(s, a, h.get(s, ctx, _id_body(req, h.id_field)))
    return changed(req, json_response(None, 201))  # Neutron's body: null


def _remove_hosted(req: Request, s: Session, h: Hosting) -> AfterTransaction:
    policy.admin(req.context, f"delete_{h.noun}")
    a = agent_ops.get_agent(s, req.path_params["agent_id"])
    h.remove(s, a, req.path_params[h.id_field])
    return changed(req, empty())


@router.get("/v2.0/agents/{agent_id}/l3-routers", tx=True)
def list_agent_routers(req: Request, s: Session) -> Response:
    return _list_hosted(req, s, L3_ROUTERS)


@router.post("/v2.0/agents/{agent_id}/l3-routers", tx=True)
def add_agent_router(req: Request, s: Session) -> AfterTransaction:
    return _add_hosted(req, s, L3_ROUTERS)


@router.delete("/v2.0/agents/{agent_id}/l3-routers/{router_id}", tx=True)
def remove_agent_router(req: Request, s: Session) -> AfterTransaction:
    return _remove_hosted(req, s, L3_ROUTERS)


@router.get("/v2.0/agents/{agent_id}/dhcp-networks", tx=True)
def list_agent_networks(req: Request, s: Session) -> Response:
    return _list_hosted(req, s, DHCP_NETWORKS)


@router.post("/v2.0/agents/{agent_id}/dhcp-networks", tx=True)
def add_agent_network(req: Request, s: Session) -> AfterTransaction:
    return _add_hosted(req, s, DHCP_NETWORKS)


@router.delete("/v2.0/agents/{agent_id}/dhcp-networks/{network_id}", tx=True)
def remove_agent_network(req: Request, s: Session) -> AfterTransaction:
    return _remove_hosted(req, s, DHCP_NETWORKS)


@router.get("/v2.0/networks/{network_id}/dhcp-agents", tx=True)
def list_network_agents(req: Request, s: Session) -> Response:
    ctx = policy.admin(req.context, "get_dhcp-agents")
    net = resources.get_network(s, ctx, req.path_params["network_id"])
    dt = down_time(req)
    return json_response({"agents": [l3_views.agent(a, dt)
                                     for a in agent_ops.network_agents(s, net.id)]})
