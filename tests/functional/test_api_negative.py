"""Every route refuses what it must: no token, a bad, expired or revoked token, the wrong
role; and HTTP itself: bodies that stall or end early (408), heads and bodies too large
(431, 413), odd microversion headers."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator

import pytest

from gureum.api.web import Route
from gureum.identity.tokens import SCOPE_PROJECT, TokenPayload, new_audit_id
from tests.harness import Api, InProcessCloud, make_settings


def all_routes(cloud: InProcessCloud) -> list[tuple[str, Route]]:
    assert cloud.cloud is not None
    out = []
    for family in cloud.cloud.app.families.values():
        for route in family.router.routes():
            out.append((family.prefix, route))
    return out


def concrete(path: str) -> str:
    return re.sub(r"{(\w+)(:[^}]+)?}", "0f0f0f0f", path)


def expired_token(cloud: InProcessCloud, api: Api, admin_token: str) -> str:
    r = api.request("GET", "/identity/v3/auth/tokens", admin_token,
                    headers={"X-Subject-Token": admin_token})
    body = r.json()["token"]
    assert cloud.cloud is not None
    identity = cloud.cloud.app.state.identity
    now = time.time()
    payload = TokenPayload(body["user"]["id"], ("password",), SCOPE_PROJECT,
                           body["project"]["id"], now - 7200, now - 3600, (new_audit_id(),))
    return str(identity.codec.encode(payload))


def test_every_authenticated_route_needs_a_valid_token(cloud: InProcessCloud, api: Api,
                                                       admin_token: str) -> None:
    expired = expired_token(cloud, api, admin_token)
    checked = 0
    for prefix, route in all_routes(cloud):
        if not route.auth:
            continue
        url = prefix + concrete(route.pattern)
        for token in (None, "garbage", expired):
            r = api.request(route.method, url, token, json={})
            assert r.status_code == 401, (route.method, url, token and token[:10], r.text)
            if route.method != "HEAD":
                assert r.json()["error"]["code"] == 401
        checked += 1
    assert checked > 50


def test_discovery_needs_no_token(api: Api) -> None:
    for path, status in (("/identity/", 300), ("/identity/v3", 200), ("/compute/", 200),
                         ("/compute/v2.1", 200), ("/image/", 300), ("/network/", 200),
                         ("/volume/", 300)):
        r = api.request("GET", path)
        assert r.status_code == status, (path, r.text)


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/identity/v3/projects", {"project": {"name": "x"}}),
    ("POST", "/identity/v3/users", {"user": {"name": "x"}}),
    ("POST", "/identity/v3/domains", {"domain": {"name": "x"}}),
    ("POST", "/identity/v3/roles", {"role": {"name": "x"}}),
    ("POST", "/identity/v3/groups", {"group": {"name": "x"}}),
    ("POST", "/identity/v3/services", {"service": {"type": "x"}}),
    ("POST", "/identity/v3/regions", {"region": {}}),
    ("GET", "/identity/v3/users", None),
    ("GET", "/identity/v3/domains", None),
    ("GET", "/identity/v3/groups", None),
    ("GET", "/identity/v3/role_assignments", None),
    ("PATCH", "/identity/v3/projects/{demo}", {"project": {"description": "mine now"}}),
    ("DELETE", "/identity/v3/projects/{demo}", None),
])
def test_member_calling_admin_apis_is_403(api: Api, cloud: InProcessCloud, demo_token: str,
                                          method: str, path: str, body: object) -> None:
    demo_project = api.request("GET", "/identity/v3/auth/projects", demo_token
                               ).json()["projects"][0]["id"]
    r = api.request(method, path.replace("{demo}", demo_project), demo_token, json=body)
    assert r.status_code == 403, r.text
    assert "not authorized" in r.json()["error"]["message"]


def test_member_sees_itself_but_not_others(api: Api, admin_token: str, demo_token: str) -> None:
    me = api.request("GET", "/identity/v3/auth/tokens", demo_token,
                     headers={"X-Subject-Token": demo_token}).json()["token"]["user"]
    assert api.request("GET", f"/identity/v3/users/{me['id']}", demo_token).status_code == 200
    admin = api.request("GET", "/identity/v3/auth/tokens", admin_token,
                        headers={"X-Subject-Token": admin_token}).json()["token"]["user"]
    assert api.request("GET", f"/identity/v3/users/{admin['id']}",
                       demo_token).status_code == 403
    # ...and may not validate someone else's token.
    r = api.request("GET", "/identity/v3/auth/tokens", demo_token,
                    headers={"X-Subject-Token": admin_token})
    assert r.status_code == 403


def test_disabled_user_tokens_stop_working(api: Api, admin_token: str) -> None:
    r = api.request("POST", "/identity/v3/users", admin_token, json={"user": {
        "name": "to-disable", "password": "pw", "default_project_id": None}})
    user_id = r.json()["user"]["id"]
    projects = api.request("GET", "/identity/v3/projects?name=demo", admin_token).json()
    demo_id = projects["projects"][0]["id"]
    roles = api.request("GET", "/identity/v3/roles?name=member", admin_token).json()["roles"]
    assert api.request("PUT", f"/identity/v3/projects/{demo_id}/users/{user_id}/roles/"
                       f"{roles[0]['id']}", admin_token).status_code == 204
    token = api.token("to-disable", "pw", "demo")
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 200
    assert api.request("PATCH", f"/identity/v3/users/{user_id}", admin_token,
                       json={"user": {"enabled": False}}).status_code == 200
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 401
    # Re-enabling does not bring the old token back.
    api.request("PATCH", f"/identity/v3/users/{user_id}", admin_token,
                json={"user": {"enabled": True}})
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 401
    assert api.token("to-disable", "pw", "demo")


def test_role_removal_takes_effect_on_existing_tokens(api: Api, admin_token: str) -> None:
    r = api.request("POST", "/identity/v3/users", admin_token,
                    json={"user": {"name": "short-lived-role", "password": "pw"}})
    user_id = r.json()["user"]["id"]
    demo_id = api.request("GET", "/identity/v3/projects?name=demo",
                          admin_token).json()["projects"][0]["id"]
    member = api.request("GET", "/identity/v3/roles?name=member",
                         admin_token).json()["roles"][0]["id"]
    grant = f"/identity/v3/projects/{demo_id}/users/{user_id}/roles/{member}"
    api.request("PUT", grant, admin_token)
    token = api.token("short-lived-role", "pw", "demo")
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 200
    assert api.request("DELETE", grant, admin_token).status_code == 204
    assert api.request("GET", "/identity/v3/auth/projects", token).status_code == 401


def test_password_change_revokes_old_tokens(api: Api, admin_token: str) -> None:
    r = api.request("POST", "/identity/v3/users", admin_token,
                    json={"user": {"name": "changer", "password": "old-pw"}})
    user_id = r.json()["user"]["id"]
    r = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"id": user_id, "password": "old-pw"}}}}})
    old = r.headers["x-subject-token"]
    r = api.request("POST", f"/identity/v3/users/{user_id}/password", old,
                    json={"user": {"original_password": "wrong", "password": "new-pw"}})
    assert r.status_code == 401
    r = api.request("POST", f"/identity/v3/users/{user_id}/password", old,
                    json={"user": {"original_password": "old-pw", "password": "new-pw"}})
    assert r.status_code == 204, r.text
    assert api.request("GET", f"/identity/v3/users/{user_id}", old).status_code == 401
    r = api.request("POST", "/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"id": user_id, "password": "new-pw"}}}}})
    assert r.status_code == 201


def test_unknown_path_and_method(api: Api, admin_token: str) -> None:
    assert api.request("GET", "/identity/v3/nothing-here", admin_token).status_code == 404
    r = api.request("PUT", "/identity/v3/users", admin_token, json={})
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]
    assert api.request("GET", "/nowhere").status_code == 404


@pytest.mark.parametrize("header,status", [
    ("compute latest extra", 400), ("compute 2.1.3", 400), ("compute LATEST", 400),
    ("compute  2.1", 200), ("latest extra", 200), ("compute 2.1, compute 9.9", 406),
])
def test_odd_microversion_headers_are_answered_as_nova_does(
        api: Api, demo_token: str, header: str, status: int) -> None:
    r = api.request("GET", "/compute/v2.1/flavors", demo_token,
                    headers={"OpenStack-API-Version": header})
    assert r.status_code == status, r.text
    if status == 400:
        assert "is of invalid format" in r.json()["badRequest"]["message"]
        assert "openstack-api-version" not in r.headers
    elif status == 200:
        assert r.headers["openstack-api-version"] == "compute 2.1"


# -- HTTP limits, with raw sockets -------------------------------------------------------

BODY_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    """A cloud that waits only BODY_TIMEOUT seconds for a stalled request body."""
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("impatient"),
                                     server={"body_timeout": BODY_TIMEOUT,
                                             "max_header_bytes": 16384})).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def impatient_api(impatient: InProcessCloud) -> Iterator[Api]:
    client = Api(impatient.url)
    yield client
    client.close()


def exchange(cloud: InProcessCloud, head: str, body: bytes = b"", timeout: float = 15
             ) -> tuple[str, dict[str, str], bytes, float]:
    """Send a raw request (and stall after it); the status line, headers, body and the
    seconds until the server answered and closed the connection."""
    host, port = cloud.url.removeprefix("http://").split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + body)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    elapsed = time.monotonic() - start
    raw_head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = raw_head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return status, headers, rest, elapsed


def test_a_body_shorter_than_its_content_length_is_408(
        impatient: InProcessCloud, impatient_api: Api) -> None:
    token = impatient_api.token("admin", impatient.admin_password, "admin")
    status, headers, body, elapsed = exchange(impatient, (
        "POST /identity/v3/projects HTTP/1.1\nHost: x\nContent-Type: application/json\n"
        f"X-Auth-Token: {token}\nContent-Length: 100\n\n"), b'{"project": {"na')
    assert status == "HTTP/1.1 408 Request Timeout", (status, body)
    assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 5
    assert headers["connection"] == "close"
    assert headers["x-openstack-request-id"].startswith("req-")
    assert json.loads(body)["error"]["code"] == 408
    # The cloud serves the next client as before.
    assert impatient_api.request("GET", "/identity/v3/auth/projects", token).status_code == 200


def test_a_stalled_chunked_image_upload_is_408_and_the_image_stays_queued(
        impatient: InProcessCloud, impatient_api: Api) -> None:
    token = impatient_api.token("demo", impatient.demo_password, "demo")
    image = impatient_api.request("POST", "/image/v2/images", token, json={
        "name": "stalled", "disk_format": "raw", "container_format": "bare"}).json()
    store = impatient.settings.image_store_dir
    before = {p.name for p in store.rglob("*") if p.is_file()}
    for framing, first_part in (("Transfer-Encoding: chunked", b"5\r\nhello\r\n"),
                                ("Content-Length: 1000000", b"x" * 70000)):
        status, headers, body, elapsed = exchange(impatient, (
            f"PUT /image/v2/images/{image['id']}/file HTTP/1.1\nHost: x\n"
            f"X-Auth-Token: {token}\nContent-Type: application/octet-stream\n"
            f"{framing}\n\n"), first_part)
        assert status == "HTTP/1.1 408 Request Timeout", (framing, status, body)
        assert elapsed < BODY_TIMEOUT + 5
        assert json.loads(body)["code"] == "408 Request Timeout"  # Glance's fault shape
        assert headers["connection"] == "close"
        shown = impatient_api.request("GET", f"/image/v2/images/{image['id']}", token).json()
        assert shown["status"] == "queued", framing
        assert {p.name for p in store.rglob("*") if p.is_file()} == before
    # A later upload works.
    r = impatient_api.request("PUT", f"/image/v2/images/{image['id']}/file", token,
                              content=b"whole", headers={
                                  "content-type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    r = impatient_api.request("GET", f"/image/v2/images/{image['id']}/file", token)
    assert r.content == b"whole"


def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(
        impatient: InProcessCloud) -> None:
    status, headers, body, elapsed = exchange(impatient, (
        "POST /compute/v2.1/servers HTTP/1.1\nHost: x\nX-Auth-Token: whatever\n"
        f"Content-Type: application/json\nContent-Length: {10 ** 9}\n\n"))
    assert status == "HTTP/1.1 413 Request Entity Too Large", (status, body)
    assert elapsed < BODY_TIMEOUT
    assert headers["connection"] == "close"
    assert json.loads(body)["overLimit"]["code"] == 413


@pytest.mark.parametrize("head", [
    "GET /identity/v3 HTTP/1.1\nHost: x\nX-Big: " + "a" * 20000 + "\n\n",
    "GET /identity/v3 HTTP/1.1\nHost: x\n" + "".join(f"X-H{i}: v\n" for i in range(3000))
    + "\n",
    "GET /identity/v3?" + "q=1&" * 5000 + " HTTP/1.1\nHost: x\n\n",
])
def test_request_heads_over_the_limit_are_431(impatient: InProcessCloud, head: str) -> None:
    status, headers, body, _ = exchange(impatient, head)
    assert status == "HTTP/1.1 431 Request Header Fields Too Large", status
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == 431
    # Just under the limit is served.
    status, _, _, _ = exchange(impatient, "GET /identity/v3 HTTP/1.1\nHost: x\nX-Big: "
                               + "a" * 15000 + "\nConnection: close\n\n")
    assert status == "HTTP/1.1 200 OK"


# A NUL cannot be stored in PostgreSQL text: before the guard, each of these was a 500
# on PostgreSQL (the lookup's query failed) and a 404 or even a 200 on SQLite.
NUL_REQUESTS = [
    ("GET", "/compute/v2.1/servers/%00", None),
    ("GET", "/compute/v2.1/os-services?host=%00", None),
    ("GET", "/compute/v2.1/gureum-host-operations?host=a%00", None),
    ("POST", "/compute/v2.1/gureum-host-operations",
     {"operation": {"host": "c01", "kind": "drain", "reason": "a\x00b"}}),
    ("POST", "/compute/v2.1/os-server-external-events", {"events": [{
        "server_uuid": "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f", "name": "network-vif-deleted",
        "tag": "\x00"}]}),
    ("GET", "/identity/v3/users/%00", None),
    ("POST", "/volume/v3/volumes", {"volume": {"size": 1, "name": "\x00"}}),
    ("GET", "/image/v2/images/%00", None),
    ("GET", "/network/v2.0/ports?device_id=%00", None),
]


@pytest.mark.parametrize("method,path,body", NUL_REQUESTS)
def test_a_nul_in_a_path_query_or_body_is_400_in_every_family(
        api: Api, admin_token: str, method: str, path: str, body: object) -> None:
    r = api.request(method, path, admin_token, json=body)
    assert r.status_code == 400, r.text
    assert "NUL" in r.text


def test_a_nul_in_a_key_or_a_nested_value_names_where(api: Api, admin_token: str) -> None:
    r = api.request("POST", "/volume/v3/volumes", admin_token,
                    json={"volume": {"size": 1, "metadata": {"k": "v\x00"}}})
    assert r.status_code == 400 and "'volume.metadata.k'" in r.text, r.text
    r = api.request("POST", "/volume/v3/volumes", admin_token,
                    json={"volume": {"size": 1, "metadata": {"k\x00": "v"}}})
    assert r.status_code == 400 and "NUL" in r.text, r.text


@pytest.mark.parametrize("path,body,field", [
    ("/compute/v2.1/os-server-external-events",
     {"events": [{"server_uuid": "x" * 300, "name": "network-changed"}]}, "events.0.server_uuid"),
    ("/compute/v2.1/servers/0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f/os-interface",
     {"interfaceAttachment": {"net_id": "not-a-uuid"}}, "interfaceAttachment.net_id"),
    ("/compute/v2.1/servers/0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f/os-interface",
     {"interfaceAttachment": {"port_id": "\x01"}}, "interfaceAttachment.port_id"),
])
def test_fields_of_format_uuid_take_only_uuids(api: Api, admin_token: str, path: str,
                                               body: object, field: str) -> None:
    # Nova's uuid format (oslo's is_uuid_like); Draft 7 has none, so any string passed.
    r = api.request("POST", path, admin_token, json=body)
    assert r.status_code == 400, r.text
    assert f"'{field}'" in r.text and "is not a 'uuid'" in r.text
    ok = {"events": [{"server_uuid": "0F0F0F0F0F0F4F0F8F0F0F0F0F0F0F0F",
                      "name": "network-changed"}]}
    r = api.request("POST", "/compute/v2.1/os-server-external-events", admin_token, json=ok)
    assert r.status_code == 207 and r.json()["events"][0]["code"] == 404, r.text


@pytest.mark.parametrize("path,template", [
    ("/volume/v3/volumes", '{"volume": {"size": 1, "name": %s}}'),
    ("/compute/v2.1/gureum-host-operations",
     '{"operation": {"host": "c01", "kind": "drain", "reason": %s}}'),
    ("/compute/v2.1/os-server-external-events", '{"events": [{"server_uuid": '
     '"0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f", "name": "network-vif-deleted", "tag": %s}]}'),
    ("/network/v2.0/security-groups", '{"security_group": {"name": %s}}'),
    ("/identity/v3/projects", '{"project": {"name": "p", "description": %s}}'),
])
def test_a_lone_surrogate_in_a_body_is_400_in_every_family(
        api: Api, admin_token: str, path: str, template: str) -> None:
    # JSON lets "\ud800" through as a str no database can encode (UTF-8): it was a 500
    # on SQLite and PostgreSQL alike. A pair ("\ud83d\ude00") is one character, taken.
    r = api.request("POST", path, admin_token, content=template % '"x\\uD800"',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid UTF-8" in r.text, r.text
    if path.startswith("/volume"):
        r = api.request("POST", path, admin_token, content=template % '"\\ud83d\\ude00"',
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 202 and r.json()["volume"]["name"] == "\U0001f600", r.text
