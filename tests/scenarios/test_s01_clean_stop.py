"""S1. Stop gives the guest a chance to shut down.

`openstack server stop` sends an ACPI power-down, re-sends it every
shutdown_retry_interval, waits up to shutdown_timeout (the image property
os_shutdown_timeout overrides it) and only then forces the guest off; forcing
is recorded in the instance's action events. The fake driver's guests shut down
at once unless they ignore ACPI (compute.fake_ignore_acpi names them by
hostname here), which is the guest this scenario is about. How often the
request is re-sent is only visible inside the fake host, so the last test looks
at it in an in-process cloud (tests/scenarios/inproc.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scenarios.inproc import drivers, inprocess
from tests.scenarios.ops import DEMO, CliServer, Operator, cli_events, cloud, events

pytestmark = pytest.mark.e2e

TIMEOUT = 3  # compute.shutdown_timeout of this cloud
IMAGE_TIMEOUT = 1  # os_shutdown_timeout on the custom image


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[Operator]:
    with cloud(tmp_path_factory, cli, "s01", hosts=2, compute={
            "shutdown_timeout": TIMEOUT, "shutdown_retry_interval": 0.5,
            "fake_ignore_acpi": "*:stubborn,*:patient,*:patient2"}) as o:
        yield o


def stop_and_time(op: Operator, name: str, server_id: str) -> float:
    """`openstack server stop NAME` as the owner; seconds until SHUTOFF."""
    started = time.monotonic()
    op.cli("server", "stop", name, cloud=DEMO)
    server = op.wait(server_id, {"SHUTOFF"}, timeout=TIMEOUT + 20)
    assert server["OS-EXT-STS:power_state"] == 4  # Shutdown
    return time.monotonic() - started


def test_clean_stop_and_start(op: Operator) -> None:
    vm = op.boot("vm1")
    stop_and_time(op, "vm1", vm["id"])
    stop = cli_events(op, "vm1", DEMO, "stop")
    assert [(e["event"], e["result"]) for e in stop["events"]] == [
        ("compute_stop_instance", "Success")]  # shut down by itself: nothing forced

    op.cli("server", "start", "vm1", cloud=DEMO)
    server = op.wait(vm["id"], {"ACTIVE"})
    assert server["OS-EXT-STS:power_state"] == 1  # Running
    listed = op.cli_json("server", "event", "list", "vm1", cloud=DEMO)
    assert [row["Action"] for row in listed] == ["start", "stop", "create"]


def test_guest_ignoring_acpi_is_forced_off_after_shutdown_timeout(op: Operator) -> None:
    vm = op.boot("stubborn")
    started = time.monotonic()
    op.cli("server", "stop", "stubborn", cloud=DEMO)
    # Still being asked to shut down well after the request: nothing was killed yet.
    time.sleep(max(0.0, started + TIMEOUT / 2 - time.monotonic()))
    waiting = op.show(vm["id"])
    assert (waiting["status"], waiting["OS-EXT-STS:task_state"]) == ("ACTIVE", "powering-off")
    op.wait(vm["id"], {"SHUTOFF"}, timeout=TIMEOUT + 20)
    assert time.monotonic() - started >= TIMEOUT

    stop = cli_events(op, "stubborn", DEMO, "stop")
    assert {(e["event"], e["result"]) for e in stop["events"]} == {
        ("compute_stop_instance", "Success"), ("compute_power_off_forced", "Success")}
    # The admin sees why (event details, 2.84) and where.
    forced = events(op.last_action(vm["id"], "stop"))["compute_power_off_forced"]
    assert forced["details"].startswith(f"The guest did not shut down within {TIMEOUT}s")
    assert forced["host"] == op.show(vm["id"])["OS-EXT-SRV-ATTR:host"]

    op.cli("server", "start", "stubborn", cloud=DEMO)
    assert op.wait(vm["id"], {"ACTIVE"})["OS-EXT-STS:power_state"] == 1


@pytest.fixture(scope="module")
def patient_image(op: Operator, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The member's image whose guests get IMAGE_TIMEOUT seconds to shut down."""
    disk: Path = tmp_path_factory.mktemp("s01-image") / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb" + bytes(1020))
    image = op.cli_json("image", "create", "--disk-format", "qcow2", "--container-format",
                        "bare", "--file", str(disk), "--property",
                        f"os_shutdown_timeout={IMAGE_TIMEOUT}", "patient-image", cloud=DEMO)
    return str(image["id"])


def test_image_os_shutdown_timeout_overrides_the_setting(op: Operator, patient_image: str
                                                         ) -> None:
    vm = op.boot("patient", image=patient_image)

    elapsed = stop_and_time(op, "patient", vm["id"])
    assert elapsed >= IMAGE_TIMEOUT
    forced = events(op.last_action(vm["id"], "stop"))["compute_power_off_forced"]
    assert forced["details"].startswith(
        f"The guest did not shut down within {IMAGE_TIMEOUT}s"), forced

    # Resize powers off the same way (S1: every path that powers a guest off).
    op.cli("server", "start", "patient", cloud=DEMO)
    op.wait(vm["id"], {"ACTIVE"})
    op.cli("server", "resize", "--flavor", "m1.small", "patient", cloud=DEMO)
    server = op.wait(vm["id"], {"VERIFY_RESIZE"})
    assert server["OS-EXT-STS:power_state"] == 1
    resize = events(op.last_action(vm["id"], "resize"))
    assert resize["compute_power_off_forced"]["result"] == "Success"
    assert "forced off" in resize["compute_power_off_forced"]["details"]
    r = op.call("POST", f"/servers/{vm['id']}/action", DEMO, json={"confirmResize": None})
    assert r.status_code == 204, r.text
    assert op.wait(vm["id"], {"ACTIVE"})["flavor"]["original_name"] == "m1.small"


def test_rescue_and_shelve_power_off_the_same_way(op: Operator, patient_image: str) -> None:
    """S1: every path that powers a guest off asks first and records any forcing."""
    vm = op.boot("patient2", image=patient_image)
    op.cli("server", "rescue", "patient2", cloud=DEMO)
    op.wait(vm["id"], {"RESCUE"})
    forced = events(op.last_action(vm["id"], "rescue"))["compute_power_off_forced"]
    assert forced["details"].startswith(f"The guest did not shut down within {IMAGE_TIMEOUT}s")
    op.cli("server", "unrescue", "patient2", cloud=DEMO)
    op.wait(vm["id"], {"ACTIVE"})

    op.cli("server", "shelve", "patient2", cloud=DEMO)
    op.wait(vm["id"], {"SHELVED_OFFLOADED"})
    shelve = events(op.last_action(vm["id"], "shelve"))
    assert shelve["compute_shelve_instance"]["result"] == "Success"
    assert "compute_power_off_forced" in shelve, shelve
    op.cli("server", "unshelve", "patient2", cloud=DEMO)
    assert op.wait(vm["id"], {"ACTIVE"})["OS-EXT-STS:power_state"] == 1


def test_the_request_is_repeated_every_retry_interval(
        tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> None:
    with inprocess(tmp_path_factory, cli, "s01-retry", hosts=1, compute={
            "shutdown_timeout": 1, "shutdown_retry_interval": 0.25,
            "fake_ignore_acpi": "*:stubborn"}) as (c, op):
        vm = op.boot("stubborn")
        op.cli("server", "stop", "stubborn", cloud=DEMO)
        op.wait(vm["id"], {"SHUTOFF"})
        asked = [call for call in drivers(c)["c01"].calls
                 if call == ("acpi_power_down", vm["id"])]
        assert 4 <= len(asked) <= 5, asked  # at 0, 0.25, 0.5, 0.75 s (then forced at 1 s)
