"""The request context: who is calling, in which scope, with which roles.

A context is built once per request from the validated token and passed
explicitly to services; it is never stored in a global.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def new_request_id() -> str:
    """``req-<uuid4>``. Ids only need to be unique, not secret: a seeded PRNG gives
    them without a system call per request (uuid.uuid4 costs ~3x as much)."""
    h = f"{random.getrandbits(128):032x}"
    return f"req-{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


@dataclass(frozen=True)
class RequestContext:
    user_id: str = ""
    user_name: str = ""
    user_domain_id: str = ""
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None  # set for domain-scoped tokens
    system_scope: str | None = None  # "all" for system-scoped tokens
    roles: frozenset[str] = field(default_factory=frozenset)
    request_id: str = field(default_factory=new_request_id)
    auth_token: str = ""
    audit_ids: tuple[str, ...] = ()
    application_credential_id: str | None = None
    remote_addr: str = ""

    @property
    def is_admin(self) -> bool:
        """The admin role in any scope (Nova's ``context_is_admin``, Keystone's
        ``admin_required``)."""
        return "admin" in self.roles

    @property
    def is_manager(self) -> bool:
        """The manager role (implied by admin): Nova's ``project_manager_api`` when
        the token is scoped to the project acted on."""
        return "manager" in self.roles or self.is_admin

    @property
    def is_member(self) -> bool:
        return "member" in self.roles or self.is_admin

    @property
    def is_reader(self) -> bool:
        return self.can_read

    @property
    def is_service(self) -> bool:
        """The service role: service-to-service calls (Nova's ``service_api``)."""
        return "service" in self.roles

    @property
    def is_system(self) -> bool:
        """A system-scoped token (``system_scope:all``)."""
        return self.system_scope == "all"

    @property
    def is_system_admin(self) -> bool:
        return self.is_system and self.is_admin

    @property
    def is_system_reader(self) -> bool:
        return self.is_system and self.can_read

    @property
    def can_write(self) -> bool:
        """Member (or admin) may change things in its scope; reader may not."""
        return "admin" in self.roles or "member" in self.roles

    @property
    def can_read(self) -> bool:
        return bool(self.roles & {"admin", "member", "reader"})

    @classmethod
    def system(cls, request_id: str | None = None) -> RequestContext:
        """An internal admin context for bootstrap, the conductor and tests."""
        return cls(user_id="gureum-internal", user_name="gureum",
                   roles=frozenset({"admin", "manager", "member", "reader"}),
                   system_scope="all", request_id=request_id or new_request_id())
