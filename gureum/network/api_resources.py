"""/v2.0/networks, subnets, ports, security-groups, security-group-rules: CRUD.

List, show, create (one or bulk), update, delete. The collections behave the
same way on the wire, so one table of resources drives the routes; what
differs (rules, validation, shapes) is in their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.context import RequestContext
from gureum.network import (
    address_scopes,
    floatingips,
    listing,
    networks,
    policy,
    ports,
    rbac,
    resources,
    routers,
    schemas,
    secgroup_defaults,
    secgroup_rules,
    secgroups,
    subnetpools,
    subnets,
    views,
)

router = Router()


@dataclass(frozen=True)
class Resource:
    singular: str
    plural: str
    collection: listing.Collection
    view: Callable[[Any, RequestContext], dict[str, Any]]
    visible: Callable[[RequestContext], ColumnElement[bool] | None]
    get: Callable[[Session, RequestContext, str], Any]
    create: Callable[..., Any]  # (s, ctx, body, **options)
    update: Callable[..., Any]  # (s, ctx, id, body, **options)
    delete: Callable[[Session, RequestContext, str], None]
    create_schema: dict[str, Any]
    update_schema: dict[str, Any]
    read_only: tuple[str, ...]
    # Keyword arguments create and update take from the request (settings).
    options: Callable[[Request], dict[str, Any]] = lambda req: {}
    # Called before listing (the default security group appears on first look).
    prepare: Callable[[Session, RequestContext], None] | None = None
    # Has /tags routes (standard-attr-tag).
    taggable: bool = True

    @property
    def key(self) -> str:
        """The plural in bodies: "security_groups" for the URL's "security-groups"."""
        return self.plural.replace("-", "_")


def _underlay(req: Request) -> dict[str, Any]:
    return {"underlay": networks.Underlay.of(req.app_state.settings.network)}


RESOURCES = [
    Resource("network", "networks", listing.NETWORKS, views.network, policy.network_visible,
             resources.get_network, networks.create_network, networks.update_network,
             networks.delete_network, schemas.network_create, schemas.network_update,
             schemas.NETWORK_READ_ONLY, _underlay),
    Resource("subnet", "subnets", listing.SUBNETS, views.subnet, policy.subnet_visible,
             resources.get_subnet, subnets.create_subnet, subnets.update_subnet,
             subnets.delete_subnet, schemas.subnet_create, schemas.subnet_update,
             schemas.SUBNET_READ_ONLY),
    Resource("port", "ports", listing.PORTS, views.port, policy.port_visible,
             resources.get_port, ports.create_port, ports.update_port, ports.delete_port,
             schemas.port_create, schemas.port_update, schemas.PORT_READ_ONLY),
    Resource("security_group", "security-groups", secgroups.SECURITY_GROUPS,
             secgroups.group_view, secgroups.group_visible, secgroups.get_group,
             secgroups.create_group, secgroups.update_group, secgroups.delete_group,
             secgroups.group_create, secgroups.group_update, secgroups.GROUP_READ_ONLY,
             prepare=secgroups.prepare_list),
    Resource("security_group_rule", "security-group-rules", secgroups.SECURITY_GROUP_RULES,
             secgroups.rule_view, secgroups.rule_visible, secgroups.get_rule,
             secgroups.create_rule, secgroups.update_rule, secgroups.delete_rule,
             secgroup_rules.rule_create, secgroup_rules.rule_update,
             secgroup_rules.RULE_READ_ONLY, taggable=False),
    Resource("default_security_group_rule", "default-security-group-rules",
             secgroup_defaults.COLLECTION, secgroup_defaults.view, secgroup_defaults.visible,
             secgroup_defaults.get, secgroup_defaults.create, secgroup_defaults.update,
             secgroup_defaults.delete, secgroup_defaults.create_schema,
             secgroup_defaults.update_schema, secgroup_defaults.READ_ONLY, taggable=False),
    Resource("subnetpool", "subnetpools", subnetpools.COLLECTION, subnetpools.view,
             subnetpools.visible, subnetpools.get, subnetpools.create,
             subnetpools.update_pool, subnetpools.delete, subnetpools.create_schema,
             subnetpools.update_schema, subnetpools.READ_ONLY),
    Resource("rbac_policy", "rbac-policies", rbac.COLLECTION, rbac.view, rbac.visible,
             rbac.get, rbac.create, rbac.update, rbac.delete, rbac.create_schema,
             rbac.update_schema, rbac.READ_ONLY, taggable=False),
    Resource("address_scope", "address-scopes", address_scopes.COLLECTION,
             address_scopes.view, address_scopes.visible, address_scopes.get,
             address_scopes.create, address_scopes.update, address_scopes.delete,
             address_scopes.create_schema, address_scopes.update_schema,
             address_scopes.READ_ONLY, taggable=False),
]
BY_PLURAL = {r.plural: r for r in RESOURCES}


def fields_of(req: Request) -> list[str] | None:
    return [f for v in req.query.get("fields", []) for f in v.split(",") if f] or None


def _routes(res: Resource) -> None:
    collection = f"/v2.0/{res.plural}"
    item = f"/v2.0/{res.plural}/{{{res.singular}_id}}"

    def list_(req: Request, s: Session) -> Response:
        ctx = policy.reader(req.context, f"get_{res.singular}")
        if res.prepare is not None:
            res.prepare(s, ctx)
        page = listing.list_page(req, s, ctx, res.collection, res.visible(ctx))
        body: dict[str, Any] = {res.key: [views.only_fields(res.view(row, ctx),
                                                                page.fields)
                                             for row in page.rows]}
        if page.links:
            body[f"{res.key}_links"] = page.links
        return json_response(body)

    def show(req: Request, s: Session) -> Response:
        ctx = policy.reader(req.context, f"get_{res.singular}")
        row = res.get(s, ctx, req.path_params[f"{res.singular}_id"])
        return json_response({res.singular: views.only_fields(res.view(row, ctx),
                                                              fields_of(req))})

    def create(req: Request, s: Session) -> Response:
        ctx = policy.writer(req.context, f"create_{res.singular}")
        items, bulk = schemas.body_items(req.json(), res.singular, res.key,
                                         res.create_schema)
        options = res.options(req)
        rows = [res.create(s, ctx, item, **options) for item in items]
        s.flush()
        shaped = [res.view(row, ctx) for row in rows]
        return json_response({res.key: shaped} if bulk else {res.singular: shaped[0]},
                             201)

    def update(req: Request, s: Session) -> Response:
        ctx = policy.writer(req.context, f"update_{res.singular}")
        body = schemas.update_item(req.json(), res.singular, res.update_schema,
                                   res.read_only)
        row = res.update(s, ctx, req.path_params[f"{res.singular}_id"], body,
                         **res.options(req))
        s.flush()
        return json_response({res.singular: res.view(row, ctx)})

    def delete(req: Request, s: Session) -> Response:
        ctx = policy.writer(req.context, f"delete_{res.singular}")
        res.delete(s, ctx, req.path_params[f"{res.singular}_id"])
        return empty()

    router.add("GET", collection, list_, tx=True)
    router.add("POST", collection, create, tx=True)
    router.add("GET", item, show, tx=True)
    router.add("PUT", item, update, tx=True)
    router.add("DELETE", item, delete, tx=True)


for _resource in RESOURCES:
    _routes(_resource)


def _tags_only(singular: str, plural: str, get: Callable[[Session, RequestContext, str], Any]
               ) -> Resource:
    """A resource with its own routes (api_l3.py) whose tags are served with the others'."""
    def unused(*args: Any) -> Any:
        raise NotImplementedError(plural)
    return Resource(singular, plural, listing.Collection(plural, None), unused, unused, get,
                    unused, unused, unused, {}, {}, ())


BY_PLURAL["routers"] = _tags_only("router", "routers", routers.get_router)
BY_PLURAL["floatingips"] = _tags_only("floatingip", "floatingips",
                                      floatingips.get_floatingip)
