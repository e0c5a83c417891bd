"""Volume types (with extra specs and access for private types) and QoS specs.

Types and QoS specs are admin's to change; everyone lists the public types and
the private ones their project was given access to. The default type
``__DEFAULT__`` exists from the first use and cannot be deleted.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, empty, json_response
from gureum.db import utcnow
from gureum.errors import Conflict, NotFound
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, schemas, types, views
from gureum.volume.api import route
from gureum.volume.api_common import one_action


def _admin_view(req: Request) -> bool:
    return req.context is not None and req.context.is_admin


def _get_type(s: Session, req: Request, ref: str) -> m.VolumeType:
    ctx = policy.reader(req.context, "volume_extension:type_get")
    if ref == "default":
        return types.default_type(s)
    types.default_type(s)
    row = s.get(m.VolumeType, ref)
    if row is None or not types.can_use(s, ctx, row):
        raise e.not_found("volume_type", ref)
    return row


@route("GET", "/types")
def list_types(req: Request, s: Session) -> Response:
    ctx = policy.reader(req.context, "volume_extension:type_get_all")
    types.default_type(s)
    stmt = select(m.VolumeType).order_by(m.VolumeType.name)
    clause = types.visible_clause(ctx)
    if clause is not None:
        stmt = stmt.where(clause)
    rows = list(s.scalars(stmt))
    public = req.arg("is_public")
    if ctx.is_admin and public is not None and public.lower() != "none":
        want = schemas.boolean(public, "is_public")
        rows = [t for t in rows if t.is_public == want]
    return json_response({"volume_types": [views.volume_type(req, t, ctx.is_admin)
                                           for t in rows]})


@route("GET", "/types/{type_id}")
def show_type(req: Request, s: Session) -> Response:
    t = _get_type(s, req, req.path_params["type_id"])
    return json_response({"volume_type": views.volume_type(req, t, _admin_view(req))})


@route("POST", "/types", tx="write")
def create_type(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:types_manage")
    body = schemas.body_of(req.json(), "volume_type")
    name = schemas.text(body.get("name"), "name", allow_none=False)
    if not name or not name.strip():
        raise e.bad_request("Volume type name can not be empty.", "name")
    public = schemas.boolean(body.get("os-volume-type-access:is_public",
                                      body.get("is_public", True)), "is_public")
    t = m.VolumeType(name=name.strip(), description=schemas.text(body.get("description"),
                                                                 "description"),
                     is_public=public, extra_specs=schemas.metadata(body.get("extra_specs"),
                                                                    "extra_specs"),
                     created_at=utcnow())
    types.default_type(s)
    try:
        with s.begin_nested():
            s.add(t)
            s.flush()
    except IntegrityError:
        raise Conflict(f"Volume Type {name} already exists.") from None
    return json_response({"volume_type": views.volume_type(req, t, True)})


@route("PUT", "/types/{type_id}")
def update_type(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:types_manage")
    t = _get_type(s, req, req.path_params["type_id"])
    body = schemas.body_of(req.json(), "volume_type")
    if "name" in body:
        name = schemas.text(body["name"], "name", allow_none=False) or ""
        if not name.strip():
            raise e.bad_request("Volume type name can not be empty.", "name")
        if t.id == types.DEFAULT_TYPE_ID and name != t.name:
            raise e.bad_request("The default volume type cannot be renamed.", "name")
        clash = s.scalar(select(m.VolumeType.id).where(m.VolumeType.name == name,
                                                       m.VolumeType.id != t.id))
        if clash:
            raise Conflict(f"Volume Type {name} already exists.")
        t.name = name
    if "description" in body:
        t.description = schemas.text(body["description"], "description")
    if "is_public" in body or "os-volume-type-access:is_public" in body:
        t.is_public = schemas.boolean(body.get("is_public",
                                               body.get("os-volume-type-access:is_public")),
                                      "is_public")
    t.updated_at = utcnow()
    s.flush()
    return json_response({"volume_type": views.volume_type(req, t, True)})


@route("DELETE", "/types/{type_id}")
def delete_type(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:types_manage")
    t = _get_type(s, req, req.path_params["type_id"])
    if t.id == types.DEFAULT_TYPE_ID:
        raise e.bad_request("Default volume type can not be deleted.")
    if s.scalar(select(m.Volume.id).where(m.Volume.volume_type_id == t.id).limit(1)):
        raise e.bad_request("Target volume type is still in use.")
    if s.scalar(select(m.DefaultType.project_id).where(
            m.DefaultType.volume_type_id == t.id).limit(1)):
        raise e.bad_request("Target volume type is the default type of a project.")
    for row in s.scalars(select(m.VolumeTypeProject).where(
            m.VolumeTypeProject.volume_type_id == t.id)):
        s.delete(row)
    s.delete(t)
    return empty(202)


# -- extra specs --------------------------------------------------------------------------

@route("GET", "/types/{type_id}/extra_specs")
def list_specs(req: Request, s: Session) -> Response:
    t = _get_type(s, req, req.path_params["type_id"])
    return json_response({"extra_specs": dict(t.extra_specs or {})})


@route("POST", "/types/{type_id}/extra_specs")
def add_specs(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:types_extra_specs:create")
    t = _get_type(s, req, req.path_params["type_id"])
    body = req.json()
    specs = schemas.metadata(body.get("extra_specs") if isinstance(body, dict) else None,
                             "extra_specs")
    if not specs:
        raise e.bad_request("Missing required element 'extra_specs' in request body.",
                            "extra_specs")
    t.extra_specs = {**(t.extra_specs or {}), **specs}
    t.updated_at = utcnow()
    return json_response({"extra_specs": specs})


@route("GET", "/types/{type_id}/extra_specs/{key}")
def show_spec(req: Request, s: Session) -> Response:
    t = _get_type(s, req, req.path_params["type_id"])
    key = req.path_params["key"]
    if key not in (t.extra_specs or {}):
        raise NotFound(f"Volume Type {t.id} has no extra specs with key {key}.")
    return json_response({key: t.extra_specs[key]})


@route("PUT", "/types/{type_id}/extra_specs/{key}")
def update_spec(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:types_extra_specs:update")
    t = _get_type(s, req, req.path_params["type_id"])
    key = req.path_params["key"]
    body = schemas.metadata(req.json(), "extra_specs")
    if key not in body:
        raise e.bad_request("Request body and URI mismatch", key)
    if len(body) > 1:
        raise e.bad_request("Request body contains too many items", key)
    t.extra_specs = {**(t.extra_specs or {}), **body}
    t.updated_at = utcnow()
    return json_response(body)


@route("DELETE", "/types/{type_id}/extra_specs/{key}")
def delete_spec(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:types_extra_specs:delete")
    t = _get_type(s, req, req.path_params["type_id"])
    key = req.path_params["key"]
    specs = dict(t.extra_specs or {})
    if key not in specs:
        raise NotFound(f"Volume Type {t.id} has no extra specs with key {key}.")
    del specs[key]
    t.extra_specs = specs
    t.updated_at = utcnow()
    return empty(202)


# -- access ------------------------------------------------------------------------------

@route("GET", "/types/{type_id}/os-volume-type-access")
def list_access(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:volume_type_access")
    t = _get_type(s, req, req.path_params["type_id"])
    if t.is_public:
        raise NotFound(f"Volume type access not found for {t.id}.")
    rows = s.scalars(select(m.VolumeTypeProject).where(
        m.VolumeTypeProject.volume_type_id == t.id).order_by(m.VolumeTypeProject.project_id))
    return json_response({"volume_type_access": [
        {"volume_type_id": t.id, "project_id": r.project_id} for r in rows]})


@route("POST", "/types/{type_id}/action")
def type_action(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:volume_type_access")
    t = _get_type(s, req, req.path_params["type_id"])
    name, args = one_action(req.json())
    if name not in ("addProjectAccess", "removeProjectAccess"):
        raise e.bad_request(f"There is no such action: {name}", name)
    project = args.get("project") if isinstance(args, dict) else None
    if not isinstance(project, str) or not project:
        raise e.bad_request("Missing required element 'project'.", "project")
    if t.is_public:
        raise e.bad_request("Invalid volume type: Type access modification is not applicable "
                            "to public volume type.")
    row = s.scalar(select(m.VolumeTypeProject).where(
        m.VolumeTypeProject.volume_type_id == t.id, m.VolumeTypeProject.project_id == project))
    if name == "addProjectAccess":
        if row is not None:
            raise Conflict(f"Volume type access for {t.id} / {project} combination already "
                           "exists.")
        s.add(m.VolumeTypeProject(volume_type_id=t.id, project_id=project))
    else:
        if row is None:
            raise NotFound(f"Volume type access not found for {t.id} / {project} "
                           "combination.")
        s.delete(row)
    return empty(202)


@route("GET", "/types/{type_id}/encryption")
def show_encryption(req: Request, s: Session) -> Response:
    _get_type(s, req, req.path_params["type_id"])
    return json_response({})


# -- QoS specs -----------------------------------------------------------------------------

QOS_CONSUMERS = ("front-end", "back-end", "both")


def _get_qos(s: Session, req: Request) -> m.QosSpecs:
    policy.admin(req.context, "volume_extension:qos_specs_manage")
    q = s.get(m.QosSpecs, req.path_params["qos_id"])
    if q is None:
        raise e.not_found("qos_specs", req.path_params["qos_id"])
    return q


@route("GET", "/qos-specs")
def list_qos(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:qos_specs_manage:get_all")
    rows = s.scalars(select(m.QosSpecs).order_by(m.QosSpecs.name))
    return json_response({"qos_specs": [views.qos_specs(req, q) for q in rows]})


@route("POST", "/qos-specs", tx="write")
def create_qos(req: Request, s: Session) -> Response:
    policy.admin(req.context, "volume_extension:qos_specs_manage:create")
    body = dict(schemas.body_of(req.json(), "qos_specs"))
    name = schemas.text(body.pop("name", None), "name", allow_none=False) or ""
    if not name.strip():
        raise e.bad_request("QoS specs name can not be empty.", "name")
    consumer = schemas.one_of(body.pop("consumer", "back-end"), "consumer", QOS_CONSUMERS)
    q = m.QosSpecs(name=name.strip(), consumer=consumer,
                   specs=schemas.metadata(body, "qos_specs"), created_at=utcnow())
    try:
        with s.begin_nested():
            s.add(q)
            s.flush()
    except IntegrityError:
        raise Conflict(f"QoS Specs {name} already exists.") from None
    return json_response({"qos_specs": views.qos_specs(req, q)})


@route("GET", "/qos-specs/{qos_id}")
def show_qos(req: Request, s: Session) -> Response:
    return json_response({"qos_specs": views.qos_specs(req, _get_qos(s, req))})


@route("PUT", "/qos-specs/{qos_id}")
def update_qos(req: Request, s: Session) -> Response:
    q = _get_qos(s, req)
    body = dict(schemas.body_of(req.json(), "qos_specs"))
    if "consumer" in body:
        q.consumer = schemas.one_of(body.pop("consumer"), "consumer", QOS_CONSUMERS)
    specs = schemas.metadata(body, "qos_specs")
    q.specs = {**(q.specs or {}), **specs}
    return json_response({"qos_specs": specs})


@route("PUT", "/qos-specs/{qos_id}/delete_keys")
def delete_qos_keys(req: Request, s: Session) -> Response:
    q = _get_qos(s, req)
    body = req.json()
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list):
        raise e.bad_request("Missing required element 'keys' in request body.", "keys")
    specs = dict(q.specs or {})
    for key in keys:
        if key not in specs:
            raise NotFound(f"QoS spec {q.id} has no key {key}.")
        del specs[key]
    q.specs = specs
    return empty(202)


@route("DELETE", "/qos-specs/{qos_id}")
def delete_qos(req: Request, s: Session) -> Response:
    q = _get_qos(s, req)
    force = schemas.boolean(req.arg("force") or "false", "force")
    users = list(s.scalars(select(m.VolumeType).where(m.VolumeType.qos_specs_id == q.id)))
    if users and not force:
        raise e.bad_request(f"QoS Specs {q.id} is still associated with entities.")
    for t in users:
        t.qos_specs_id = None
    s.delete(q)
    return empty(202)


@route("GET", "/qos-specs/{qos_id}/associations")
def qos_associations(req: Request, s: Session) -> Response:
    q = _get_qos(s, req)
    rows = s.scalars(select(m.VolumeType).where(m.VolumeType.qos_specs_id == q.id))
    return json_response({"qos_associations": [
        {"association_type": "volume_type", "name": t.name, "id": t.id} for t in rows]})


def _type_arg(s: Session, req: Request) -> m.VolumeType:
    ref = req.arg("vol_type_id")
    if not ref:
        raise e.bad_request("Volume Type id must not be None.", "vol_type_id")
    t = s.get(m.VolumeType, ref)
    if t is None:
        raise e.not_found("volume_type", ref)
    return t


@route("GET", "/qos-specs/{qos_id}/associate")
def qos_associate(req: Request, s: Session) -> Response:
    q = _get_qos(s, req)
    t = _type_arg(s, req)
    if t.qos_specs_id and t.qos_specs_id != q.id:
        raise e.bad_request(f"Type {t.id} is already associated with another qos specs: "
                            f"{t.qos_specs_id}")
    t.qos_specs_id = q.id
    return empty(202)


@route("GET", "/qos-specs/{qos_id}/disassociate")
def qos_disassociate(req: Request, s: Session) -> Response:
    q = _get_qos(s, req)
    t = _type_arg(s, req)
    if t.qos_specs_id == q.id:
        t.qos_specs_id = None
    return empty(202)


@route("GET", "/qos-specs/{qos_id}/disassociate_all")
def qos_disassociate_all(req: Request, s: Session) -> Response:
    q = _get_qos(s, req)
    for t in s.scalars(select(m.VolumeType).where(m.VolumeType.qos_specs_id == q.id)):
        t.qos_specs_id = None
    return empty(202)
