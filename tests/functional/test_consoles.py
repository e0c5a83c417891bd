"""Remote consoles: Nova's console URL API and the token-checked noVNC proxy at /vnc.

The fake driver has no screen and says so (supports_vnc_console is False): its
servers answer Nova's 501. The proxy's tests give the fake host's guests a real
screen instead: a QEMU started here (no disk, SeaBIOS's text on its VGA) whose
VNC websocket the host's driver names, so the API, the tokens, the agent's
confirmation and the relay to QEMU all run for real. The QEMU driver's own
console is tested with a browser in tests/e2e_qemu.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from websockets.exceptions import InvalidStatus

from gureum.compute.models import ComputeNode
from gureum.config import VncSettings
from gureum.console import tokens
from gureum.console.models import ConsoleAuthToken
from gureum.db.base import utcnow
from gureum.virt.driver import GuestNotFound, VncConsole
from gureum.virt.fake import FakeDriver
from tests import browser
from tests.compute_helpers import boot, wait_status
from tests.harness import Api, InProcessCloud, make_settings
from tests.vnc_helpers import QEMU, Screen, rfb_handshake, start_screen

V25 = {"OpenStack-API-Version": "compute 2.5"}
V26 = {"OpenStack-API-Version": "compute 2.6"}
LATEST = {"OpenStack-API-Version": "compute 2.100"}
VNC = {"remote_console": {"protocol": "vnc", "type": "novnc"}}


@pytest.fixture(scope="module")
def ccloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    c = InProcessCloud(make_settings(tmp_path_factory.mktemp("consoles")), hosts=1).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def capi(ccloud: InProcessCloud) -> Iterator[Api]:
    api = Api(ccloud.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def admin(capi: Api, ccloud: InProcessCloud) -> str:
    return capi.token("admin", ccloud.admin_password, "admin")


@pytest.fixture(scope="module")
def demo(capi: Api, ccloud: InProcessCloud) -> str:
    return capi.token("demo", ccloud.demo_password, "demo")


@pytest.fixture(scope="module")
def server(capi: Api, admin: str) -> str:
    sid = str(boot(capi, admin, "screen")["id"])
    wait_status(capi, admin, sid, {"ACTIVE"})
    return sid


def remote_console(api: Api, token: str, sid: str, body: Any = None,
                   headers: dict[str, str] = LATEST) -> httpx.Response:
    return api.request("POST", f"/compute/v2.1/servers/{sid}/remote-consoles", token,
                       json=VNC if body is None else body, headers=headers)


def vnc_action(api: Api, token: str, sid: str, console_type: str = "novnc",
               headers: dict[str, str] = V25) -> httpx.Response:
    return api.request("POST", f"/compute/v2.1/servers/{sid}/action", token,
                       json={"os-getVNCConsole": {"type": console_type}}, headers=headers)


# -- the API, on a host whose driver has no screen ----------------------------------------

def test_a_driver_without_consoles_answers_501(capi: Api, admin: str, server: str) -> None:
    assert not FakeDriver().capability_report()["supports_vnc_console"]
    for r in (remote_console(capi, admin, server), vnc_action(capi, admin, server)):
        assert r.status_code == 501, r.text
        assert r.json()["notImplemented"]["message"] == \
            "The requested functionality is not supported."


def test_another_projects_server_is_not_found(capi: Api, demo: str, server: str) -> None:
    for r in (remote_console(capi, demo, server), vnc_action(capi, demo, server)):
        assert r.status_code == 404, r.text
        assert r.json()["itemNotFound"]["message"] == f"Instance {server} could not be found."


def test_console_types_nova_does_not_serve_here(capi: Api, admin: str, server: str) -> None:
    def body(protocol: str, kind: str) -> dict[str, Any]:
        return {"remote_console": {"protocol": protocol, "type": kind}}

    r = remote_console(capi, admin, server, body("vnc", "xvpvnc"))
    assert r.status_code == 400 and r.json()["badRequest"]["message"] == \
        "Invalid console type xvpvnc"
    r = remote_console(capi, admin, server, body("spice", "spice-html5"))
    assert r.status_code == 400 and r.json()["badRequest"]["message"] == \
        "Unavailable console type spice-html5."
    r = remote_console(capi, admin, server, body("rdp", "rdp-html5"))
    assert r.status_code == 400 and r.json()["badRequest"]["message"] == \
        "Unavailable console type rdp."
    r = remote_console(capi, admin, server, body("mks", "webmks"), V26)  # mks is 2.8+
    assert r.status_code == 400
    r = vnc_action(capi, admin, server, "xvpvnc")
    assert r.status_code == 400 and "xvpvnc" in r.json()["badRequest"]["message"]
    r = vnc_action(capi, admin, server, "spice-html5")  # not in the action's schema
    assert r.status_code == 400
    r = capi.request("POST", f"/compute/v2.1/servers/{server}/action", admin,
                     json={"os-getSerialConsole": {"type": "serial"}}, headers=V25)
    assert r.status_code == 400 and r.json()["badRequest"]["message"] == \
        "Unavailable console type serial."


def test_consoles_turned_off_are_unavailable(capi: Api, admin: str, server: str,
                                             ccloud: InProcessCloud) -> None:
    assert ccloud.cloud is not None
    state = ccloud.cloud.app.state
    settings = state.settings
    state.settings = dataclasses.replace(settings, vnc=VncSettings(enabled=False))
    try:
        r = remote_console(capi, admin, server)
    finally:
        state.settings = settings
    assert r.status_code == 400 and r.json()["badRequest"]["message"] == \
        "Unavailable console type novnc."


def test_microversions_of_the_two_apis(capi: Api, admin: str, server: str) -> None:
    assert remote_console(capi, admin, server, headers=V25).status_code == 404
    assert vnc_action(capi, admin, server, headers=V26).status_code == 404
    r = remote_console(capi, admin, server, {"remote_console": {"protocol": "vnc"}})
    assert r.status_code == 400


def test_a_stopped_server_has_no_console(capi: Api, admin: str) -> None:
    sid = str(boot(capi, admin, "stopped")["id"])
    wait_status(capi, admin, sid, {"ACTIVE"})
    r = capi.request("POST", f"/compute/v2.1/servers/{sid}/action", admin,
                     json={"os-stop": None}, headers=LATEST)
    assert r.status_code == 202
    wait_status(capi, admin, sid, {"SHUTOFF"})
    r = remote_console(capi, admin, sid)
    assert r.status_code == 409, r.text
    assert r.json()["conflictingRequest"]["message"] == f"Instance {sid} is not ready"


def test_console_auth_tokens_are_the_admins_from_2_31(capi: Api, admin: str,
                                                      demo: str) -> None:
    path = "/compute/v2.1/os-console-auth-tokens/no-such-token"
    assert capi.request("GET", path, admin, headers=LATEST).status_code == 404
    assert capi.request("GET", path, demo, headers=LATEST).status_code == 403
    r = capi.request("GET", path, admin, headers={"OpenStack-API-Version": "compute 2.30"})
    assert r.status_code == 400
    r = capi.request("GET", path + "?x=1", admin, headers=LATEST)  # 2.99: no queries
    assert r.status_code == 400


def test_a_bad_token_is_refused_before_anything_connects(ccloud: InProcessCloud) -> None:
    ws = ccloud.url.replace("http://", "ws://") + "/vnc/websockify"
    for url in (f"{ws}?token=not-a-token", ws):
        with pytest.raises(InvalidStatus) as caught:
            asyncio.run(rfb_handshake(url))
        assert caught.value.response.status_code == 403


@pytest.mark.skipif(not Path("/usr/share/novnc/vnc_lite.html").is_file(),
                    reason="Debian's package novnc is not installed")
def test_the_proxy_serves_debians_novnc(capi: Api) -> None:
    r = capi.request("GET", "/vnc/vnc_lite.html")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "RFB" in r.text
    assert capi.request("GET", "/vnc/core/rfb.js").status_code == 200
    assert capi.request("GET", "/vnc/../../etc/passwd").status_code == 404


def test_without_novnc_the_page_names_the_package(tmp_path: Path) -> None:
    from starlette.applications import Starlette

    from gureum.console.api import ConsoleProxy, mount

    settings = make_settings(tmp_path, vnc={"novnc_path": str(tmp_path / "none")})
    state = type("State", (), {"settings": settings})()
    app = Starlette(routes=[mount(ConsoleProxy(state))])

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gureum") as client:
            return await client.get("/vnc/vnc_lite.html")

    r = asyncio.run(get())
    assert r.status_code == 503
    assert "apt-get install novnc" in r.json()["error"]["message"]


# -- the proxy, with a real VNC server behind it --------------------------------------------

@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Screen]:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed (Debian's package qemu-system-x86)")
    s = start_screen(tmp_path_factory.mktemp("screen"))
    yield s
    s.stop()


@pytest.fixture()
def with_screen(ccloud: InProcessCloud, screen: Screen) -> Iterator[dict[str, Any]]:
    """c01's guests show the QEMU's screen; the dict's "console" can be changed."""
    assert ccloud.cloud is not None
    driver = ccloud.cloud.agents[0].driver
    assert isinstance(driver, FakeDriver)
    answer: dict[str, Any] = {"console": VncConsole(screen.host, screen.websocket_port)}

    async def get_vnc_console(guest_id: str) -> VncConsole:
        if guest_id not in driver.guests:
            raise GuestNotFound(guest_id)
        console: VncConsole = answer["console"]
        return console

    driver.capabilities = {**FakeDriver.capabilities, "supports_vnc_console": True}
    driver.get_vnc_console = get_vnc_console  # type: ignore[method-assign]
    with ccloud.cloud.db.session() as s:  # without waiting for the next report
        node = s.scalar(select(ComputeNode).where(ComputeNode.host == "c01"))
        assert node is not None and node.capabilities is not None
        node.capabilities = {**node.capabilities, "supports_vnc_console": True}
    yield answer
    del driver.capabilities
    del driver.get_vnc_console
    with ccloud.cloud.db.session() as s:
        node = s.scalar(select(ComputeNode).where(ComputeNode.host == "c01"))
        assert node is not None and node.capabilities is not None
        node.capabilities = {**node.capabilities, "supports_vnc_console": False}


def websocket_of(console_url: str) -> str:
    """The websocket noVNC opens for a console URL (vnc_lite.html's ``path``)."""
    parts = urlsplit(console_url)
    path = unquote(parse_qs(parts.query)["path"][0])
    return f"ws://{parts.netloc}/{path}"


def test_a_console_url_opens_the_guests_screen(capi: Api, admin: str, server: str,
                                               ccloud: InProcessCloud,
                                               with_screen: dict[str, Any]) -> None:
    r = remote_console(capi, admin, server)
    assert r.status_code == 200, r.text
    body = r.json()["remote_console"]
    assert body["protocol"] == "vnc" and body["type"] == "novnc"
    assert body["url"].startswith(f"{ccloud.url}/vnc/vnc_lite.html?path=vnc%2Fwebsockify")
    init = asyncio.run(rfb_handshake(websocket_of(body["url"]), origin=ccloud.url))
    assert init.width > 0 and init.height > 0

    r = vnc_action(capi, admin, server)  # the same through the 2.1 action
    assert r.status_code == 200, r.text
    assert r.json()["console"]["type"] == "novnc"
    assert asyncio.run(rfb_handshake(websocket_of(r.json()["console"]["url"]))).width > 0


def test_openstack_console_url_show_novnc(ccloud: InProcessCloud, server: str,
                                          with_screen: dict[str, Any]) -> None:
    """The issue's command, verbatim: openstackclient asks remote-consoles (at 2.99)."""
    openstack = Path(sys.executable).parent / "openstack"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "OS_CLIENT_CONFIG_FILE": str(ccloud.settings.data_dir / "clouds.yaml")}
    done = subprocess.run([str(openstack), "--os-cloud", "gureum", "console", "url", "show",
                           "--novnc", server, "-f", "json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["type"] == "novnc" and shown["protocol"] == "vnc"
    assert asyncio.run(rfb_handshake(websocket_of(shown["url"]))).width > 0


def test_the_admin_sees_what_a_token_opens(capi: Api, admin: str, demo: str, server: str,
                                           screen: Screen,
                                           with_screen: dict[str, Any]) -> None:
    url = remote_console(capi, admin, server).json()["remote_console"]["url"]
    token = parse_qs(unquote(parse_qs(urlsplit(url).query)["path"][0]).split("?", 1)[1])[
        "token"][0]
    path = f"/compute/v2.1/os-console-auth-tokens/{token}"
    r = capi.request("GET", path, admin, headers=LATEST)
    assert r.status_code == 200, r.text
    assert r.json() == {"console": {"instance_uuid": server, "host": screen.host,
                                    "port": screen.websocket_port,
                                    "internal_access_path": None}}
    assert capi.request("GET", path, demo, headers=LATEST).status_code == 403


def test_an_expired_token_is_refused(capi: Api, admin: str, server: str,
                                     ccloud: InProcessCloud,
                                     with_screen: dict[str, Any]) -> None:
    url = remote_console(capi, admin, server).json()["remote_console"]["url"]
    assert ccloud.cloud is not None
    with ccloud.cloud.db.session() as s:
        s.execute(update(ConsoleAuthToken).values(
            expires=utcnow() - dt.timedelta(seconds=1)))
    with pytest.raises(InvalidStatus) as caught:
        asyncio.run(rfb_handshake(websocket_of(url)))
    assert caught.value.response.status_code == 403
    # Giving out the next token removes the expired ones.
    assert remote_console(capi, admin, server).status_code == 200
    with ccloud.cloud.db.session(write=False) as s:
        rows = s.scalars(select(ConsoleAuthToken)).all()
    assert len(rows) == 1 and rows[0].expires > utcnow()


def test_a_token_is_refused_once_the_console_moved(capi: Api, admin: str, server: str,
                                                   screen: Screen,
                                                   with_screen: dict[str, Any]) -> None:
    url = remote_console(capi, admin, server).json()["remote_console"]["url"]
    # The guest's process restarted elsewhere: whatever listens on the old port now is
    # not this guest's screen.
    with_screen["console"] = VncConsole(screen.host, screen.websocket_port + 1)
    with pytest.raises(InvalidStatus) as caught:
        asyncio.run(rfb_handshake(websocket_of(url)))
    assert caught.value.response.status_code == 403


def test_another_sites_page_cannot_open_a_console(capi: Api, admin: str, server: str,
                                                  with_screen: dict[str, Any]) -> None:
    url = remote_console(capi, admin, server).json()["remote_console"]["url"]
    with pytest.raises(InvalidStatus) as caught:
        asyncio.run(rfb_handshake(websocket_of(url), origin="http://evil.example"))
    assert caught.value.response.status_code == 403


def test_only_the_tokens_hash_is_stored(capi: Api, admin: str, server: str,
                                        ccloud: InProcessCloud,
                                        with_screen: dict[str, Any]) -> None:
    url = remote_console(capi, admin, server).json()["remote_console"]["url"]
    token = unquote(parse_qs(urlsplit(url).query)["path"][0]).rsplit("token=", 1)[1]
    assert ccloud.cloud is not None
    with ccloud.cloud.db.session(write=False) as s:
        hashes = set(s.scalars(select(ConsoleAuthToken.token_hash)))
    assert tokens.token_hash(token) in hashes and token not in hashes


def test_the_console_url_shows_the_guests_screen_in_chromium(
        capi: Api, admin: str, server: str, tmp_path: Path,
        with_screen: dict[str, Any]) -> None:
    """What a user does with the URL: open it in a browser and see the guest's screen
    (here SeaBIOS's text on a black 720x400 VGA screen), not noVNC's error."""
    if browser.missing():
        pytest.fail(browser.missing() or "")
    url = remote_console(capi, admin, server).json()["remote_console"]["url"]
    seen = browser.visit(url, tmp_path)
    assert seen.status == "Connected to QEMU", seen
    canvas = browser.remote_screen(seen.screenshot)
    assert canvas.width >= 640 and canvas.height >= 350, canvas
    assert canvas.colours >= 2, canvas  # text on the screen, not one flat colour

    # A refused token leaves noVNC with nothing to draw: one flat colour below its error.
    bad = browser.visit(url.replace("token%3D", "token%3Dx"), tmp_path, name="bad.png")
    assert not bad.status.startswith("Connected"), bad
    assert browser.remote_screen(bad.screenshot).colours <= 1
