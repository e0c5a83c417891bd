"""The issue's browser console, end to end: `openstack console url show --novnc vm1` on
`gureum up --driver qemu`, and the URL opened in headless Chromium shows the guest.

The guest is the test image (it prints on its VGA console, tty0, as well as on
the serial one); the URL is noVNC's page from Debian's novnc, served by the API's
proxy at /vnc, whose websocket is relayed to the guest's QEMU VNC websocket once
the token checks out. Checked: noVNC says it is connected to this guest's QEMU
(its VNC desktop is named after the instance), and the screenshot shows a VGA
screen with text on it (noVNC's error page is one flat colour); a token changed
by one character and a stopped server get nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import browser
from tests.e2e_qemu.guests import QemuCloud, qemu_cloud
from tests.scenarios.ops import DEMO, CliServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[QemuCloud]:
    with qemu_cloud(tmp_path_factory, cli, "qemu-console", hosts=1,
                    compute={"shutdown_timeout": 30, "shutdown_retry_interval": 1}) as o:
        yield o


def test_console_url_opens_the_guests_screen_in_a_browser(op: QemuCloud,
                                                           tmp_path: Path) -> None:
    if browser.missing():
        pytest.fail(browser.missing() or "")
    server = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                         "--nic", "none", "--wait", "vm1", cloud=DEMO)
    assert server["status"] == "ACTIVE", server
    op.wait_boot(server["id"], 1)  # its screen shows the booted guest, not the firmware

    shown = op.cli_json("console", "url", "show", "--novnc", "vm1", cloud=DEMO)
    assert shown["type"] == "novnc" and shown["protocol"] == "vnc"
    assert shown["url"].startswith(f"{op.url}/vnc/vnc_lite.html?path=")

    seen = browser.visit(shown["url"], tmp_path)
    name = op.show(server["id"])["OS-EXT-SRV-ATTR:instance_name"]
    assert seen.status == f"Connected to QEMU ({name})", seen  # this guest's QEMU
    canvas = browser.remote_screen(seen.screenshot)
    assert canvas.width >= 640 and canvas.height >= 400, canvas  # the VGA text screen
    assert canvas.colours >= 2, canvas  # with text on it

    refused = browser.visit(shown["url"].replace("token%3D", "token%3D0"), tmp_path,
                            name="refused.png")
    assert not refused.status.startswith("Connected"), refused
    assert browser.remote_screen(refused.screenshot).colours <= 1

    op.cli("server", "stop", "vm1", cloud=DEMO)
    op.wait(server["id"], {"SHUTOFF"}, timeout=60)
    stopped = op.cli("console", "url", "show", "--novnc", "vm1", cloud=DEMO, check=False)
    assert stopped.returncode != 0 and "is not ready" in stopped.stderr, stopped.stderr
    op.cli("server", "delete", "--wait", "vm1", cloud=DEMO)
