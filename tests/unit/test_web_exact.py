"""Exact paths of families without microversions skip Starlette's layers: the same
answers (status, headers, body, faults, request ids) as through the whole stack."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.unit.test_web import make_app

REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/identity/v3/users", {}),
    ("HEAD", "/identity/v3/users", {}),
    ("GET", "/identity/v3/users/", {}),
    ("DELETE", "/identity/v3/users", {}),  # 405 from Starlette's route
    ("POST", "/identity/v3/tx", {"json": {}}),
    ("POST", "/identity/v3/tx", {"json": {"fail": True}}),  # the family's 409 fault
    ("POST", "/identity/v3/tx", {"content": b"{nope"}),  # 400
    ("POST", "/identity/v3/tx", {"content": b"x" * (2 << 20)}),  # 413, connection: close
    ("GET", "/identity/v3/boom", {}),  # generic 500 fault
    ("GET", "/identity/v3/data", {}),  # streamed
    ("GET", "/identity", {}),
    ("GET", "/compute/v2.1/servers", {}),  # microversions: the whole stack
]


def test_the_short_way_answers_as_the_whole_stack() -> None:
    app, state = make_app()
    assert "/identity/v3/users" in app._exact
    assert not any(path.startswith("/compute") for path in app._exact)

    async def answers(asgi: Any) -> list[tuple[int, dict[str, str], bytes]]:
        out = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                     base_url="http://cloud:8800") as http:
            for method, path, kwargs in REQUESTS:
                r = await http.request(method, path, **kwargs)
                assert r.headers.pop("x-openstack-request-id").startswith("req-")
                out.append((r.status_code, dict(r.headers), r.content))
        return out

    try:
        short = asyncio.run(answers(app))
        whole = asyncio.run(answers(app._asgi))
    finally:
        state.executor.shutdown()
    assert [s for s, _, _ in short] == [200, 200, 200, 405, 204, 409, 400, 413, 500, 200, 200,
                                        200]
    for one, other, request in zip(short, whole, REQUESTS, strict=True):
        assert one[0] == other[0], request
        assert one[1] == other[1], request
        if one[0] != 500:  # the 500 fault names its own request id
            assert one[2] == other[2], request
