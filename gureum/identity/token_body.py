"""A validated token's JSON body, written from pieces that are encoded once.

Validation answers with the same few objects again and again (the user, the
project, their domains, the role list and the catalog all come from the identity
cache, which hands out the same objects until identity data changes); only the
token's own fields (methods, audit ids, times) differ from one token to the next.
The pieces are encoded once per object and the body is joined from them: byte for
byte what ``json_response(vt.body(catalog))`` writes (tests/unit/test_token_json.py
compares them), for a fraction of the cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gureum.identity.auth import ValidatedToken, isotime
from gureum.identity.cache import DomainInfo, ProjectInfo, UserInfo
from gureum.identity.tokens import SCOPE_NONE

# The same settings as web.json_response, so the bytes are the same as its.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_encode = _encoder.encode

# (ids of the objects a piece was made from, how) → (the objects, the piece). Holding
# the objects keeps their ids from being reused while the entry lives; bounded.
_pieces: dict[Any, tuple[Any, Any, str]] = {}
_PIECES_MAX = 4096


def _piece(a: Any, b: Any, make: Callable[[Any, Any], Any]) -> str:
    """The JSON of ``make(a, b)``, encoded once per pair of objects (``b`` may be None)."""
    key = (id(a), id(b), make)
    hit = _pieces.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    text = _encode(make(a, b))
    if len(_pieces) >= _PIECES_MAX:
        _pieces.clear()
    _pieces[key] = (a, b, text)
    return text


def _user(user: UserInfo, domain: DomainInfo) -> dict[str, Any]:
    return {"domain": {"id": domain.id, "name": domain.name},
            "id": user.id, "name": user.name, "password_expires_at": None}


def _project(project: ProjectInfo, domain: DomainInfo) -> dict[str, Any]:
    return {"domain": {"id": domain.id, "name": domain.name},
            "id": project.id, "name": project.name}


def _domain(domain: DomainInfo, _: None) -> dict[str, Any]:
    return {"id": domain.id, "name": domain.name}


def _roles(roles: tuple[tuple[str, str], ...], _: None) -> list[dict[str, str]]:
    return [{"id": rid, "name": name} for rid, name in roles]


def _same(value: Any, _: None) -> Any:
    return value


def encode_catalog(catalog: Any) -> str:
    """The catalog's JSON, encoded once per catalog object."""
    return _piece(catalog, None, _same)


_methods_json: dict[tuple[str, ...], str] = {}


def body_json(vt: ValidatedToken, catalog: list[dict[str, Any]] | None) -> bytes:
    """``vt.body(catalog)`` as JSON, as ``json_response`` would write it."""
    p = vt.payload
    methods = _methods_json.get(p.methods)
    if methods is None:
        methods = _methods_json.setdefault(p.methods, _encode(list(p.methods)))
    out = ['{"token":{"methods":', methods, ',"user":', _piece(vt.user, vt.user_domain, _user),
           ',"audit_ids":', _encode(list(p.audit_ids)),
           ',"expires_at":"', isotime(p.expires_at), '","issued_at":"', isotime(p.issued_at),
           '"']
    if vt.project is not None and vt.project_domain is not None:
        out += [',"project":', _piece(vt.project, vt.project_domain, _project),
                ',"is_domain":false']
    elif vt.domain is not None:
        out += [',"domain":', _piece(vt.domain, None, _domain)]
    elif p.system:
        out.append(',"system":{"all":true}')
    if p.scope_kind != SCOPE_NONE:
        out += [',"roles":', _piece(vt.roles, None, _roles)]
        if catalog is not None:
            out += [',"catalog":', encode_catalog(catalog)]
    cred = vt.app_cred
    if cred is not None:
        out += [',"application_credential":', _encode({
            "id": cred.id, "name": cred.name, "restricted": not cred.unrestricted})]
    out.append("}}")
    return "".join(out).encode()


def token_json(body: dict[str, Any]) -> bytes:
    """``body`` ({"token": {...}}) as JSON, byte for byte what json_response writes,
    with the catalog encoded once per catalog object."""
    token = body.get("token")
    if len(body) != 1 or not isinstance(token, dict) or "catalog" not in token:
        return _encode(body).encode()
    head: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    part = head
    for key, value in token.items():
        if key == "catalog":
            part = tail
        else:
            part[key] = value
    out = ['{"token":', _encode(head)[:-1]]  # without its closing brace
    if head:
        out.append(",")
    out += ['"catalog":', encode_catalog(token["catalog"])]
    out.append("," + _encode(tail)[1:] if tail else "}")  # without its opening one
    out.append("}")
    return "".join(out).encode()
