"""S9. After a compute host reboots.

Then, none of its guests ran; operators started each one, and a guest whose
definition file had gone needed `openstack server reboot --hard`. In gureum the
compute agent reconciles when it starts: power states are synced to reality,
guests that were running are started again when
resume_guests_state_on_host_boot is set, and a hard reboot always rebuilds the
VM definition from the database.

A host reboot cannot be expressed against `gureum up` (its agents live in the
one process), so this scenario uses the in-process cloud
(tests/scenarios/inproc.py): the host's agent stops, every guest of its fake
driver is powered off (one also loses its definition), and a new agent starts
on the same driver. The operator's side is the real `openstack` CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gureum.compute import states
from gureum.virt.fake import FakeDriver
from tests.harness import InProcessCloud
from tests.scenarios.inproc import copies, host_down, host_up, inprocess
from tests.scenarios.ops import CliServer, Operator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def inproc(tmp_path_factory: pytest.TempPathFactory, cli: CliServer
           ) -> Iterator[tuple[InProcessCloud, Operator]]:
    with inprocess(tmp_path_factory, cli, "s09", hosts=2) as pair:
        yield pair


def reboot_host(c: InProcessCloud, host: str, lose_definition: str,
                resume: bool) -> FakeDriver:
    """The host goes down, comes back with nothing running and one definition gone."""
    driver = host_down(c, host)
    driver.simulate_host_reboot()
    driver.lose_definition(lose_definition)
    host_up(c, host, driver, resume_guests_state_on_host_boot=resume)
    return driver


NOSTATE, RUNNING, SHUTDOWN = 0, 1, 4  # the Power State column (-f json prints the number)


def listed(op: Operator, host: str) -> dict[str, tuple[str, int]]:
    rows = op.cli_json("server", "list", "--host", host, "--long")
    return {r["Name"]: (r["Status"], r["Power State"]) for r in rows}


def boot_on(op: Operator, host: str, *names: str) -> dict[str, dict[str, Any]]:
    return {name: op.boot(name, cloud="gureum", host=host) for name in names}


def test_with_resume_guests_state_running_guests_come_back(
        inproc: tuple[InProcessCloud, Operator]) -> None:
    c, op = inproc
    vms = boot_on(op, "c01", "web", "db", "batch")
    op.cli("server", "stop", "batch")  # stopped by its owner before the reboot
    op.wait(vms["batch"]["id"], {"SHUTOFF"})

    driver = reboot_host(c, "c01", lose_definition=vms["db"]["id"], resume=True)

    assert listed(op, "c01") == {"web": ("ACTIVE", RUNNING), "db": ("ACTIVE", RUNNING),
                                 "batch": ("SHUTOFF", SHUTDOWN)}
    assert copies(c, vms["web"]["id"]) == {"c01": states.RUNNING}
    # The lost definition was rebuilt from the database.
    assert copies(c, vms["db"]["id"]) == {"c01": states.RUNNING}
    assert driver.guests[vms["db"]["id"]].spec.memory_mb == 512  # m1.tiny
    # A guest that was not running is not started behind its owner's back.
    assert copies(c, vms["batch"]["id"]) == {"c01": states.SHUTDOWN}


def test_without_it_guests_show_shutoff_and_hard_reboot_rebuilds(
        inproc: tuple[InProcessCloud, Operator]) -> None:
    c, op = inproc
    vms = boot_on(op, "c02", "app", "cache")

    driver = reboot_host(c, "c02", lose_definition=vms["cache"]["id"], resume=False)

    # Power states synced to reality: nothing runs, and the API says so; the guest
    # that is gone altogether has no power state (NOSTATE) and a fault says why.
    assert listed(op, "c02") == {"app": ("SHUTOFF", SHUTDOWN),
                                 "cache": ("ACTIVE", NOSTATE)}
    assert "missing from its host" in op.show(vms["cache"]["id"])["fault"]["message"]
    op.cli("server", "start", "app")
    assert op.wait(vms["app"]["id"], {"ACTIVE"})["OS-EXT-STS:power_state"] == 1
    # The guest whose definition is gone: a hard reboot rebuilds it.
    op.cli("server", "reboot", "--hard", "cache")
    rebuilt = op.wait(vms["cache"]["id"], {"ACTIVE"})
    assert rebuilt["OS-EXT-STS:power_state"] == 1 and "fault" not in rebuilt
    assert copies(c, vms["cache"]["id"]) == {"c02": states.RUNNING}
    assert driver.guests[vms["cache"]["id"]].spec.name == \
        op.show(vms["cache"]["id"])["OS-EXT-SRV-ATTR:instance_name"]
    assert listed(op, "c02") == {"app": ("ACTIVE", RUNNING), "cache": ("ACTIVE", RUNNING)}


def test_an_agent_restart_without_a_reboot_changes_nothing(
        inproc: tuple[InProcessCloud, Operator]) -> None:
    c, op = inproc
    before = listed(op, "c01")
    host_up(c, "c01", host_down(c, "c01"), resume_guests_state_on_host_boot=True)
    assert listed(op, "c01") == before
