"""S9 on real guests: a compute host reboots (its agent stops, its QEMU processes die).

An in-process cloud on the QEMU driver boots the test guest (cirros, m1.nano). The
host "reboots": its agent stops and the guest's QEMU is killed. A new agent (a new
driver object, as after a reboot) with ``resume_guests_state_on_host_boot`` starts
the guest again from its definition rebuilt from the database: ACTIVE, running, a
second boot on its console. Without the setting, the next reboot leaves it SHUTOFF.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gureum.agent.service import ComputeAgent
from gureum.virt.qemu import QemuDriver, process
from gureum.virt.qemu.cmdline import qemu_uuid
from tests.compute_helpers import boot, wait_status
from tests.harness import Api, InProcessCloud, make_settings
from tests.qemu import guest as test_guest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(test_guest.missing() is not None,
                                                   reason=str(test_guest.missing()))]

BOOT_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCloud]:
    data_dir = tmp_path_factory.mktemp("s09-qemu")
    c = InProcessCloud(make_settings(data_dir, compute={"driver": "qemu"})).start()
    try:
        yield c
    finally:
        for agent in (c.cloud.agents if c.cloud else []):
            if isinstance(agent.driver, QemuDriver):
                for guest_id in c.run(agent.driver.list_guests()):
                    c.run(agent.driver.destroy(guest_id))
        c.stop()
        test_guest.kill_guests_under(data_dir)


def console(api: Api, token: str, server_id: str) -> str:
    r = api.request("POST", f"/compute/v2.1/servers/{server_id}/action", token,
                    json={"os-getConsoleOutput": {}})
    assert r.status_code == 200, r.text
    return str(r.json()["output"])


def wait_ready(api: Api, token: str, server_id: str, count: int) -> str:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while (text := console(api, token, server_id)).count(test_guest.READY) < count:
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    return text


def reboot_host(c: InProcessCloud, **compute: Any) -> ComputeAgent:
    """The host goes down (agent stopped, QEMU killed) and comes back: a new agent on a
    new driver, with these [compute] settings."""
    assert c.cloud is not None
    (agent,) = c.cloud.agents
    c.run(agent.stop())
    driver = agent.driver
    assert isinstance(driver, QemuDriver)
    for guest_id in c.run(driver.list_guests()):
        pid = driver.process_id(guest_id)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            assert c.run(process.wait_gone(pid, qemu_uuid(guest_id), 10))
    settings = dataclasses.replace(c.settings, compute=dataclasses.replace(
        c.settings.compute, **compute))
    new = ComputeAgent(settings, c.cloud.bus, agent.host)
    assert isinstance(new.driver, QemuDriver) and new.driver is not driver
    c.run(new.start())
    c.cloud.agents[:] = [new]
    return new


def test_guests_that_ran_come_back_after_a_host_reboot(cloud: InProcessCloud) -> None:
    api = Api(cloud.url)
    token = api.token("admin", cloud.admin_password, "admin")
    server = boot(api, token, "vm1", flavor="42")
    wait_status(api, token, server["id"], {"ACTIVE"}, timeout=120)
    first = wait_ready(api, token, server["id"], 1)
    assert re.search(r"ram-mb: 128\b", first)

    reboot_host(cloud, resume_guests_state_on_host_boot=True)
    shown = wait_status(api, token, server["id"], {"ACTIVE"}, timeout=120)
    assert shown["OS-EXT-STS:power_state"] == 1
    wait_ready(api, token, server["id"], 2)  # booted again

    reboot_host(cloud, resume_guests_state_on_host_boot=False)
    deadline = time.monotonic() + 60
    while (shown := wait_status(api, token, server["id"], {"ACTIVE", "SHUTOFF"})
           )["OS-EXT-STS:power_state"] != 4:
        assert time.monotonic() < deadline, shown
        time.sleep(0.2)
    assert console(api, token, server["id"]).count(test_guest.READY) == 2  # not started
    api.close()

