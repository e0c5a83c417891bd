"""The HTTP layer on Starlette: routing, faults, request ids, microversions, streaming.

A small app of two families with stand-in handlers, driven through httpx's ASGI
transport (a real client, in process): what every family of the cloud relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gureum.api.app import Family, GureumApp
from gureum.api.faults import compute_fault, identity_fault
from gureum.api.microversion import Microversions, folded
from gureum.api.web import Request, Response, Router, empty, json_response, stream
from gureum.context import RequestContext
from gureum.errors import Conflict, InvalidInput, Unauthorized
from gureum.identity import schemas
from gureum.validation import validate


class FakeDb:
    def __init__(self) -> None:
        self.events: list[str] = []

    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[str]:
        self.events.append(f"open write={write}")
        try:
            yield "session"
        except BaseException:
            self.events.append("rollback")
            raise
        self.events.append("commit")


@dataclass
class FakeState:
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="api"))
    db: FakeDb = field(default_factory=FakeDb)


class FakeAuth:
    def validate_fast(self, token: str, request_id: str, remote_addr: str
                      ) -> RequestContext | None:
        if token == "slow":
            return None
        if token != "good":
            raise Unauthorized()
        return RequestContext(user_id="u", request_id=request_id)

    def validate(self, token: str, request_id: str, remote_addr: str) -> RequestContext:
        return RequestContext(user_id="slow-user", request_id=request_id)


def make_app() -> tuple[GureumApp, FakeState]:
    ident = Router()

    @ident.get("/v3/users", auth=False)
    async def list_users(req: Request) -> Response:
        return json_response({"path": req.path, "base": req.base_url})

    @ident.get("/v3/users/{user_id}")
    def show_user(req: Request) -> Response:
        assert req.context is not None
        return json_response({"id": req.path_params["user_id"],
                              "thread": threading.current_thread().name,
                              "user": req.context.user_id})

    @ident.put("/v3/users/{user_id}", auth=False)
    async def put_user(req: Request) -> Response:
        return json_response(req.json())

    @ident.get("/v3/files/{rest:path}", auth=False)
    async def files(req: Request) -> Response:
        return json_response({"rest": req.path_params["rest"]})

    @ident.post("/v3/tx", auth=False, tx=True)
    def tx_route(req: Request, s: str) -> Response:
        if req.json().get("fail"):
            raise Conflict("no")
        return empty()

    @ident.get("/v3/boom", auth=False)
    def boom(req: Request) -> Response:
        raise RuntimeError("secret detail")

    @ident.get("/v3/data", auth=False)
    def data(req: Request) -> Any:
        return stream(req, iter([b"ab", b"", b"cd"]), headers={"content-length": "4"})

    @ident.get("/", auth=False)
    async def versions(req: Request) -> Response:
        return json_response({"root": req.base_url})

    compute = Router()

    @compute.get("/v2.1/servers", auth=False)
    async def servers(req: Request) -> Response:
        return json_response({"version": list(req.version)})

    @compute.get("/v2.1/fail", auth=False)
    async def fail(req: Request) -> Response:
        raise InvalidInput("bad thing")

    state = FakeState()
    families = [Family("identity", "/identity", ident, identity_fault),
                Family("compute", "/compute", compute, compute_fault,
                       microversions=Microversions("compute", (2, 1), (2, 90),
                                                   "x-openstack-nova-api-version"))]
    return GureumApp(state, families, FakeAuth()), state


@pytest.fixture
def client() -> Iterator[tuple[httpx.AsyncClient, FakeState]]:
    app, state = make_app()
    yield httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                            base_url="http://cloud:8800"), state
    state.executor.shutdown()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_routes_match_exact_paths_patterns_trailing_slashes_and_bare_prefixes(
        client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, _ = client

    async def go() -> None:
        r = await http.get("/identity/v3/users")
        assert r.json() == {"path": "/v3/users", "base": "http://cloud:8800/identity"}
        assert (await http.get("/identity/v3/users/")).json()["path"] == "/v3/users"
        r = await http.get("/identity/v3/users/abc", headers={"X-Auth-Token": "good"})
        assert r.json()["id"] == "abc"
        assert (await http.get("/identity/v3/files/a/b")).json() == {"rest": "a/b"}
        for path in ("/identity", "/identity/"):
            r = await http.get(path)
            assert r.status_code == 200 and r.json() == {"root": "http://cloud:8800/identity"}
        r = await http.head("/identity/v3/users")
        assert r.status_code == 200 and r.content == b""
        assert int(r.headers["content-length"]) > 0
        r = await http.get("/")
        assert set(r.json()["gureum"]["services"]) == {"identity", "compute"}

    run(go())


def test_unknown_paths_and_methods_get_the_family_fault_with_allow(
        client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, _ = client

    async def go() -> None:
        r = await http.get("/identity/v3/nothing")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == 404
        r = await http.delete("/identity/v3/users/abc")
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, HEAD, PUT"
        assert "DELETE" in r.json()["error"]["message"]
        r = await http.post("/compute/v2.1/servers")
        assert r.status_code == 405 and r.json()["badMethod"]["code"] == 405
        r = await http.get("/compute/v2.1/nothing")
        assert r.json()["itemNotFound"]["code"] == 404
        r = await http.get("/nowhere")
        assert r.status_code == 404 and r.json()["error"]["code"] == 404

    run(go())


def test_every_response_has_its_own_request_id(
        client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, _ = client

    async def go() -> None:
        seen = set()
        for method, path in (("GET", "/"), ("GET", "/nowhere"), ("GET", "/identity/v3/users"),
                             ("DELETE", "/identity/v3/users/x"), ("GET", "/identity/v3/boom"),
                             ("GET", "/compute/v2.1/fail"), ("GET", "/identity/v3/data")):
            r = await http.request(method, path)
            assert r.headers["x-openstack-request-id"].startswith("req-"), (method, path)
            seen.add(r.headers["x-openstack-request-id"])
        assert len(seen) == 7

    run(go())


def test_sync_handlers_run_in_the_worker_pool_and_authenticate(
        client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, _ = client

    async def go() -> None:
        r = await http.get("/identity/v3/users/abc", headers={"X-Auth-Token": "good"})
        assert r.json()["thread"].startswith("api")
        assert r.json()["user"] == "u"
        r = await http.get("/identity/v3/users/abc", headers={"X-Auth-Token": "slow"})
        assert r.json()["user"] == "slow-user"
        for headers in ({}, {"X-Auth-Token": "bad"}):
            r = await http.get("/identity/v3/users/abc", headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'Keystone uri="http://cloud:8800/identity"'

    run(go())


def test_tx_routes_commit_on_success_and_roll_back_on_error(
        client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, state = client

    async def go() -> None:
        assert (await http.post("/identity/v3/tx", json={})).status_code == 204
        assert state.db.events == ["open write=True", "commit"]
        assert (await http.post("/identity/v3/tx", json={"fail": 1})).status_code == 409
        assert state.db.events[2:] == ["open write=True", "rollback"]

    run(go())


def test_an_unexpected_error_is_a_generic_500_fault(
        client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, _ = client

    async def go() -> None:
        r = await http.get("/identity/v3/boom")
        assert r.status_code == 500
        message = r.json()["error"]["message"]
        assert "secret" not in message
        assert r.headers["x-openstack-request-id"] in message

    run(go())


def test_bodies_are_parsed_and_bounded(client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, _ = client

    async def go() -> None:
        r = await http.put("/identity/v3/users/x", json={"a": 1})
        assert r.json() == {"a": 1}
        r = await http.put("/identity/v3/users/x", content=b"{not json")
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        r = await http.put("/identity/v3/users/x", content=b"x" * ((1 << 20) + 1))
        assert r.status_code == 413

    run(go())


def test_microversions_are_negotiated_and_echoed_on_faults_too(
        client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, _ = client

    async def go() -> None:
        r = await http.get("/compute/v2.1/servers")
        assert r.json() == {"version": [2, 1]}
        assert r.headers["openstack-api-version"] == "compute 2.1"
        r = await http.get("/compute/v2.1/servers",
                           headers={"OpenStack-API-Version": "compute latest"})
        assert r.json() == {"version": [2, 90]}
        assert r.headers["x-openstack-nova-api-version"] == "2.90"
        r = await http.get("/compute/v2.1/fail", headers={"OpenStack-API-Version": "compute 2.5"})
        assert r.status_code == 400 and r.headers["openstack-api-version"] == "compute 2.5"
        r = await http.get("/compute/v2.1/servers",
                           headers={"OpenStack-API-Version": "compute 2.91"})
        assert r.status_code == 406 and r.json()["notAcceptable"]["code"] == 406
        r = await http.get("/compute/v2.1/servers",
                           headers={"OpenStack-API-Version": "compute two"})
        assert r.status_code == 400 and r.json()["badRequest"]["code"] == 400
        assert "openstack-api-version" not in r.headers

    run(go())


def test_chunked_responses_stream_and_head_reads_nothing(
        client: tuple[httpx.AsyncClient, FakeState]) -> None:
    http, _ = client

    async def go() -> None:
        async with http.stream("GET", "/identity/v3/data") as r:
            chunks = [c async for c in r.aiter_raw()]
        assert b"".join(chunks) == b"abcd"
        r = await http.head("/identity/v3/data")
        assert r.status_code == 200 and r.content == b""

    run(go())


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


NOVA = Microversions("compute", (2, 1), (2, 100), "x-openstack-nova-api-version")


@pytest.mark.parametrize("headers,version", [
    ([], (2, 1)),
    ([(b"openstack-api-version", b"compute 2.53")], (2, 53)),
    ([(b"openstack-api-version", b"compute  2.5 ")], (2, 5)),
    ([(b"openstack-api-version", b"compute latest")], (2, 100)),
    ([(b"openstack-api-version", b"volume 3.0, compute 2.7")], (2, 7)),
    ([(b"openstack-api-version", b"compute 2.7, compute 2.9")], (2, 9)),  # the last one
    ([(b"openstack-api-version", b"compute 2.7"), (b"openstack-api-version", b"compute 2.8")],
     (2, 8)),
    ([(b"openstack-api-version", b"volume 3.0")], (2, 1)),
    ([(b"openstack-api-version", b"latest extra")], (2, 1)),  # names no compute version
    ([(b"openstack-api-version", b"compute")], (2, 1)),
    ([(b"x-openstack-nova-api-version", b"2.60")], (2, 60)),
    ([(b"openstack-api-version", b"compute 2.3"), (b"x-openstack-nova-api-version", b"2.60")],
     (2, 3)),
])
def test_microversion_headers_are_read_as_nova_reads_them(
        headers: list[tuple[bytes, bytes]], version: tuple[int, int]) -> None:
    assert NOVA.negotiate(folded(headers)) == version


@pytest.mark.parametrize("value", [
    b"compute latest extra", b"compute 2.1.3", b"compute LATEST", b"compute 2.01",
    b"compute 2", b"compute v2.1", b"compute 2.1 2.2", b"compute 2 .1"])
def test_malformed_microversions_are_400(value: bytes) -> None:
    with pytest.raises(InvalidInput, match="is of invalid format"):
        NOVA.negotiate(folded([(b"openstack-api-version", value)]))
    with pytest.raises(InvalidInput, match="is of invalid format"):
        NOVA.negotiate(folded([(b"x-openstack-nova-api-version", value.split(b" ", 1)[1])]))
