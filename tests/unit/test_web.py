"""The router and request validation."""

from __future__ import annotations

import pytest

from gureum.api.validation import validate
from gureum.api.web import Router
from gureum.errors import InvalidInput, MethodNotAllowed, NotFound
from gureum.identity import schemas


def handler(req: object) -> None:
    return None


def test_router_static_dynamic_and_errors() -> None:
    r = Router()
    r.add("GET", "/v3/users", handler)
    r.add("GET", "/v3/users/{user_id}", handler)
    r.add("PUT", "/v3/users/{user_id}", handler)
    r.add("GET", "/v3/x/{rest:.+}", handler)
    assert r.match("GET", "/v3/users")[1] == {}
    assert r.match("GET", "/v3/users/")[1] == {}
    assert r.match("GET", "/v3/users/abc")[1] == {"user_id": "abc"}
    assert r.match("HEAD", "/v3/users/abc")[0].method == "GET"
    assert r.match("GET", "/v3/x/a/b")[1] == {"rest": "a/b"}
    with pytest.raises(NotFound):
        r.match("GET", "/v3/nothing")
    with pytest.raises(MethodNotAllowed) as err:
        r.match("DELETE", "/v3/users/abc")
    assert err.value.allowed == ("GET", "PUT")


def test_validation_names_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        validate(schemas.project_create, {"project": {"name": 5}})
    assert err.value.field == "project.name"
    assert "'project.name'" in err.value.message
    with pytest.raises(InvalidInput) as err:
        validate(schemas.user_create, {"user": {}})
    assert err.value.field == "user.name"
    with pytest.raises(InvalidInput) as err:
        validate(schemas.endpoint_create, {"endpoint": {"service_id": "s", "url": "http://x",
                                                        "interface": "outer"}})
    assert err.value.field == "endpoint.interface"
    assert validate(schemas.domain_create, {"domain": {"name": "d"}})
