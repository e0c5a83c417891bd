"""Token bodies are encoded with the catalog's JSON cached: same bytes as json_response."""

from __future__ import annotations

from typing import Any

import pytest

from gureum.api.web import json_response
from gureum.identity.api_auth import token_json

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
