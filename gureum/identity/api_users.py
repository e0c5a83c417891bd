"""Users and groups (/v3/users, /v3/groups) and group membership.

Who may do what is Keystone's (gureum/identity/policy.py): admins everything,
system readers read, a domain-scoped token's reader reads its domain's users
and groups and its manager creates, changes and deletes them and manages the
membership of the domain's users in its groups. A target that does not exist
is a 403 to everyone but an admin, who gets the 404, as with Keystone.

Passwords are bcrypt-hashed outside any transaction (a hash takes a quarter
of a second at Keystone's cost): the handler checks the request in a read
transaction, hashes after it, and writes in a transaction of its own
(AfterTransaction / InTransaction of gureum/api/transaction.py).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.transaction import AfterTransaction, InTransaction
from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.context import RequestContext
from gureum.errors import Unauthorized
from gureum.identity import assignments, policy, schemas, service, views
from gureum.identity import models as m
from gureum.identity.api_admin import body_of, filtered, ident_of, one
from gureum.identity.login import Login, LoginFailed

router = Router()


def _new_in_domain(ctx: RequestContext | None, body: dict[str, object]) -> str:
    """The domain a new user or group lands in: the one named, else the token's
    (a domain-scoped token), else the default domain."""
    named = body.get("domain_id")
    if named:
        return str(named)
    return ctx.domain_id if ctx and ctx.domain_id else service.DEFAULT_DOMAIN_ID


def _domain_of(s: Session, model: type[m.User] | type[m.Group], ident: str) -> str | None:
    """The domain of the user (group), None if there is no such one."""
    return s.scalar(select(model.domain_id).where(model.id == ident))


# -- users ---------------------------------------------------------------------------

@router.get("/v3/users", tx=True)
def list_users(req: Request, s: Session) -> Response:
    only_domain = policy.listing(req.context, "identity:list_users")
    stmt = filtered(req, select(m.User).order_by(m.User.name),
                    {"name": m.User.name, "domain_id": m.User.domain_id,
                     "enabled": m.User.enabled})
    if only_domain is not None:
        stmt = stmt.where(m.User.domain_id == only_domain)
    items = [views.user(u, req.base_url) for u in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "users", "users", items))


@router.post("/v3/users", tx="read")
def create_user(req: Request, s: Session) -> AfterTransaction:
    ident = ident_of(req)
    body = body_of(req, schemas.user_create, "user")
    domain_id = _new_in_domain(req.context, body)
    policy.admin_or_domain_manager(req.context, domain_id, "identity:create_user")
    service.get_or_404(s, m.Domain, domain_id, "domain")  # before paying for a hash

    def hash_then_write() -> InTransaction:
        password_hash = service.hash_password(ident, body.get("password"))

        def write(ws: Session) -> Response:
            u = service.create_user(ident, ws, {**body, "domain_id": domain_id},
                                    password_hash)
            return one("user", views.user(u, req.base_url), 201)
        return InTransaction(write)

    return AfterTransaction(hash_then_write)


@router.get("/v3/users/{user_id}", tx=True)
def get_user(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.read_user(req.context, user_id, _domain_of(s, m.User, user_id),
                     "identity:get_user")
    u = service.get_or_404(s, m.User, user_id, "user")
    return one("user", views.user(u, req.base_url))


@router.patch("/v3/users/{user_id}", tx="read")
def update_user(req: Request, s: Session) -> AfterTransaction:
    ident = ident_of(req)
    user_id = req.path_params["user_id"]
    body = body_of(req, schemas.user_update, "user")
    policy.admin_or_domain_manager(req.context, _domain_of(s, m.User, user_id),
                                   "identity:update_user")
    service.get_or_404(s, m.User, user_id, "user")

    def hash_then_write() -> InTransaction:
        password_hash = service.hash_password(ident, body.get("password"))

        def write(ws: Session) -> Response:
            u = service.update_user(ident, ws, user_id, body, password_hash)
            return one("user", views.user(u, req.base_url))
        return InTransaction(write)

    return AfterTransaction(hash_then_write)


@router.delete("/v3/users/{user_id}", tx=True)
def delete_user(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.admin_or_domain_manager(req.context, _domain_of(s, m.User, user_id),
                                   "identity:delete_user")
    service.delete_user(ident_of(req), s, user_id)
    return empty()


@router.post("/v3/users/{user_id}/password", auth=False)
async def change_password(req: Request) -> Response:
    """The user's own password change (Keystone: no policy, no token needed).

    The original password is the proof, so a wrong one counts towards the
    lockout and the address throttle exactly as a failed login does. It stays
    outside the route's transaction helper: the check of the original password
    (bcrypt, and the lockout's own writes) and the new hash come before the one
    short write.
    """
    ident = ident_of(req)
    user_id = req.path_params["user_id"]
    body = body_of(req, schemas.password_change, "user")
    address = req.remote_addr
    delay = ident.throttle.delay(address)
    if delay:
        await asyncio.sleep(delay)

    def _change() -> None:
        login = Login(req.app_state.tokens, address)
        try:
            login.verify_password({"id": user_id}, body["original_password"])
        except LoginFailed as exc:
            ident.throttle.failed(address)
            raise Unauthorized(f"Error when changing user password: {exc.message}") from None
        new_hash = service.hash_password(ident, body["password"])
        assert new_hash is not None
        with ident.db.session() as s:
            service.change_password(ident, s, user_id, new_hash)

    await asyncio.get_running_loop().run_in_executor(req.app_state.executor, _change)
    return empty()


@router.get("/v3/users/{user_id}/projects", tx=True)
def list_user_projects(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.read_user(req.context, user_id, _domain_of(s, m.User, user_id),
                     "identity:list_user_projects")
    service.get_or_404(s, m.User, user_id, "user")
    items = [views.project(p, req.base_url) for p in assignments.user_projects(s, user_id)]
    return json_response(views.collection(req.base_url, f"users/{user_id}/projects",
                                          "projects", items))


@router.get("/v3/users/{user_id}/groups", tx=True)
def list_user_groups(req: Request, s: Session) -> Response:
    user_id = req.path_params["user_id"]
    policy.read_user(req.context, user_id, _domain_of(s, m.User, user_id),
                     "identity:list_groups_for_user")
    service.get_or_404(s, m.User, user_id, "user")
    groups = s.scalars(select(m.Group).join(
        m.GroupMembership, m.GroupMembership.group_id == m.Group.id)
        .where(m.GroupMembership.user_id == user_id).order_by(m.Group.name))
    items = [views.group(g, req.base_url) for g in groups]
    return json_response(views.collection(req.base_url, f"users/{user_id}/groups", "groups",
                                          items))


# -- groups --------------------------------------------------------------------------

@router.get("/v3/groups", tx=True)
def list_groups(req: Request, s: Session) -> Response:
    only_domain = policy.listing(req.context, "identity:list_groups")
    stmt = filtered(req, select(m.Group).order_by(m.Group.name),
                    {"name": m.Group.name, "domain_id": m.Group.domain_id})
    if only_domain is not None:
        stmt = stmt.where(m.Group.domain_id == only_domain)
    items = [views.group(g, req.base_url) for g in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "groups", "groups", items))


@router.post("/v3/groups", tx=True)
def create_group(req: Request, s: Session) -> Response:
    body = body_of(req, schemas.group_create, "group")
    domain_id = _new_in_domain(req.context, body)
    policy.admin_or_domain_manager(req.context, domain_id, "identity:create_group")
    g = service.create_group(ident_of(req), s, {**body, "domain_id": domain_id})
    return one("group", views.group(g, req.base_url), 201)


@router.get("/v3/groups/{group_id}", tx=True)
def get_group(req: Request, s: Session) -> Response:
    group_id = req.path_params["group_id"]
    policy.read_in_domain(req.context, _domain_of(s, m.Group, group_id),
                          "identity:get_group")
    g = service.get_or_404(s, m.Group, group_id, "group")
    return one("group", views.group(g, req.base_url))


@router.patch("/v3/groups/{group_id}", tx=True)
def update_group(req: Request, s: Session) -> Response:
    group_id = req.path_params["group_id"]
    body = body_of(req, schemas.group_update, "group")
    policy.admin_or_domain_manager(req.context, _domain_of(s, m.Group, group_id),
                                   "identity:update_group")
    g = service.update_group(ident_of(req), s, group_id, body)
    return one("group", views.group(g, req.base_url))


@router.delete("/v3/groups/{group_id}", tx=True)
def delete_group(req: Request, s: Session) -> Response:
    # Keystone looks the group up before its policy: a missing one is a 404 to all.
    g = service.get_or_404(s, m.Group, req.path_params["group_id"], "group")
    policy.admin_or_domain_manager(req.context, g.domain_id, "identity:delete_group")
    service.delete_group(ident_of(req), s, g.id)
    return empty()


@router.get("/v3/groups/{group_id}/users", tx=True)
def list_group_users(req: Request, s: Session) -> Response:
    group_id = req.path_params["group_id"]
    ctx = policy.read_in_domain(req.context, _domain_of(s, m.Group, group_id),
                                "identity:list_users_in_group")
    service.get_or_404(s, m.Group, group_id, "group")
    stmt = select(m.User).join(m.GroupMembership, m.GroupMembership.user_id == m.User.id) \
        .where(m.GroupMembership.group_id == group_id).order_by(m.User.name)
    if ctx.domain_id:  # a domain-scoped token sees its domain's members only
        stmt = stmt.where(m.User.domain_id == ctx.domain_id)
    items = [views.user(u, req.base_url) for u in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, f"groups/{group_id}/users", "users",
                                          items))


def _membership(req: Request, s: Session, rule: str, change: bool) -> tuple[str, str]:
    group_id, user_id = req.path_params["group_id"], req.path_params["user_id"]
    policy.group_membership(req.context, _domain_of(s, m.Group, group_id),
                            _domain_of(s, m.User, user_id), rule, change)
    return group_id, user_id


@router.put("/v3/groups/{group_id}/users/{user_id}", tx=True)
def add_group_user(req: Request, s: Session) -> Response:
    group_id, user_id = _membership(req, s, "identity:add_user_to_group", change=True)
    service.add_group_member(ident_of(req), s, group_id, user_id)
    return empty()


@router.head("/v3/groups/{group_id}/users/{user_id}", tx=True)
def check_group_user(req: Request, s: Session) -> Response:
    group_id, user_id = _membership(req, s, "identity:check_user_in_group", change=False)
    service.check_group_member(s, group_id, user_id)
    return empty()


router.add("GET", "/v3/groups/{group_id}/users/{user_id}", check_group_user, tx=True)


@router.delete("/v3/groups/{group_id}/users/{user_id}", tx=True)
def remove_group_user(req: Request, s: Session) -> Response:
    group_id, user_id = _membership(req, s, "identity:remove_user_from_group", change=True)
    service.remove_group_member(ident_of(req), s, group_id, user_id)
    return empty()
