"""The Identity v3 API family, mounted at /identity."""

from __future__ import annotations

from gureum.api.app import Family
from gureum.api.faults import identity_fault
from gureum.api.web import Router
from gureum.identity import (
    api_admin,
    api_auth,
    api_catalog,
    api_credentials,
    api_domain_config,
    api_ep_filter,
    api_limits,
    api_registries,
    api_roles,
    api_users,
)


def family() -> Family:
    router = Router()
    for module in (api_auth, api_admin, api_users, api_roles, api_catalog, api_credentials,
                   api_domain_config, api_registries, api_ep_filter, api_limits):
        router.include(module.router)
    return Family("identity", "/identity", router, identity_fault)
