"""Metadata definition namespaces: lookup with visibility, create, update, delete, views.

A namespace groups property definitions, objects (named sets of properties)
and tags, and says which resource types (OS::Glance::Image, OS::Nova::Flavor…)
it applies to. Glance's default policy: anyone with a role may read public
namespaces and their own project's; only admin changes anything. A namespace
the caller may not see is 404, never 403.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session

from gureum import paging
from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound
from gureum.image import metadef_schemas as schemas
from gureum.image import models as m
from gureum.image import policy, service
from gureum.image.views import isotime
from gureum.paging import SortKey
from gureum.validation import validate

NS_SCHEMA = "/v2/schemas/metadefs/namespace"
OBJECT_SCHEMA = "/v2/schemas/metadefs/object"
READ_ONLY = ("self", "schema", "created_at", "updated_at")
SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "id")


def check_admin(ctx: RequestContext, rule: str) -> None:
    if not ctx.is_admin:
        raise policy.deny(rule)


def check_body(body: Any, schema: dict[str, Any], read_only: tuple[str, ...] = READ_ONLY
               ) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("Invalid input for the request body: a JSON object is expected.")
    for key in read_only:
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    validate(schema, body)
    _check_texts(body, "body")
    return body


def _check_texts(value: Any, field: str) -> None:
    """Every value stored as JSON: strings (keys too) without NUL, finite numbers."""
    if isinstance(value, str):
        service.check_text(value, field)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"Invalid input for field '{field}': {value} is not a finite "
                           "number.", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            service.check_text(key, field)
            _check_texts(item, key)
    elif isinstance(value, list):
        for item in value:
            _check_texts(item, field)


def text_ok(value: str, limit: int = 320) -> bool:
    """Whether a name from a URL can be looked up at all (else it names nothing: 404)."""
    try:
        service.check_text(value, "name", limit)
    except InvalidInput:
        return False
    return True


def namespace_not_found(name: str) -> NotFound:
    return NotFound(f"Metadata definition namespace={name} was not found.", kind="namespace")


def is_visible(ctx: RequestContext, ns: m.MetadefNamespace) -> bool:
    if ctx.is_admin:
        return True
    if not ctx.can_read:
        return False
    return ns.visibility == "public" or (ctx.project_id is not None and
                                         ns.owner == ctx.project_id)


def get_namespace(s: Session, ctx: RequestContext, name: str) -> m.MetadefNamespace:
    if not text_ok(name):
        raise namespace_not_found(name)
    ns = s.scalars(select(m.MetadefNamespace).where(m.MetadefNamespace.namespace == name)
                   ).first()
    if ns is None or not is_visible(ctx, ns):
        raise namespace_not_found(name)
    return ns


def check_unprotected(ns: m.MetadefNamespace, what: str) -> None:
    if ns.protected:
        raise Forbidden(f"{what} is protected and cannot be deleted.")


# -- views ---------------------------------------------------------------------------

def stamps(row: Any) -> dict[str, Any]:
    return {"created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at)}


def association_view(assoc: m.MetadefAssociation, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if assoc.prefix is not None:
        out["prefix"] = assoc.prefix
    if assoc.properties_target is not None:
        out["properties_target"] = assoc.properties_target
    return {**out, **stamps(assoc)}


def associations(s: Session, ns: m.MetadefNamespace) -> list[dict[str, Any]]:
    rows = s.execute(select(m.MetadefAssociation, m.MetadefResourceType.name).join(
        m.MetadefResourceType,
        m.MetadefResourceType.id == m.MetadefAssociation.resource_type_id).where(
        m.MetadefAssociation.namespace_id == ns.id).order_by(m.MetadefResourceType.name))
    return [association_view(a, name) for a, name in rows]


def property_view(prop: m.MetadefProperty, name: str | None = None) -> dict[str, Any]:
    return {"name": name or prop.name, **dict(prop.schema)}


def object_view(ns_name: str, obj: m.MetadefObject, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": obj.name}
    if obj.description is not None:
        out["description"] = obj.description
    if obj.required:
        out["required"] = [prefix + r for r in obj.required]
    out["properties"] = {prefix + k: v for k, v in (obj.properties or {}).items()}
    return {**out, **stamps(obj), "self": f"/v2/metadefs/namespaces/{ns_name}/objects/{obj.name}",
            "schema": OBJECT_SCHEMA}


def namespace_view(s: Session, ns: m.MetadefNamespace, detail: bool = False,
                   resource_type: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"namespace": ns.namespace}
    for key in ("display_name", "description"):
        if getattr(ns, key) is not None:
            out[key] = getattr(ns, key)
    out.update(visibility=ns.visibility, protected=ns.protected)
    if ns.owner is not None:
        out["owner"] = ns.owner
    out.update(stamps(ns))
    assoc = associations(s, ns)
    if assoc:
        out["resource_type_associations"] = assoc
    if detail:
        prefix = next((a.get("prefix") or "" for a in assoc if a["name"] == resource_type), "")
        props = s.scalars(select(m.MetadefProperty).where(
            m.MetadefProperty.namespace_id == ns.id).order_by(m.MetadefProperty.name))
        properties = {prefix + p.name: dict(p.schema) for p in props}
        if properties:
            out["properties"] = properties
        objects = [object_view(ns.namespace, o, prefix) for o in s.scalars(
            select(m.MetadefObject).where(m.MetadefObject.namespace_id == ns.id)
            .order_by(m.MetadefObject.name))]
        if objects:
            out["objects"] = objects
        tags = [{"name": t.name} for t in s.scalars(select(m.MetadefTag).where(
            m.MetadefTag.namespace_id == ns.id).order_by(m.MetadefTag.name))]
        if tags:
            out["tags"] = tags
    out["self"] = f"/v2/metadefs/namespaces/{ns.namespace}"
    out["schema"] = NS_SCHEMA
    return out


# -- namespaces ----------------------------------------------------------------------

def list_namespaces(s: Session, ctx: RequestContext, params: dict[str, list[str]]
                    ) -> tuple[list[m.MetadefNamespace], str | None]:
    if not (ctx.is_admin or ctx.can_read):
        raise policy.deny("get_metadef_namespaces")

    def arg(name: str, default: str | None = None) -> str | None:
        values = params.get(name)
        return values[-1] if values else default

    try:
        limit = int(arg("limit") or 25)
    except ValueError:
        raise InvalidInput("limit param must be an integer", field="limit") from None
    if limit < 0:
        raise InvalidInput("limit param must be positive", field="limit")
    limit = min(limit, 1000)
    sort_key = arg("sort_key", "created_at") or "created_at"
    sort_dir = arg("sort_dir", "desc")
    if sort_key not in SORT_KEYS:
        raise InvalidInput(f"Invalid sort key: {sort_key}", field="sort_key")
    if sort_dir not in ("asc", "desc"):
        raise InvalidInput(f"Invalid sort direction: {sort_dir}", field="sort_dir")
    stmt = select(m.MetadefNamespace)
    visibility = arg("visibility")
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise InvalidInput(f"Invalid visibility value: {visibility}", field="visibility")
        stmt = stmt.where(m.MetadefNamespace.visibility == visibility)
    if not ctx.is_admin:
        mine = [m.MetadefNamespace.visibility == "public"]
        if ctx.project_id is not None:
            mine.append(m.MetadefNamespace.owner == ctx.project_id)
        stmt = stmt.where(or_(*mine))
    wanted = [t.strip() for t in (arg("resource_types") or "").split(",") if t.strip()]
    if wanted:
        stmt = stmt.where(exists().where(
            m.MetadefAssociation.namespace_id == m.MetadefNamespace.id,
            m.MetadefAssociation.resource_type_id == m.MetadefResourceType.id,
            m.MetadefResourceType.name.in_([service.check_text(w, "resource_types", 80)
                                            for w in wanted])))
    ascending = sort_dir == "asc"
    keys = [SortKey(getattr(m.MetadefNamespace, sort_key), ascending),
            SortKey(m.MetadefNamespace.id, ascending)]
    marker = arg("marker")
    values = None
    if marker is not None:
        found = get_namespace(s, ctx, marker)  # 404 when it does not exist for the caller
        values = paging.marker_values(s, keys, m.MetadefNamespace.id == found.id)
    rows = paging.fetch(s, stmt, keys, limit, values).rows
    next_marker = rows[-1].namespace if rows and len(rows) == limit else None
    return rows, next_marker


def create_namespace(s: Session, ctx: RequestContext, body: Any) -> m.MetadefNamespace:
    check_admin(ctx, "add_metadef_namespace")
    body = check_body(body, schemas.NAMESPACE)
    name = body["namespace"]
    if s.scalars(select(m.MetadefNamespace.id).where(
            m.MetadefNamespace.namespace == name)).first() is not None:
        raise Conflict(f"The metadata definition namespace={name} already exists.")
    now = utcnow()
    ns = m.MetadefNamespace(
        namespace=name, display_name=body.get("display_name"),
        description=body.get("description"), visibility=body.get("visibility", "private"),
        protected=body.get("protected", False), owner=body.get("owner", ctx.project_id),
        created_at=now, updated_at=now)
    s.add(ns)
    service.flush_or_conflict(s, f"The metadata definition namespace={name} already exists.")
    for assoc in body.get("resource_type_associations") or []:
        if "name" not in assoc:
            raise InvalidInput("Invalid input for field 'resource_type_associations': each "
                               "association needs a name.", field="resource_type_associations")
        add_association(s, ns, assoc, now)
    for obj in body.get("objects") or []:
        if "name" not in obj:
            raise InvalidInput("Invalid input for field 'objects': each object needs a name.",
                               field="objects")
        add_object(s, ns, obj, now)
    for prop_name, prop in (body.get("properties") or {}).items():
        add_property(s, ns, prop_name, prop, now)
    for tag in body.get("tags") or []:
        if "name" not in tag:
            raise InvalidInput("Invalid input for field 'tags': each tag needs a name.",
                               field="tags")
        add_tag(s, ns, tag["name"], now)
    return ns


def update_namespace(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, body: Any
                     ) -> m.MetadefNamespace:
    """PUT replaces the namespace's own fields; absent ones take their defaults (as in Glance)."""
    check_admin(ctx, "modify_metadef_namespace")
    body = check_body(body, schemas.NAMESPACE)
    new_name = body["namespace"]
    if new_name != ns.namespace and s.scalars(select(m.MetadefNamespace.id).where(
            m.MetadefNamespace.namespace == new_name)).first() is not None:
        raise Conflict(f"The metadata definition namespace={new_name} already exists.")
    ns.namespace = new_name
    ns.display_name = body.get("display_name")
    ns.description = body.get("description")
    ns.visibility = body.get("visibility") or "private"
    ns.protected = bool(body.get("protected", False))
    ns.owner = body.get("owner") or ctx.project_id
    ns.updated_at = utcnow()
    service.flush_or_conflict(s, f"The metadata definition namespace={new_name} already "
                                 "exists.")
    return ns


def delete_namespace(s: Session, ctx: RequestContext, ns: m.MetadefNamespace) -> None:
    check_admin(ctx, "delete_metadef_namespace")
    check_unprotected(ns, f"Metadata definition namespace {ns.namespace}")
    s.delete(ns)
    s.flush()


def delete_contents(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, kind: str
                    ) -> None:
    """DELETE /namespaces/{ns}/objects|properties|tags: everything of that kind."""
    check_admin(ctx, "delete_metadef_namespace")
    check_unprotected(ns, f"Metadata definition namespace {ns.namespace}")
    model = {"objects": m.MetadefObject, "properties": m.MetadefProperty,
             "tags": m.MetadefTag}[kind]
    s.execute(delete(model).where(model.namespace_id == ns.id))  # type: ignore[attr-defined]
    ns.updated_at = utcnow()


def touch(ns: m.MetadefNamespace, when: dt.datetime | None = None) -> None:
    ns.updated_at = when or utcnow()


# -- the parts of a namespace (shared by namespace creation and their own APIs) ---------

def _too_long(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidInput(f"Invalid input for field '{field}': longer than {limit} "
                           "characters.", field=field)


def resource_type(s: Session, name: str, create: bool, now: dt.datetime | None = None
                  ) -> m.MetadefResourceType | None:
    row = s.scalars(select(m.MetadefResourceType).where(
        m.MetadefResourceType.name == name)).first()
    if row is None and create:
        stamp = now or utcnow()
        row = m.MetadefResourceType(name=name, protected=False, created_at=stamp,
                                    updated_at=stamp)
        s.add(row)
        service.flush_or_conflict(s, f"A metadata definition resource-type with name={name} "
                                     "already exists.")
    return row


def add_association(s: Session, ns: m.MetadefNamespace, body: dict[str, Any],
                    now: dt.datetime) -> m.MetadefAssociation:
    name = str(body["name"])
    _too_long(name, "name", 80)
    for key in ("prefix", "properties_target"):
        if body.get(key) is not None:
            _too_long(str(body[key]), key, 80)
    rtype = resource_type(s, name, create=True, now=now)
    assert rtype is not None
    if s.get(m.MetadefAssociation, (ns.id, rtype.id)) is not None:
        raise Conflict(f"The metadata definition resource-type association of "
                       f"resource-type={name} to namespace={ns.namespace}, already exists.")
    assoc = m.MetadefAssociation(namespace_id=ns.id, resource_type_id=rtype.id,
                                 prefix=body.get("prefix"),
                                 properties_target=body.get("properties_target"),
                                 created_at=now, updated_at=now)
    s.add(assoc)
    service.flush_or_conflict(s, f"The metadata definition resource-type association of "
                                 f"resource-type={name} to namespace={ns.namespace}, already "
                                 "exists.")
    return assoc


def check_object_properties(properties: dict[str, Any]) -> None:
    for prop in properties.values():
        validate(schemas.PROPERTY_UNNAMED, prop)


def add_object(s: Session, ns: m.MetadefNamespace, body: dict[str, Any], now: dt.datetime
               ) -> m.MetadefObject:
    name = str(body["name"])
    _too_long(name, "name", 80)
    check_object_properties(body.get("properties") or {})
    if s.scalars(select(m.MetadefObject.id).where(m.MetadefObject.namespace_id == ns.id,
                                                  m.MetadefObject.name == name)).first():
        raise Conflict(f"A metadata definition object with name={name} already exists in "
                       f"namespace={ns.namespace}.")
    obj = m.MetadefObject(namespace_id=ns.id, name=name, description=body.get("description"),
                          required=body.get("required"), properties=body.get("properties"),
                          created_at=now, updated_at=now)
    s.add(obj)
    service.flush_or_conflict(s, f"A metadata definition object with name={name} already "
                                 f"exists in namespace={ns.namespace}.")
    return obj


def add_property(s: Session, ns: m.MetadefNamespace, name: str, definition: dict[str, Any],
                 now: dt.datetime) -> m.MetadefProperty:
    _too_long(name, "name", 80)
    if s.scalars(select(m.MetadefProperty.id).where(m.MetadefProperty.namespace_id == ns.id,
                                                    m.MetadefProperty.name == name)).first():
        raise Conflict(f"A metadata definition property with name={name} already exists in "
                       f"namespace={ns.namespace}.")
    prop = m.MetadefProperty(namespace_id=ns.id, name=name,
                             schema={k: v for k, v in definition.items() if k != "name"},
                             created_at=now, updated_at=now)
    s.add(prop)
    service.flush_or_conflict(s, f"A metadata definition property with name={name} already "
                                 f"exists in namespace={ns.namespace}.")
    return prop


def tag_exists(s: Session, ns: m.MetadefNamespace, name: str) -> bool:
    """Tag names are unique without regard to case, as in Glance."""
    return s.scalars(select(m.MetadefTag.id).where(
        m.MetadefTag.namespace_id == ns.id,
        func.lower(m.MetadefTag.name) == name.lower())).first() is not None


def add_tag(s: Session, ns: m.MetadefNamespace, name: str, now: dt.datetime) -> m.MetadefTag:
    _too_long(name, "name", 255)
    service.check_text(name, "name")
    if tag_exists(s, ns, name):
        raise Conflict(f"A metadata tag with name={name} already exists in "
                       f"namespace={ns.namespace}. (Please note that metadata tag names are "
                       "case insensitive).")
    tag = m.MetadefTag(namespace_id=ns.id, name=name, created_at=now, updated_at=now)
    s.add(tag)
    service.flush_or_conflict(s, f"A metadata tag with name={name} already exists in "
                                 f"namespace={ns.namespace}.")
    return tag
