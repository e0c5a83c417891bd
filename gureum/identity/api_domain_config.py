"""Domain-specific configuration: /v3/domains/{id}/config[/{group}[/{option}]] and the
defaults under /v3/domains/config/…/default."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.identity import domain_config, policy, service
from gureum.identity import models as m

router = Router()

BASE = "/v3/domains/{domain_id}/config"
# Keystone lets anyone read the default domain's password rules (to show them when
# a password is chosen); gureum has none configured.
SECURITY_COMPLIANCE = {"password_regex": None, "password_regex_description": None}


def _parts(req: Request) -> tuple[str, str | None, str | None]:
    p = req.path_params
    return p["domain_id"], p.get("group"), p.get("option")


def _config_body(req: Request) -> Any:
    body = req.json()
    if not isinstance(body, dict) or "config" not in body:
        raise domain_config.InvalidDomainConfig("No options specified")
    return body["config"]


def _security_compliance(domain_id: str, option: str | None) -> dict[str, Any]:
    if domain_id != service.DEFAULT_DOMAIN_ID:
        raise domain_config.InvalidDomainConfig(
            "Reading security compliance information for any domain other than the "
            "default domain is not allowed or supported")
    if option is None:
        return {"security_compliance": dict(SECURITY_COMPLIANCE)}
    if option not in SECURITY_COMPLIANCE:
        raise domain_config.InvalidDomainConfig(
            "Reading security compliance values other than password_regex and "
            "password_regex_description is not allowed")
    return {option: SECURITY_COMPLIANCE[option]}


def get_config(req: Request, s: Session) -> Response:
    domain_id, group, option = _parts(req)
    if group == "security_compliance":
        service.get_or_404(s, m.Domain, domain_id, "domain")
        return json_response({"config": _security_compliance(domain_id, option)})
    if not policy.system_reader(req.context):
        raise policy.deny("identity:get_domain_config")
    service.get_or_404(s, m.Domain, domain_id, "domain")
    return json_response({"config": domain_config.get(s, domain_id, group, option)})


def update_config(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_domain_config")
    domain_id, group, option = _parts(req)
    service.get_or_404(s, m.Domain, domain_id, "domain")
    config = domain_config.update(s, domain_id, _config_body(req), group, option)
    return json_response({"config": config})


def delete_config(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_domain_config")
    domain_id, group, option = _parts(req)
    service.get_or_404(s, m.Domain, domain_id, "domain")
    domain_config.remove(s, domain_id, group, option)
    return empty()


@router.put(BASE, tx=True)
def create_config(req: Request, s: Session) -> Response:
    """Replace the whole config: 201 when the domain had none, 200 otherwise."""
    policy.admin(req.context, "identity:create_domain_config")
    domain_id = req.path_params["domain_id"]
    service.get_or_404(s, m.Domain, domain_id, "domain")
    config, created = domain_config.create(s, domain_id, _config_body(req))
    return json_response({"config": config}, 201 if created else 200)


for _path in (BASE, BASE + "/{group}", BASE + "/{group}/{option}"):
    router.add("GET", _path, get_config, tx=True)
    router.add("PATCH", _path, update_config, tx=True)
    router.add("DELETE", _path, delete_config, tx=True)


def get_default(req: Request) -> Response:
    if not policy.system_reader(req.context):
        raise policy.deny("identity:get_domain_config_default")
    p = req.path_params
    return json_response({"config": domain_config.defaults(p.get("group"), p.get("option"))})


for _path in ("/v3/domains/config/default", "/v3/domains/config/{group}/default",
              "/v3/domains/config/{group}/{option}/default"):
    router.add("GET", _path, get_default)
