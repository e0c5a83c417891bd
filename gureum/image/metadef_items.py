"""The parts of a metadata definition namespace: objects, properties, tags, resource types.

Each function takes a namespace the caller can see (metadefs.get_namespace);
reading needs only that, changing needs admin (Glance's default policy), and
nothing in a protected namespace may be deleted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.db import utcnow
from gureum.errors import Conflict, NotFound
from gureum.image import metadef_schemas as schemas
from gureum.image import metadefs, service
from gureum.image import models as m
from gureum.image.metadefs import check_admin, check_body, check_unprotected, touch

# -- objects -------------------------------------------------------------------------

def _object(s: Session, ns: m.MetadefNamespace, name: str) -> m.MetadefObject:
    row = s.scalars(select(m.MetadefObject).where(
        m.MetadefObject.namespace_id == ns.id, m.MetadefObject.name == name)).first() if \
        metadefs.text_ok(name) else None
    if row is None:
        raise NotFound(f"The metadata definition object with name={name} was not found in "
                       f"namespace={ns.namespace}.", kind="object")
    return row


def list_objects(s: Session, ns: m.MetadefNamespace) -> list[m.MetadefObject]:
    return list(s.scalars(select(m.MetadefObject).where(m.MetadefObject.namespace_id == ns.id)
                          .order_by(m.MetadefObject.created_at.desc(),
                                    m.MetadefObject.id.desc())))


def get_object(s: Session, ns: m.MetadefNamespace, name: str) -> m.MetadefObject:
    return _object(s, ns, name)


def create_object(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, body: Any
                  ) -> m.MetadefObject:
    check_admin(ctx, "add_metadef_object")
    body = check_body(body, schemas.OBJECT)
    now = utcnow()
    obj = metadefs.add_object(s, ns, body, now)
    touch(ns, now)
    return obj


def update_object(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, name: str,
                  body: Any) -> m.MetadefObject:
    check_admin(ctx, "modify_metadef_object")
    body = check_body(body, schemas.OBJECT)
    obj = _object(s, ns, name)
    metadefs.check_object_properties(body.get("properties") or {})
    new_name = body["name"]
    if new_name != obj.name and s.scalars(select(m.MetadefObject.id).where(
            m.MetadefObject.namespace_id == ns.id, m.MetadefObject.name == new_name)).first():
        raise Conflict(f"A metadata definition object with name={new_name} already exists in "
                       f"namespace={ns.namespace}.")
    obj.name = new_name
    obj.description = body.get("description")
    obj.required = body.get("required")
    obj.properties = body.get("properties")
    obj.updated_at = utcnow()
    service.flush_or_conflict(s, f"A metadata definition object with name={new_name} already "
                                 f"exists in namespace={ns.namespace}.")
    return obj


def delete_object(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, name: str) -> None:
    check_admin(ctx, "delete_metadef_object")
    obj = _object(s, ns, name)
    check_unprotected(ns, f"Metadata definition object {name}")
    s.delete(obj)
    s.flush()


# -- properties ----------------------------------------------------------------------

def _property(s: Session, ns: m.MetadefNamespace, name: str) -> m.MetadefProperty:
    row = s.scalars(select(m.MetadefProperty).where(
        m.MetadefProperty.namespace_id == ns.id, m.MetadefProperty.name == name)).first() if \
        metadefs.text_ok(name) else None
    if row is None:
        raise NotFound(f"The metadata definition property with name={name} was not found in "
                       f"namespace={ns.namespace}.", kind="property")
    return row


def list_properties(s: Session, ns: m.MetadefNamespace) -> dict[str, Any]:
    rows = s.scalars(select(m.MetadefProperty).where(m.MetadefProperty.namespace_id == ns.id)
                     .order_by(m.MetadefProperty.name))
    return {p.name: dict(p.schema) for p in rows}


def get_property(s: Session, ns: m.MetadefNamespace, name: str,
                 resource_type: str | None = None) -> dict[str, Any]:
    """A property, by its name or (with a resource type) its prefixed name."""
    if resource_type:
        prefix = _association_prefix(s, ns, resource_type)
        if not prefix or not name.startswith(prefix):
            raise NotFound(f"Property {name} does not start with the expected resource type "
                           f"association prefix of '{prefix}'.")
        name = name[len(prefix):]
    return metadefs.property_view(_property(s, ns, name))


def create_property(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, body: Any
                    ) -> m.MetadefProperty:
    check_admin(ctx, "add_metadef_property")
    body = check_body(body, schemas.PROPERTY, ("created_at", "updated_at"))
    now = utcnow()
    prop = metadefs.add_property(s, ns, body["name"], body, now)
    touch(ns, now)
    return prop


def update_property(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, name: str,
                    body: Any) -> m.MetadefProperty:
    check_admin(ctx, "modify_metadef_property")
    body = check_body(body, schemas.PROPERTY, ("created_at", "updated_at"))
    prop = _property(s, ns, name)
    new_name = body["name"]
    if new_name != prop.name and s.scalars(select(m.MetadefProperty.id).where(
            m.MetadefProperty.namespace_id == ns.id,
            m.MetadefProperty.name == new_name)).first():
        raise Conflict(f"A metadata definition property with name={new_name} already exists "
                       f"in namespace={ns.namespace}.")
    prop.name = new_name
    prop.schema = {k: v for k, v in body.items() if k != "name"}
    prop.updated_at = utcnow()
    service.flush_or_conflict(s, f"A metadata definition property with name={new_name} "
                                 f"already exists in namespace={ns.namespace}.")
    return prop


def delete_property(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, name: str
                    ) -> None:
    check_admin(ctx, "remove_metadef_property")
    prop = _property(s, ns, name)
    check_unprotected(ns, f"Metadata definition property {name}")
    s.delete(prop)
    s.flush()


# -- tags ----------------------------------------------------------------------------

def _tag(s: Session, ns: m.MetadefNamespace, name: str) -> m.MetadefTag:
    row = s.scalars(select(m.MetadefTag).where(
        m.MetadefTag.namespace_id == ns.id, m.MetadefTag.name == name)).first() if \
        metadefs.text_ok(name) else None
    if row is None:
        raise NotFound(f"The metadata definition tag with name={name} was not found in "
                       f"namespace={ns.namespace}.", kind="tag")
    return row


def tag_view(tag: m.MetadefTag) -> dict[str, Any]:
    return {"name": tag.name, **metadefs.stamps(tag)}


def list_tags(s: Session, ns: m.MetadefNamespace) -> list[m.MetadefTag]:
    return list(s.scalars(select(m.MetadefTag).where(m.MetadefTag.namespace_id == ns.id)
                          .order_by(m.MetadefTag.created_at.desc(), m.MetadefTag.id.desc())))


def get_tag(s: Session, ns: m.MetadefNamespace, name: str) -> m.MetadefTag:
    return _tag(s, ns, name)


def create_tag(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, name: str
               ) -> m.MetadefTag:
    check_admin(ctx, "add_metadef_tag")
    now = utcnow()
    tag = metadefs.add_tag(s, ns, name, now)
    touch(ns, now)
    return tag


def create_tags(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, body: Any,
                append: bool) -> list[m.MetadefTag]:
    """POST /tags: replace every tag (or, with X-OpenStack-Append, add to them)."""
    check_admin(ctx, "add_metadef_tags")
    body = check_body(body, schemas.TAGS, ())
    names = [t["name"] for t in body.get("tags", [])]
    if len({n.lower() for n in names}) != len(names):
        raise Conflict("A metadata tag name is given twice (tag names are case "
                       "insensitive).")
    if not append:
        for tag in list_tags(s, ns):
            s.delete(tag)
        s.flush()
    now = utcnow()
    made = [metadefs.add_tag(s, ns, n, now) for n in names]
    touch(ns, now)
    return made


def update_tag(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, name: str, body: Any
               ) -> m.MetadefTag:
    check_admin(ctx, "modify_metadef_tag")
    body = check_body(body, schemas.TAG)
    tag = get_tag(s, ns, name)
    new_name = body["name"]
    if new_name.lower() != tag.name.lower() and metadefs.tag_exists(s, ns, new_name):
        raise Conflict(f"A metadata tag with name={new_name} already exists in "
                       f"namespace={ns.namespace}.")
    tag.name = new_name
    tag.updated_at = utcnow()
    service.flush_or_conflict(s, f"A metadata tag with name={new_name} already exists in "
                                 f"namespace={ns.namespace}.")
    return tag


def delete_tag(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, name: str) -> None:
    check_admin(ctx, "delete_metadef_tag")
    tag = get_tag(s, ns, name)
    check_unprotected(ns, f"Metadata definition tag {name}")
    s.delete(tag)
    s.flush()


# -- resource types ------------------------------------------------------------------

def list_resource_types(s: Session) -> list[dict[str, Any]]:
    rows = s.scalars(select(m.MetadefResourceType).order_by(m.MetadefResourceType.name))
    return [{"name": r.name, **metadefs.stamps(r)} for r in rows]


def _association_prefix(s: Session, ns: m.MetadefNamespace, resource_type: str) -> str | None:
    for assoc in metadefs.associations(s, ns):
        if assoc["name"] == resource_type:
            return str(assoc.get("prefix") or "")
    raise NotFound(f"The metadata definition resource-type association of "
                   f"resource-type={resource_type} to namespace={ns.namespace}, was not found.")


def create_association(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, body: Any
                       ) -> dict[str, Any]:
    check_admin(ctx, "add_metadef_resource_type_association")
    body = check_body(body, schemas.ASSOCIATION, ("created_at", "updated_at"))
    now = utcnow()
    assoc = metadefs.add_association(s, ns, body, now)
    touch(ns, now)
    return metadefs.association_view(assoc, body["name"])


def delete_association(s: Session, ctx: RequestContext, ns: m.MetadefNamespace, name: str
                       ) -> None:
    check_admin(ctx, "remove_metadef_resource_type_association")
    ok = metadefs.text_ok(name, 80)
    rtype = metadefs.resource_type(s, name, create=False) if ok else None
    assoc = s.get(m.MetadefAssociation, (ns.id, rtype.id)) if rtype is not None else None
    if assoc is None:
        raise NotFound(f"The metadata definition resource-type association of "
                       f"resource-type={name} to namespace={ns.namespace}, was not found.")
    check_unprotected(ns, f"Metadata definition resource-type-association {name}")
    s.delete(assoc)
    s.flush()
