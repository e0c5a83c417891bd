"""Regions, services, endpoints and application credentials."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.transaction import AfterTransaction, InTransaction
from gureum.api.validation import validate
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.identity import appcreds, catalog, policy, schemas, service, views
from gureum.identity import models as m
from gureum.identity.api_admin import body_of, filtered, ident_of, one

router = Router()


# -- regions -------------------------------------------------------------------------

@router.get("/v3/regions", tx=True)
def list_regions(req: Request, s: Session) -> Response:
    policy.reader_or_admin(req.context, "identity:list_regions")
    stmt = filtered(req, select(m.Region).order_by(m.Region.id),
                    {"parent_region_id": m.Region.parent_region_id})
    items = [views.region(r, req.base_url) for r in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "regions", "regions", items))


@router.post("/v3/regions", tx=True)
def create_region(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_region")
    r = catalog.create_region(ident_of(req), s, body_of(req, schemas.region_create, "region"))
    return one("region", views.region(r, req.base_url), 201)


@router.put("/v3/regions/{region_id}", tx=True)
def put_region(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_region")
    body = body_of(req, schemas.region_create, "region")
    region_id = validate(schemas.region_id, req.path_params["region_id"])
    r = catalog.create_region(ident_of(req), s, body, region_id=region_id)
    return one("region", views.region(r, req.base_url), 201)


@router.get("/v3/regions/{region_id}", tx=True)
def get_region(req: Request, s: Session) -> Response:
    policy.reader_or_admin(req.context, "identity:get_region")
    r = service.get_or_404(s, m.Region, req.path_params["region_id"], "region")
    return one("region", views.region(r, req.base_url))


@router.patch("/v3/regions/{region_id}", tx=True)
def update_region(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_region")
    r = catalog.update_region(ident_of(req), s, req.path_params["region_id"],
                              body_of(req, schemas.region_update, "region"))
    return one("region", views.region(r, req.base_url))


@router.delete("/v3/regions/{region_id}", tx=True)
def delete_region(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_region")
    catalog.delete_region(ident_of(req), s, req.path_params["region_id"])
    return empty()


# -- services ------------------------------------------------------------------------

@router.get("/v3/services", tx=True)
def list_services(req: Request, s: Session) -> Response:
    policy.reader_or_admin(req.context, "identity:list_services")
    stmt = filtered(req, select(m.Service).order_by(m.Service.type, m.Service.name),
                    {"type": m.Service.type, "name": m.Service.name})
    items = [views.service(x, req.base_url) for x in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "services", "services", items))


@router.post("/v3/services", tx=True)
def create_service(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_service")
    svc = catalog.create_service(ident_of(req), s,
                                 body_of(req, schemas.service_create, "service"))
    return one("service", views.service(svc, req.base_url), 201)


@router.get("/v3/services/{service_id}", tx=True)
def get_service(req: Request, s: Session) -> Response:
    policy.reader_or_admin(req.context, "identity:get_service")
    svc = service.get_or_404(s, m.Service, req.path_params["service_id"], "service")
    return one("service", views.service(svc, req.base_url))


@router.patch("/v3/services/{service_id}", tx=True)
def update_service(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_service")
    svc = catalog.update_service(ident_of(req), s, req.path_params["service_id"],
                                 body_of(req, schemas.service_update, "service"))
    return one("service", views.service(svc, req.base_url))


@router.delete("/v3/services/{service_id}", tx=True)
def delete_service(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_service")
    catalog.delete_service(ident_of(req), s, req.path_params["service_id"])
    return empty()


# -- endpoints -----------------------------------------------------------------------

@router.get("/v3/endpoints", tx=True)
def list_endpoints(req: Request, s: Session) -> Response:
    policy.reader_or_admin(req.context, "identity:list_endpoints")
    stmt = filtered(req, select(m.Endpoint).order_by(m.Endpoint.service_id,
                                                     m.Endpoint.interface),
                    {"interface": m.Endpoint.interface, "service_id": m.Endpoint.service_id,
                     "region_id": m.Endpoint.region_id, "enabled": m.Endpoint.enabled})
    items = [views.endpoint(e, req.base_url) for e in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "endpoints", "endpoints", items))


@router.post("/v3/endpoints", tx=True)
def create_endpoint(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_endpoint")
    e = catalog.create_endpoint(ident_of(req), s,
                                body_of(req, schemas.endpoint_create, "endpoint"))
    return one("endpoint", views.endpoint(e, req.base_url), 201)


@router.get("/v3/endpoints/{endpoint_id}", tx=True)
def get_endpoint(req: Request, s: Session) -> Response:
    policy.reader_or_admin(req.context, "identity:get_endpoint")
    e = service.get_or_404(s, m.Endpoint, req.path_params["endpoint_id"], "endpoint")
    return one("endpoint", views.endpoint(e, req.base_url))


@router.patch("/v3/endpoints/{endpoint_id}", tx=True)
def update_endpoint(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_endpoint")
    e = catalog.update_endpoint(ident_of(req), s, req.path_params["endpoint_id"],
                                body_of(req, schemas.endpoint_update, "endpoint"))
    return one("endpoint", views.endpoint(e, req.base_url))


@router.delete("/v3/endpoints/{endpoint_id}", tx=True)
def delete_endpoint(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_endpoint")
    catalog.delete_endpoint(ident_of(req), s, req.path_params["endpoint_id"])
    return empty()


# -- application credentials -----------------------------------------------------------

APPCRED = "/v3/users/{user_id}/application_credentials"


@router.get(APPCRED, tx=True)
def list_app_creds(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.self_or_admin(req.context, user_id, "identity:list_application_credentials")
    stmt = select(m.ApplicationCredential).where(
        m.ApplicationCredential.user_id == user_id).order_by(m.ApplicationCredential.name)
    name = req.arg("name")
    if name is not None:
        stmt = stmt.where(m.ApplicationCredential.name == name)
    items = [views.app_cred(c, appcreds.roles_of(s, c), req.base_url) for c in s.scalars(stmt)]
    return json_response({"application_credentials": items, "links": {
        "self": f"{req.base_url}/v3/users/{user_id}/application_credentials",
        "previous": None, "next": None}})


@router.post(APPCRED, tx="read")
def create_app_cred(req: Request, s: Session) -> AfterTransaction:
    """The secret is hashed (bcrypt) after the read transaction that checks the
    request, and the credential written in a transaction of its own."""
    user_id = req.path_params["user_id"]
    ctx = policy.self_or_admin(req.context, user_id, "identity:create_application_credential")
    ident = ident_of(req)
    body = body_of(req, schemas.app_cred_create, "application_credential")
    service.get_or_404(s, m.User, user_id, "user")
    secret = body.get("secret") or appcreds.new_secret()

    def hash_then_write() -> InTransaction:
        secret_hash = service.hash_password(ident, secret)
        assert secret_hash is not None

        def write(ws: Session) -> Response:
            token_roles = list(ident.roles_on(ctx.user_id, "project", ctx.project_id, ws)
                               ) if ctx.project_id else []
            cred, roles = appcreds.create(ident, ws, ctx, user_id, body, secret_hash,
                                          token_roles)
            return one("application_credential",
                       views.app_cred(cred, roles, req.base_url, secret=secret), 201)
        return InTransaction(write)

    return AfterTransaction(hash_then_write)


@router.get(APPCRED + "/{cred_id}", tx=True)
def get_app_cred(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.self_or_admin(req.context, user_id, "identity:get_application_credential")
    cred = appcreds.get(s, user_id, req.path_params["cred_id"])
    return one("application_credential",
               views.app_cred(cred, appcreds.roles_of(s, cred), req.base_url))


@router.delete(APPCRED + "/{cred_id}", tx=True)
def delete_app_cred(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    ctx = policy.self_or_admin(req.context, user_id, "identity:delete_application_credential")
    appcreds.delete(ident_of(req), s, ctx, user_id, req.path_params["cred_id"])
    return empty()


# -- access rules (what application credentials may be limited to) ---------------------

ACCESS_RULES = "/v3/users/{user_id}/access_rules"


@router.get(ACCESS_RULES, tx=True)
def list_access_rules(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.self_or_admin(req.context, user_id, "identity:list_access_rules")
    service.get_or_404(s, m.User, user_id, "user")
    stmt = filtered(req, select(m.AccessRule).where(m.AccessRule.user_id == user_id)
                    .order_by(m.AccessRule.service, m.AccessRule.path, m.AccessRule.method),
                    {"service": m.AccessRule.service, "path": m.AccessRule.path,
                     "method": m.AccessRule.method})
    items = [views.access_rule(r, req.base_url, user_id) for r in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, f"users/{user_id}/access_rules",
                                          "access_rules", items))


@router.get(ACCESS_RULES + "/{rule_id}", tx=True)
def get_access_rule(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.self_or_admin(req.context, user_id, "identity:get_access_rule")
    rule = appcreds.get_access_rule(s, user_id, req.path_params["rule_id"])
    return one("access_rule", views.access_rule(rule, req.base_url, user_id))


@router.delete(ACCESS_RULES + "/{rule_id}", tx=True)
def delete_access_rule(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.self_or_admin(req.context, user_id, "identity:delete_access_rule")
    appcreds.delete_access_rule(ident_of(req), s, user_id, req.path_params["rule_id"])
    return empty()
