"""Token bodies are encoded with the catalog's JSON cached: same bytes as json_response."""

from __future__ import annotations

from typing import Any

import pytest

from gureum.api.web import json_response
from gureum.identity.token_body import token_json

CATALOG = [{"type": "identity", "name": "keystone", "id": "s1",
            "endpoints": [{"id": "e1", "interface": "public", "region": "RegionOne",
                           "region_id": "RegionOne", "url": "http://127.0.0.1/idéntity"}]}]


@pytest.mark.parametrize("body", [
    {"token": {"methods": ["password"], "user": {"name": "é\u2028\"x"}, "roles": [],
               "catalog": CATALOG}},
    {"token": {"catalog": CATALOG}},
    {"token": {"catalog": CATALOG, "application_credential": {"id": "a"}}},
    {"token": {"methods": ["token"], "catalog": [], "is_domain": False}},
    {"token": {"methods": ["token"], "roles": [{"id": "r", "name": "n"}]}},
    {"token": {}},
    {"other": 1},
])
def test_same_bytes_as_json_response(body: dict[str, Any]) -> None:
    expected = json_response(body).body
    assert token_json(body) == expected
    assert token_json(body) == expected  # and again, from the cache


def test_a_changed_catalog_is_encoded_again() -> None:
    catalog: list[dict[str, Any]] = [{"type": "a", "endpoints": []}]
    first = token_json({"token": {"catalog": catalog}})
    other = [{"type": "b", "endpoints": []}]
    assert token_json({"token": {"catalog": other}}) != first
    assert token_json({"token": {"catalog": catalog}}) == first


def test_isotime_is_what_datetime_writes() -> None:
    import datetime as dt
    import random

    from gureum.identity.auth import isotime

    rng = random.Random(5)
    now = 1_790_000_000.0
    samples = [now, now + 0.5, now + 0.9999995, now + 0.9999994999, now + 1e-7, 0.0,
               -1.25, -0.0000004, 4_102_444_799.9999996, 1.0000005, 2.0000005]
    samples += [now + rng.uniform(-3e8, 3e8) for _ in range(20_000)]
    samples += [round(now + rng.uniform(0, 1e5), rng.randrange(4, 8)) for _ in range(20_000)]
    for epoch in samples:
        expected = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert isotime(epoch) == expected, epoch


def _validated() -> list[Any]:
    from gureum.identity.auth import ValidatedToken
    from gureum.identity.cache import AppCredInfo, DomainInfo, ProjectInfo, UserInfo
    from gureum.identity.tokens import (
        SCOPE_DOMAIN,
        SCOPE_NONE,
        SCOPE_PROJECT,
        SCOPE_SYSTEM,
        TokenPayload,
    )

    dom = DomainInfo("default", "Dé\"fault\u2028", True)
    other = DomainInfo("d2", "other", True)
    user = UserInfo("u1", "ädmin \\ \"q\"", "default", True)
    project = ProjectInfo("p1", "prøject", "d2", True, None)
    roles = (("r1", "admin"), ("r2", "mémber"))
    cred = AppCredInfo("a1", "cred \"x\"", "u1", "p1", False, ("r1",), None)

    def payload(kind: int, scope: str | None, methods: tuple[str, ...] = ("password",),
                audit: tuple[str, ...] = ("aud1",)) -> TokenPayload:
        return TokenPayload("u1", methods, kind, scope, 1_790_000_000.123456,
                            1_790_003_600.5, audit, None)

    return [
        ValidatedToken(payload(SCOPE_PROJECT, "p1"), user, dom, project, other, None, roles),
        ValidatedToken(payload(SCOPE_PROJECT, "p1", ("token", "password"), ("a", "b")),
                       user, dom, project, other, None, roles[:1], cred),
        ValidatedToken(payload(SCOPE_DOMAIN, "d2"), user, dom, None, None, other, roles),
        ValidatedToken(payload(SCOPE_SYSTEM, None), user, dom, None, None, None, roles),
        ValidatedToken(payload(SCOPE_NONE, None, ("application_credential",), ()), user, dom),
        ValidatedToken(payload(SCOPE_PROJECT, "p1"), user, dom, project, other, None, ()),
    ]


@pytest.mark.parametrize("catalog", [CATALOG, [], None])
def test_a_validated_tokens_body_is_what_json_response_writes(catalog: Any) -> None:
    from gureum.identity.token_body import body_json

    for vt in _validated():
        expected = json_response(vt.body(catalog)).body
        assert body_json(vt, catalog) == expected
        assert body_json(vt, catalog) == expected  # and again, from the pieces made once


def test_a_changed_user_is_written_anew() -> None:
    import dataclasses

    from gureum.identity.token_body import body_json

    vt = _validated()[0]
    before = body_json(vt, None)
    renamed = dataclasses.replace(vt, user=dataclasses.replace(vt.user, name="new name"))
    assert b'"name":"new name"' in body_json(renamed, None)
    assert body_json(vt, None) == before
