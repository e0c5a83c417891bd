"""POST /v3/auth/tokens: prove identity with each method, resolve scope, issue.

This flow opens its own short transactions (it is an edge): password and
secret checks are bcrypt-bound, so they run with no transaction open, and the
failure counter is written in a transaction of its own.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.db.base import utcnow
from gureum.errors import Unauthorized
from gureum.identity import models as m
from gureum.identity.auth import TokenInvalid, TokenService, ValidatedToken
from gureum.identity.lockout import (
    find_user_id,
    load_password_check,
    record_failure,
    reset_failures,
)
from gureum.identity.passwords import check_secret
from gureum.identity.tokens import (
    SCOPE_DOMAIN,
    SCOPE_NONE,
    SCOPE_PROJECT,
    SCOPE_SYSTEM,
    TokenPayload,
    new_audit_id,
)

GENERIC = "The request you have made requires authentication."


class LoginFailed(Unauthorized):
    """A failed login; counts against the caller's address."""


@dataclass
class Proof:
    """What the methods established about the caller."""

    user_id: str | None = None
    methods: list[str] = field(default_factory=list)
    expires_at: float | None = None
    parent_audit_id: str | None = None
    app_cred_id: str | None = None
    app_cred_project: str | None = None

    def set_user(self, user_id: str) -> None:
        if self.user_id is not None and self.user_id != user_id:
            raise LoginFailed("The methods identify different users.")
        self.user_id = user_id


class Login:
    def __init__(self, tokens: TokenService, address: str = "") -> None:
        self.tokens = tokens
        self.address = address
        self.identity = tokens.identity
        self.conf = tokens.identity.conf

    def authenticate(self, auth: dict[str, Any]) -> tuple[str, ValidatedToken]:
        identity = auth["identity"]
        proof = Proof()
        for method in dict.fromkeys(identity["methods"]):
            data = identity.get(method)
            if not isinstance(data, dict):
                raise LoginFailed(f"The '{method}' method needs its '{method}' object.")
            if method == "password":
                self._password(data["user"], proof)
            elif method == "token":
                self._token(data, proof)
            elif method == "application_credential":
                self._application_credential(data, proof)
            else:
                raise LoginFailed(f"Attempted to authenticate with an unsupported method: "
                                  f"{method}.")
        if proof.user_id is None:
            raise LoginFailed(GENERIC)
        return self._issue(proof, auth.get("scope"))

    # -- methods ---------------------------------------------------------------
    def _password(self, ref: dict[str, Any], proof: Proof) -> None:
        user_id = self.verify_password(ref, ref.get("password", ""))
        proof.set_user(user_id)
        proof.methods.append("password")

    def verify_password(self, ref: dict[str, Any], password: str) -> str:
        """The id of the user ``ref`` names when ``password`` is theirs; LoginFailed
        otherwise. Every failure costs one bcrypt check at the configured cost, so
        an unknown user answers as slowly as a wrong password."""
        db = self.identity.db
        rounds = self.conf.password_hash_rounds
        with db.session(write=False) as s:
            user_id = find_user_id(s, ref)
            check = load_password_check(s, user_id, self.address) if user_id else None
        if check is None:
            check_secret(password, None, rounds)
            raise LoginFailed(GENERIC)
        now = utcnow()
        until = check.locked_until(self.conf.lockout_failure_attempts,
                                   self.conf.lockout_duration)
        if until is not None and until > now:
            check_secret(password, check.password_hash, rounds)  # same time as any answer
            # Keystone names the user id here; an unauthenticated caller learns none.
            raise LoginFailed("The account is locked for this address; try again later.")
        if until is not None:  # the lock expired: start counting again
            with db.session() as s:
                reset_failures(s, check.user_id, self.address)
        if not check_secret(password, check.password_hash, rounds):
            with db.session() as s:
                record_failure(s, check.user_id, self.address)
            raise LoginFailed(GENERIC)
        if not check.enabled:
            raise LoginFailed("The account is disabled.")
        if not check.domain_enabled:
            raise LoginFailed(GENERIC)
        if check.failures and until is None:
            with db.session() as s:
                reset_failures(s, check.user_id, self.address)
        return check.user_id

    def _token(self, data: dict[str, Any], proof: Proof) -> None:
        try:
            vt = self.tokens.validate_with_db(data["id"])
        except TokenInvalid:
            raise LoginFailed(GENERIC) from None
        p = vt.payload
        proof.set_user(p.user_id)
        proof.methods.extend(["token", *p.methods])
        # A re-scoped token lives no longer than the one it came from.
        proof.expires_at = p.expires_at
        proof.parent_audit_id = p.audit_ids[0] if p.audit_ids else None
        if p.app_cred_id:
            proof.app_cred_id = p.app_cred_id
            proof.app_cred_project = vt.project.id if vt.project else None

    def _application_credential(self, data: dict[str, Any], proof: Proof) -> None:
        with self.identity.db.session(write=False) as s:
            cred = self._find_app_cred(s, data)
            info = (cred.id, cred.user_id, cred.project_id, cred.secret_hash,
                    cred.expires_at) if cred else None
        if info is None:
            check_secret(data.get("secret", ""), None, self.conf.password_hash_rounds)
            raise LoginFailed(GENERIC)
        cred_id, user_id, project_id, secret_hash, expires_at = info
        if not check_secret(data.get("secret", ""), secret_hash,
                            self.conf.password_hash_rounds):
            raise LoginFailed(GENERIC)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if expires_at is not None and expires_at <= now:
            raise LoginFailed("The application credential has expired.")
        proof.set_user(user_id)
        proof.methods.append("application_credential")
        proof.app_cred_id = cred_id
        proof.app_cred_project = project_id
        if expires_at is not None:
            proof.expires_at = expires_at.replace(tzinfo=dt.UTC).timestamp()

    def _find_app_cred(self, s: Session, data: dict[str, Any]) -> m.ApplicationCredential | None:
        if "id" in data:
            return s.get(m.ApplicationCredential, data["id"])
        user_ref = data.get("user")
        if not isinstance(user_ref, dict) or "name" not in data:
            return None
        user_id = find_user_id(s, user_ref)
        if user_id is None:
            return None
        return s.scalar(select(m.ApplicationCredential).where(
            m.ApplicationCredential.user_id == user_id,
            m.ApplicationCredential.name == data["name"]))

    # -- scope and issue -----------------------------------------------------------
    def _issue(self, proof: Proof, scope: Any) -> tuple[str, ValidatedToken]:
        assert proof.user_id is not None
        now = time.time()
        with self.identity.db.session(write=False) as s:
            cache = self.identity.cache
            if cache.needs_check():
                cache.check(s)
            if proof.app_cred_id:
                if scope not in (None, "unscoped") and self._scope_id(s, scope) != (
                        SCOPE_PROJECT, proof.app_cred_project):
                    raise LoginFailed("Application credentials cannot request a scope.")
                kind, scope_id = SCOPE_PROJECT, proof.app_cred_project
            elif scope is None:
                kind, scope_id = self._default_scope(s, proof.user_id)
            elif scope == "unscoped":
                kind, scope_id = SCOPE_NONE, None
            else:
                kind, scope_id = self._scope_id(s, scope)
            expires = now + self.conf.token_expiration
            if proof.expires_at is not None:
                expires = min(expires, proof.expires_at)
            audit = (new_audit_id(),) + ((proof.parent_audit_id,)
                                         if proof.parent_audit_id else ())
            payload = TokenPayload(proof.user_id, tuple(dict.fromkeys(proof.methods)), kind,
                                   scope_id, now, expires, audit, proof.app_cred_id)
            try:
                vt = self.tokens.resolve(payload, s, now=now)
            except TokenInvalid as exc:
                raise LoginFailed(self._scope_message(proof.user_id, kind, scope_id,
                                                      str(exc))) from None
        return self.identity.codec.encode(payload), vt

    def _scope_message(self, user_id: str, kind: int, scope_id: str | None, why: str) -> str:
        if why == "no roles on the scope":
            target = {SCOPE_PROJECT: "project", SCOPE_DOMAIN: "domain"}.get(kind, "system")
            return f"User {user_id} has no access to {target} {scope_id or 'all'}"
        if why.startswith("user"):
            return GENERIC
        return f"Could not use the requested scope: {why}."

    def _default_scope(self, s: Session, user_id: str) -> tuple[int, str | None]:
        user = s.get(m.User, user_id)
        project_id = user.default_project_id if user else None
        if not project_id:
            return SCOPE_NONE, None
        project = self.identity.project(project_id, s)
        if project is None or not project.enabled:
            return SCOPE_NONE, None
        if not self.identity.roles_on(user_id, "project", project_id, s):
            return SCOPE_NONE, None
        return SCOPE_PROJECT, project_id

    def _scope_id(self, s: Session, scope: dict[str, Any]) -> tuple[int, str | None]:
        if "project" in scope:
            ref = scope["project"]
            if "id" in ref:
                project_id = s.scalar(select(m.Project.id).where(m.Project.id == ref["id"]))
            else:
                domain_id = self._domain_id(s, ref.get("domain") or {})
                project_id = s.scalar(select(m.Project.id).where(
                    m.Project.domain_id == domain_id, m.Project.name == ref.get("name")))
            if project_id is None:
                raise LoginFailed(f"Could not find project: {ref.get('id') or ref.get('name')}.")
            return SCOPE_PROJECT, project_id
        if "domain" in scope:
            domain_id = self._domain_id(s, scope["domain"])
            if domain_id is None:
                ref = scope["domain"]
                raise LoginFailed(f"Could not find domain: {ref.get('id') or ref.get('name')}.")
            return SCOPE_DOMAIN, domain_id
        if "system" in scope:
            return SCOPE_SYSTEM, m.SYSTEM_TARGET
        if "OS-TRUST:trust" in scope:
            raise LoginFailed("Trusts are not supported by this cloud.")
        raise LoginFailed("The scope must name a project, a domain or the system.")

    def _domain_id(self, s: Session, ref: dict[str, Any]) -> str | None:
        if "id" in ref:
            return s.scalar(select(m.Domain.id).where(m.Domain.id == ref["id"]))
        if "name" in ref:
            return s.scalar(select(m.Domain.id).where(m.Domain.name == ref["name"]))
        return None
