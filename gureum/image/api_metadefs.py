"""Metadata definitions (/v2/metadefs/...): namespaces and their objects, properties,
tags and resource type associations."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.errors import NotFound
from gureum.image import metadef_items as items
from gureum.image import metadef_schemas, metadefs, policy
from gureum.image import models as m
from gureum.image.api_images import ctx_of
from gureum.query import parse_bool

router = Router()

NS = "/v2/metadefs/namespaces/{namespace}"


def namespace_of(req: Request, s: Session) -> m.MetadefNamespace:
    return metadefs.get_namespace(s, ctx_of(req), req.path_params["namespace"])


# -- schemas -------------------------------------------------------------------------

@router.get("/v2/schemas/metadefs/{name}")
async def get_schema(req: Request) -> Response:
    make = metadef_schemas.SERVED.get(req.path_params["name"])
    if make is None:
        raise NotFound("The resource could not be found.")
    return json_response(make())


# -- namespaces ----------------------------------------------------------------------

@router.get("/v2/metadefs/namespaces", tx=True)
def list_namespaces(req: Request, s: Session) -> Response:
    rows, next_marker = metadefs.list_namespaces(s, ctx_of(req), req.query)
    query = [(k, v) for k, v in parse_qsl(req.query_string.decode("latin-1"),
                                          keep_blank_values=True) if k != "marker"]
    body = {"namespaces": [metadefs.namespace_view(s, ns) for ns in rows],
            "first": "/v2/metadefs/namespaces" + (f"?{urlencode(query)}" if query else ""),
            "schema": "/v2/schemas/metadefs/namespaces"}
    if next_marker is not None:
        body["next"] = f"/v2/metadefs/namespaces?{urlencode([*query, ('marker', next_marker)])}"
    return json_response(body)


@router.post("/v2/metadefs/namespaces", tx=True)
def create_namespace(req: Request, s: Session) -> Response:
    ns = metadefs.create_namespace(s, ctx_of(req), req.json())
    view = metadefs.namespace_view(s, ns, detail=True)
    return json_response(view, 201, {"location": req.base_url + view["self"]})


@router.get(NS, tx=True)
def show_namespace(req: Request, s: Session) -> Response:
    ns = namespace_of(req, s)
    return json_response(metadefs.namespace_view(s, ns, detail=True,
                                                 resource_type=req.arg("resource_type")))


@router.put(NS, tx=True)
def update_namespace(req: Request, s: Session) -> Response:
    ns = metadefs.update_namespace(s, ctx_of(req), namespace_of(req, s), req.json())
    return json_response(metadefs.namespace_view(s, ns))


@router.delete(NS, tx=True)
def delete_namespace(req: Request, s: Session) -> Response:
    metadefs.delete_namespace(s, ctx_of(req), namespace_of(req, s))
    return empty()


def _delete_all(kind: str) -> Callable[[Request, Session], Response]:
    def handler(req: Request, s: Session) -> Response:
        metadefs.delete_contents(s, ctx_of(req), namespace_of(req, s), kind)
        return empty()
    return handler


for _kind in ("objects", "properties", "tags"):
    router.add("DELETE", f"{NS}/{_kind}", _delete_all(_kind), tx=True)


# -- objects -------------------------------------------------------------------------

@router.get(f"{NS}/objects", tx=True)
def list_objects(req: Request, s: Session) -> Response:
    ns = namespace_of(req, s)
    return json_response({"objects": [metadefs.object_view(ns.namespace, o)
                                      for o in items.list_objects(s, ns)],
                          "schema": "v2/schemas/metadefs/objects"})


@router.post(f"{NS}/objects", tx=True)
def create_object(req: Request, s: Session) -> Response:
    ns = namespace_of(req, s)
    obj = items.create_object(s, ctx_of(req), ns, req.json())
    return json_response(metadefs.object_view(ns.namespace, obj), 201)


@router.get(f"{NS}/objects/{{object_name}}", tx=True)
def show_object(req: Request, s: Session) -> Response:
    ns = namespace_of(req, s)
    obj = items.get_object(s, ns, req.path_params["object_name"])
    return json_response(metadefs.object_view(ns.namespace, obj))


@router.put(f"{NS}/objects/{{object_name}}", tx=True)
def update_object(req: Request, s: Session) -> Response:
    ns = namespace_of(req, s)
    obj = items.update_object(s, ctx_of(req), ns, req.path_params["object_name"], req.json())
    return json_response(metadefs.object_view(ns.namespace, obj))


@router.delete(f"{NS}/objects/{{object_name}}", tx=True)
def delete_object(req: Request, s: Session) -> Response:
    items.delete_object(s, ctx_of(req), namespace_of(req, s), req.path_params["object_name"])
    return empty()


# -- properties ----------------------------------------------------------------------

@router.get(f"{NS}/properties", tx=True)
def list_properties(req: Request, s: Session) -> Response:
    return json_response({"properties": items.list_properties(s, namespace_of(req, s))})


@router.post(f"{NS}/properties", tx=True)
def create_property(req: Request, s: Session) -> Response:
    prop = items.create_property(s, ctx_of(req), namespace_of(req, s), req.json())
    return json_response(metadefs.property_view(prop), 201)


@router.get(f"{NS}/properties/{{property_name}}", tx=True)
def show_property(req: Request, s: Session) -> Response:
    return json_response(items.get_property(s, namespace_of(req, s),
                                            req.path_params["property_name"],
                                            req.arg("resource_type")))


@router.put(f"{NS}/properties/{{property_name}}", tx=True)
def update_property(req: Request, s: Session) -> Response:
    prop = items.update_property(s, ctx_of(req), namespace_of(req, s),
                                 req.path_params["property_name"], req.json())
    return json_response(metadefs.property_view(prop))


@router.delete(f"{NS}/properties/{{property_name}}", tx=True)
def delete_property(req: Request, s: Session) -> Response:
    items.delete_property(s, ctx_of(req), namespace_of(req, s),
                          req.path_params["property_name"])
    return empty()


# -- tags ----------------------------------------------------------------------------

@router.get(f"{NS}/tags", tx=True)
def list_tags(req: Request, s: Session) -> Response:
    return json_response({"tags": [items.tag_view(t)
                                   for t in items.list_tags(s, namespace_of(req, s))]})


@router.post(f"{NS}/tags", tx=True)
def create_tags(req: Request, s: Session) -> Response:
    # Glance: oslo's bool_from_string, not strict (anything else is false).
    append = parse_bool(req.headers.get("x-openstack-append") or "") is True
    made = items.create_tags(s, ctx_of(req), namespace_of(req, s), req.json(), append)
    return json_response({"tags": [{"name": t.name} for t in made]}, 201)


@router.post(f"{NS}/tags/{{tag_name}}", tx=True)
def create_tag(req: Request, s: Session) -> Response:
    tag = items.create_tag(s, ctx_of(req), namespace_of(req, s), req.path_params["tag_name"])
    return json_response(items.tag_view(tag), 201)


@router.get(f"{NS}/tags/{{tag_name}}", tx=True)
def show_tag(req: Request, s: Session) -> Response:
    return json_response(items.tag_view(items.get_tag(s, namespace_of(req, s),
                                                      req.path_params["tag_name"])))


@router.put(f"{NS}/tags/{{tag_name}}", tx=True)
def update_tag(req: Request, s: Session) -> Response:
    tag = items.update_tag(s, ctx_of(req), namespace_of(req, s), req.path_params["tag_name"],
                           req.json())
    return json_response(items.tag_view(tag))


@router.delete(f"{NS}/tags/{{tag_name}}", tx=True)
def delete_tag(req: Request, s: Session) -> Response:
    items.delete_tag(s, ctx_of(req), namespace_of(req, s), req.path_params["tag_name"])
    return empty()


# -- resource types ------------------------------------------------------------------

@router.get("/v2/metadefs/resource_types", tx=True)
def list_resource_types(req: Request, s: Session) -> Response:
    ctx = ctx_of(req)
    if not (ctx.is_admin or ctx.can_read):
        raise policy.deny("list_metadef_resource_types")
    return json_response({"resource_types": items.list_resource_types(s)})


@router.get(f"{NS}/resource_types", tx=True)
def list_associations(req: Request, s: Session) -> Response:
    ns = namespace_of(req, s)
    return json_response({"resource_type_associations": metadefs.associations(s, ns)})


@router.post(f"{NS}/resource_types", tx=True)
def create_association(req: Request, s: Session) -> Response:
    view = items.create_association(s, ctx_of(req), namespace_of(req, s), req.json())
    return json_response(view, 201)


@router.delete(f"{NS}/resource_types/{{resource_type}}", tx=True)
def delete_association(req: Request, s: Session) -> Response:
    items.delete_association(s, ctx_of(req), namespace_of(req, s),
                             req.path_params["resource_type"])
    return empty()
