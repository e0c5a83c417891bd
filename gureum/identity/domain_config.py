"""Domain-specific configuration (/v3/domains/{id}/config), with Keystone's rules.

A domain may carry options of two groups, ``identity`` and ``ldap``, limited
to the options Keystone allows there (``ldap.password`` is sensitive: stored,
never shown). gureum keeps every user in SQL, so these options are recorded
and served for the tools that manage them, and change nothing else.

Errors are Keystone's: an unknown group or option, or an empty config, is
403 (``InvalidDomainConfig``); a group or option the domain has not set is 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.errors import Forbidden, NotFound
from gureum.identity import models as m

# Keystone's whitelisted options and their defaults (keystone/conf/identity.py, ldap.py).
DEFAULTS: dict[str, dict[str, Any]] = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {
        "url": "ldap://localhost", "user": None, "suffix": "cn=example,cn=com",
        "query_scope": "one", "page_size": 0, "alias_dereferencing": "default",
        "debug_level": None, "chase_referrals": None, "user_tree_dn": None,
        "user_filter": None, "user_objectclass": "inetOrgPerson",
        "user_id_attribute": "cn", "user_name_attribute": "sn",
        "user_mail_attribute": "mail", "user_description_attribute": "description",
        "user_pass_attribute": "userPassword", "user_enabled_attribute": "enabled",
        "user_enabled_invert": False, "user_enabled_mask": 0,
        "user_enabled_default": "True", "user_attribute_ignore": ["default_project_id"],
        "user_default_project_id_attribute": None, "user_enabled_emulation": False,
        "user_enabled_emulation_dn": None,
        "user_enabled_emulation_use_group_config": False,
        "user_additional_attribute_mapping": [], "group_tree_dn": None,
        "group_filter": None, "group_objectclass": "groupOfNames",
        "group_id_attribute": "cn", "group_name_attribute": "ou",
        "group_members_are_ids": False, "group_member_attribute": "member",
        "group_desc_attribute": "description", "group_attribute_ignore": [],
        "group_additional_attribute_mapping": [], "tls_cacertfile": None,
        "tls_cacertdir": None, "use_tls": False, "tls_req_cert": "demand",
        "use_pool": True, "pool_size": 10, "pool_retry_max": 3, "pool_retry_delay": 0.1,
        "pool_connection_timeout": -1, "pool_connection_lifetime": 600,
        "use_auth_pool": True, "auth_pool_size": 100, "auth_pool_connection_lifetime": 60,
    },
}
SENSITIVE = {"identity": (), "ldap": ("password",)}


class InvalidDomainConfig(Forbidden):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid domain specific configuration: {reason}.")


def _not_found(domain_id: str, group: str | None, option: str | None) -> NotFound:
    what = (f"option {option} in group {group}" if option else
            f"group {group}" if group else "any options")
    return NotFound(f"Could not find {what} in domain configuration for domain "
                    f"{domain_id}.", kind="config")


def check_group_and_option(group: str | None, option: str | None) -> None:
    if group is None:
        return
    if group not in DEFAULTS:
        raise InvalidDomainConfig(f"Group {group} is not supported for domain specific "
                                  "configurations")
    if option is not None and option not in DEFAULTS[group] and \
            option not in SENSITIVE[group]:
        raise InvalidDomainConfig(f"Option {option} in group {group} is not supported for "
                                  "domain specific configurations")


def check_config(config: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(config, dict) or not config:
        raise InvalidDomainConfig("No options specified")
    for group, options in config.items():
        if not isinstance(options, dict) or not options:
            raise InvalidDomainConfig(f"The value of group {group} specified in the config "
                                      "should be a dictionary of options")
        for option in options:
            check_group_and_option(group, option)
    return config


def _rows(s: Session, domain_id: str, group: str | None = None,
          option: str | None = None) -> list[m.DomainConfigOption]:
    C = m.DomainConfigOption
    stmt = select(C).where(C.domain_id == domain_id).order_by(C.group, C.option)
    if group is not None:
        stmt = stmt.where(C.group == group)
    if option is not None:
        stmt = stmt.where(C.option == option)
    return list(s.scalars(stmt))


def _as_config(rows: list[m.DomainConfigOption]) -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {}
    for row in rows:
        if not row.sensitive:
            config.setdefault(row.group, {})[row.option] = row.value
    return config


def _store(s: Session, domain_id: str, config: dict[str, dict[str, Any]]) -> None:
    for group, options in config.items():
        for option, value in options.items():
            row = s.get(m.DomainConfigOption, (domain_id, group, option))
            if row is None:
                s.add(m.DomainConfigOption(domain_id=domain_id, group=group, option=option,
                                           value=value,
                                           sensitive=option in SENSITIVE[group]))
            else:
                row.value = value
    s.flush()


def create(s: Session, domain_id: str, config: Any) -> tuple[dict[str, Any], bool]:
    """Replace the domain's config; (the shown config, whether there was none before)."""
    config = check_config(config)
    existed = bool(_rows(s, domain_id))
    s.execute(delete(m.DomainConfigOption).where(m.DomainConfigOption.domain_id == domain_id))
    _store(s, domain_id, config)
    return _as_config(_rows(s, domain_id)), not existed


def get(s: Session, domain_id: str, group: str | None, option: str | None) -> dict[str, Any]:
    check_group_and_option(group, option)
    shown = _as_config(_rows(s, domain_id, group, option))
    if not shown:
        raise _not_found(domain_id, group, option)
    if option is not None:
        assert group is not None
        return {option: shown[group][option]}
    if group is not None:
        return shown[group]
    return shown


def update(s: Session, domain_id: str, config: Any, group: str | None,
           option: str | None) -> dict[str, Any]:
    """Merge into the domain's config; a group or option in the path limits the update
    to exactly that, which must already be set."""
    if group is not None and option is not None:
        config = {group: config}
    config = check_config(config)
    check_group_and_option(group, option)
    if group is not None:
        if len(config) != 1 or (option is not None and len(config[group]) != 1):
            what = f"option {option} in group {group}" if option else f"group {group}"
            raise InvalidDomainConfig(f"Trying to update {what}, so that, and only that, "
                                      f"{'option' if option else 'group'} must be "
                                      "specified in the config")
        if group not in config:
            raise InvalidDomainConfig(f"request to update group {group}, but config "
                                      f"provided contains group {next(iter(config))} "
                                      "instead")
        if option is not None and option not in config[group]:
            raise InvalidDomainConfig(f"Trying to update option {option} in group {group}, "
                                      "but config provided contains option "
                                      f"{next(iter(config[group]))} instead")
        if not _rows(s, domain_id, group, option):
            raise _not_found(domain_id, group, option)
    _store(s, domain_id, config)
    return _as_config(_rows(s, domain_id))


def remove(s: Session, domain_id: str, group: str | None, option: str | None) -> None:
    check_group_and_option(group, option)
    rows = _rows(s, domain_id, group, option)
    if group is not None and not rows:
        raise _not_found(domain_id, group, option)
    for row in rows:
        s.delete(row)


def defaults(group: str | None, option: str | None) -> dict[str, Any]:
    """Keystone's defaults of the allowed options (GET /v3/domains/config/default)."""
    check_group_and_option(group, option)
    if group is None:
        return {g: dict(opts) for g, opts in DEFAULTS.items()}
    if option is None:
        return dict(DEFAULTS[group])
    if option not in DEFAULTS[group]:  # sensitive: never shown
        raise InvalidDomainConfig(f"Reading the default for option {option} in group "
                                  f"{group} is not allowed")
    return {option: DEFAULTS[group][option]}
