"""Authentication (issuing tokens) and token validation.

Issuing: each requested method (password, token, application_credential)
proves who the caller is; the scope is resolved (explicit, or the user's
default project); the payload is validated exactly as a presented token would
be, then encrypted. Validation: decrypt, check expiry and the revocation list,
then re-read user, scope and roles through the identity cache.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gureum.context import RequestContext
from gureum.errors import Unauthorized
from gureum.identity import models as m
from gureum.identity.cache import (
    AppCredInfo,
    CacheMiss,
    DomainInfo,
    ProjectInfo,
    UserInfo,
)
from gureum.identity.core import Identity, RoleRef
from gureum.identity.tokens import (
    SCOPE_DOMAIN,
    SCOPE_NONE,
    SCOPE_PROJECT,
    SCOPE_SYSTEM,
    TokenFormatError,
    TokenPayload,
)


class TokenInvalid(Exception):
    """The token cannot be used (any reason); the message says why, for logs."""


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def isotime(epoch: float) -> str:
    """UTC with microseconds and a Z, as Keystone writes token times: what
    ``datetime.fromtimestamp(epoch, UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')`` gives
    (microseconds rounded half to even, as it does), with the part up to the
    seconds cached: tokens issued over a few minutes share a few hundred of them."""
    fraction, whole = math.modf(epoch)
    micros = round(fraction * 1e6)
    seconds = int(whole)
    if micros >= 1_000_000:
        seconds += 1
        micros -= 1_000_000
    elif micros < 0:
        seconds -= 1
        micros += 1_000_000
    return f"{_iso_seconds(seconds)}.{micros:06d}Z"


@dataclass(frozen=True)
class ValidatedToken:
    payload: TokenPayload
    user: UserInfo
    user_domain: DomainInfo
    project: ProjectInfo | None = None
    project_domain: DomainInfo | None = None
    domain: DomainInfo | None = None
    roles: tuple[RoleRef, ...] = ()
    app_cred: AppCredInfo | None = None

    def context(self, token: str, request_id: str, remote_addr: str = "") -> RequestContext:
        return RequestContext(
            user_id=self.user.id, user_name=self.user.name, user_domain_id=self.user.domain_id,
            project_id=self.project.id if self.project else None,
            project_name=self.project.name if self.project else None,
            project_domain_id=self.project.domain_id if self.project else None,
            domain_id=self.domain.id if self.domain else None,
            system_scope="all" if self.payload.system else None,
            roles=frozenset(name for _id, name in self.roles),
            request_id=request_id, auth_token=token, audit_ids=self.payload.audit_ids,
            application_credential_id=self.app_cred.id if self.app_cred else None,
            remote_addr=remote_addr,
        )

    def body(self, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
        p = self.payload
        token: dict[str, Any] = {
            "methods": list(p.methods),
            "user": {
                "domain": {"id": self.user_domain.id, "name": self.user_domain.name},
                "id": self.user.id, "name": self.user.name, "password_expires_at": None,
            },
            "audit_ids": list(p.audit_ids),
            "expires_at": isotime(p.expires_at),
            "issued_at": isotime(p.issued_at),
        }
        if self.project is not None and self.project_domain is not None:
            token["project"] = {
                "domain": {"id": self.project_domain.id, "name": self.project_domain.name},
                "id": self.project.id, "name": self.project.name,
            }
            token["is_domain"] = False
        elif self.domain is not None:
            token["domain"] = {"id": self.domain.id, "name": self.domain.name}
        elif p.system:
            token["system"] = {"all": True}
        if p.scope_kind != SCOPE_NONE:
            token["roles"] = [{"id": rid, "name": name} for rid, name in self.roles]
            if catalog is not None:
                token["catalog"] = catalog
        if self.app_cred is not None:
            token["application_credential"] = {
                "id": self.app_cred.id, "name": self.app_cred.name,
                "restricted": not self.app_cred.unrestricted,
            }
        return {"token": token}


class TokenService:
    """Validates payloads and tokens; used by the auth API and the authenticator."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    # -- validation ------------------------------------------------------------
    def resolve(self, p: TokenPayload, s: Session | None, now: float | None = None,
                allow_expired: bool = False) -> ValidatedToken:
        """Everything a token stands for, checked against current identity data.

        With ``s`` None only the cache is used and CacheMiss may be raised.
        """
        ident = self.identity
        now = time.time() if now is None else now
        if not allow_expired and p.expires_at <= now:
            raise TokenInvalid("token expired")
        if ident.revocations(s).revoked(p.user_id, p.audit_ids, p.issued_at):
            raise TokenInvalid("token revoked")
        user = ident.user(p.user_id, s)
        if user is None or not user.enabled:
            raise TokenInvalid("user missing or disabled")
        user_domain = ident.domain(user.domain_id, s)
        if user_domain is None or not user_domain.enabled:
            raise TokenInvalid("user's domain missing or disabled")
        app_cred = None
        if p.app_cred_id:
            app_cred = ident.app_cred(p.app_cred_id, s)
            if app_cred is None or app_cred.user_id != user.id:
                raise TokenInvalid("application credential deleted")
            if app_cred.expires_at is not None and app_cred.expires_at <= now:
                raise TokenInvalid("application credential expired")
        if p.scope_kind == SCOPE_NONE:
            return ValidatedToken(p, user, user_domain, app_cred=app_cred)
        # Built once at the end: dataclasses.replace() is slow on this hot path.
        project: ProjectInfo | None = None
        pdomain: DomainInfo | None = None
        domain: DomainInfo | None = None
        if p.scope_kind == SCOPE_PROJECT:
            assert p.scope_id is not None
            project = ident.project(p.scope_id, s)
            if project is None or not project.enabled:
                raise TokenInvalid("project missing or disabled")
            pdomain = ident.domain(project.domain_id, s)
            if pdomain is None or not pdomain.enabled:
                raise TokenInvalid("project's domain missing or disabled")
            roles = ident.roles_on(user.id, "project", project.id, s)
        elif p.scope_kind == SCOPE_DOMAIN:
            assert p.scope_id is not None
            domain = ident.domain(p.scope_id, s)
            if domain is None or not domain.enabled:
                raise TokenInvalid("domain missing or disabled")
            roles = ident.roles_on(user.id, "domain", domain.id, s)
        elif p.scope_kind == SCOPE_SYSTEM:
            roles = ident.roles_on(user.id, "system", m.SYSTEM_TARGET, s)
        else:
            raise TokenInvalid("unknown scope")
        if app_cred is not None:
            # Only the roles delegated to the credential, and only while the user has them.
            allowed = set(app_cred.role_ids)
            roles = tuple(r for r in roles if r[0] in allowed)
        if not roles:
            raise TokenInvalid("no roles on the scope")
        return ValidatedToken(p, user, user_domain, project, pdomain, domain, roles, app_cred)

    def decode(self, token: str) -> TokenPayload:
        try:
            return self.identity.codec.decode(token)
        except TokenFormatError as exc:
            raise TokenInvalid(str(exc)) from None

    def validate(self, token: str, s: Session | None, allow_expired: bool = False
                 ) -> ValidatedToken:
        return self.resolve(self.decode(token), s, allow_expired=allow_expired)

    def validate_with_db(self, token: str, allow_expired: bool = False) -> ValidatedToken:
        """Full validation, reading the database for whatever is not cached."""
        payload = self.decode(token)
        cache = self.identity.cache
        if not cache.needs_check():
            try:
                return self.resolve(payload, None, allow_expired=allow_expired)
            except CacheMiss:
                pass
        with self.identity.db.session(write=False) as s:
            return self._resolve_in(payload, s, allow_expired)

    def validate_in(self, token: str, s: Session, allow_expired: bool = False
                    ) -> ValidatedToken:
        """Full validation inside the caller's transaction."""
        return self._resolve_in(self.decode(token), s, allow_expired)

    def _resolve_in(self, payload: TokenPayload, s: Session, allow_expired: bool
                    ) -> ValidatedToken:
        if self.identity.cache.needs_check():
            self.identity.cache.check(s)
        return self.resolve(payload, s, allow_expired=allow_expired)


class TokenAuthenticator:
    """The API's authenticator: X-Auth-Token → RequestContext."""

    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens
        self.identity = tokens.identity

    def validate_fast(self, token: str, request_id: str, remote_addr: str
                      ) -> RequestContext | None:
        """The context from caches alone (on the event loop), or None when the
        database is needed."""
        if self.identity.cache.needs_check():
            return None
        try:
            vt = self.tokens.validate(token, None)
        except CacheMiss:
            return None
        except TokenInvalid:
            raise Unauthorized() from None
        return vt.context(token, request_id, remote_addr)

    def validate(self, token: str, request_id: str, remote_addr: str) -> RequestContext:
        """The context for a token; may read the database (runs in a thread)."""
        try:
            vt = self.tokens.validate_with_db(token)
        except TokenInvalid:
            raise Unauthorized() from None
        return vt.context(token, request_id, remote_addr)
