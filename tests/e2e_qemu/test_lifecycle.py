"""A real guest's life on `gureum up --driver qemu --hosts 2`, each host its own disks.

One guest, vm1 (m1.nano: 128 MiB, 1 GB), lives through the issue's list in
order, every step through the real `openstack` CLI and checked on the guest's
own serial console (the test image prints its RAM, disk size, boot counter,
NICs and a tick a second): created with two ports → ACTIVE, ready, two virtio
NICs with the ports' MACs, each a tap on the network's bridge; stopped → it
powered itself off (no force) and the boot counter's buffered write survived;
resized to m1.tiny and reverted, then resized and confirmed → the console shows
each time the RAM and disk it was given; cold-migrated → its disk went with it
(the counter goes on); live-migrated without shared storage (block migration)
→ the ticks go on on the other host, the source's QEMU is gone and the
migration record holds the downtime. A second guest, on an image whose guest
ignores the ACPI power button, is forced off after the shutdown timeout, and the
events say so (its unsynced boot counter is lost, as with a real power cut).
Deleting both leaves no QEMU process, socket, directory or tap behind.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_qemu.guests import (
    Boot,
    QemuCloud,
    boots,
    is_root,
    links,
    process_host,
    qemu_cloud,
    qemu_processes,
    server_ports,
    ticks,
    wait_gone,
)
from tests.scenarios.ops import DEMO, CliServer, cli_events, events

pytestmark = pytest.mark.e2e

IGNORING_TIMEOUT = 3  # os_shutdown_timeout of the image whose guest ignores ACPI


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, cli: CliServer) -> Iterator[QemuCloud]:
    with qemu_cloud(tmp_path_factory, cli, "qemu-life", hosts=2, compute={
            "shutdown_timeout": 60, "shutdown_retry_interval": 1}) as o:
        yield o


class Guest:
    """vm1 as the tests see it: its id and, per host, its console there when it last
    booted (a host keeps its own console file, as Nova's do: a move starts a new one
    on the destination, and back on a host the guest's old file there goes on)."""

    def __init__(self, server: dict[str, Any]) -> None:
        self.id = str(server["id"])
        self.consoles: dict[str, str] = {}


@pytest.fixture(scope="module")
def vm1(op: QemuCloud) -> Guest:
    op.only_enabled("c01")
    created = op.cli_json("server", "create", "--image", "cirros", "--flavor", "m1.nano",
                          "--network", "private", "--network", "private", "--wait", "vm1",
                          cloud=DEMO)
    op.only_enabled("c01", "c02")
    return Guest(created)


def next_boot(op: QemuCloud, vm: Guest) -> Boot:
    """The guest's first boot (ready) on its current host's console since the last one
    seen there."""
    host = op.host_of(vm.id)
    before = vm.consoles.get(host, "")

    def new_boot(text: str) -> Boot | None:
        seen = boots(text)
        fresh = seen[len(boots(before)):] if text.startswith(before) else seen
        return fresh[0] if fresh and fresh[0].ready else None
    boot: Boot = op.wait_console(vm.id, new_boot, f"a new boot on {host}")
    vm.consoles[host] = op.console(vm.id)
    return boot


def taps(op: QemuCloud, vm: Guest) -> dict[str, set[str]]:
    """Per port: the links enslaved to the bridge its binding names."""
    out = {}
    for port in server_ports(op, vm.id):
        bridge = port["binding_vif_details"]["bridge_name"]
        out[port["id"]] = {name for name in links(bridge) if name.startswith("tap")}
    return out


def test_create_gives_a_running_guest_with_its_ports_as_virtio_nics(
        op: QemuCloud, vm1: Guest) -> None:
    shown = op.cli_json("server", "show", "vm1", cloud=DEMO)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == 1
    boot = next_boot(op, vm1)
    console = op.cli("console", "log", "show", "vm1", cloud=DEMO).stdout
    assert "GUREUM-READY" in console
    assert (boot.ram_mb, boot.disk_mb, boot.boot_count) == (128, 1024, 1), boot

    ports = server_ports(op, vm1.id)
    assert len(ports) == 2
    assert sorted(mac for _, mac in boot.nics) == sorted(p["mac_address"] for p in ports)
    assert [name for name, _ in boot.nics] == ["eth0", "eth1"]
    (proc,) = qemu_processes(vm1.id)
    assert process_host(proc) == "c01"
    cmd = " ".join(proc.info["cmdline"])
    for port in ports:
        assert "virtio-net-pci,netdev=" in cmd and f"mac={port['mac_address']}" in cmd
        assert port["binding_host_id"] == "c01"
    if is_root():  # a tap per port on the network's bridge
        assert {p["binding_vif_type"] for p in ports} == {"bridge"}
        for port_id, on_bridge in taps(op, vm1).items():
            assert any(port_id[:8] in name for name in on_bridge), (port_id, on_bridge)
    else:
        assert {p["binding_vif_type"] for p in ports} == {"user"}


def test_stop_lets_the_guest_power_itself_off_and_start_boots_it_again(
        op: QemuCloud, vm1: Guest) -> None:
    op.cli("server", "stop", "vm1", cloud=DEMO)
    assert op.wait(vm1.id, {"SHUTOFF"}, timeout=90)["OS-EXT-STS:power_state"] == 4
    stop = cli_events(op, "vm1", DEMO, "stop")
    assert [(e["event"], e["result"]) for e in stop["events"]] == [
        ("compute_stop_instance", "Success")]  # nothing forced
    assert boots(op.console(vm1.id))[-1].powered_off_cleanly
    assert qemu_processes(vm1.id) == []

    op.cli("server", "start", "vm1", cloud=DEMO)
    assert op.wait(vm1.id, {"ACTIVE"}, timeout=90)["OS-EXT-STS:power_state"] == 1
    boot = next_boot(op, vm1)
    assert boot.boot_count == 2  # the first boot's buffered write survived the clean stop


def flavor_name(op: QemuCloud, server_id: str) -> str:
    return str(op.show(server_id)["flavor"]["original_name"])


def test_resize_revert_then_confirm(op: QemuCloud, vm1: Guest) -> None:
    source = op.host_of(vm1.id)
    op.cli("server", "resize", "--flavor", "m1.tiny", "--wait", "vm1", cloud=DEMO)
    resized = op.wait(vm1.id, {"VERIFY_RESIZE"}, timeout=120)
    assert resized["OS-EXT-SRV-ATTR:host"] != source
    boot = next_boot(op, vm1)
    assert (boot.ram_mb, boot.disk_mb) == (512, 1024), boot
    assert boot.boot_count == 3

    op.cli("server", "resize", "revert", "vm1", cloud=DEMO)
    reverted = op.wait(vm1.id, {"ACTIVE"}, timeout=120)
    assert reverted["OS-EXT-SRV-ATTR:host"] == source
    assert flavor_name(op, vm1.id) == "m1.nano"
    boot = next_boot(op, vm1)
    assert (boot.ram_mb, boot.disk_mb) == (128, 1024), boot
    # The source's own disk again: it never saw the copy's boot, so 3 once more.
    assert boot.boot_count == 3
    wait_gone(vm1.id, host=resized["OS-EXT-SRV-ATTR:host"])

    op.cli("server", "resize", "--flavor", "m1.tiny", "--wait", "vm1", cloud=DEMO)
    op.wait(vm1.id, {"VERIFY_RESIZE"}, timeout=120)
    boot = next_boot(op, vm1)
    assert (boot.ram_mb, boot.disk_mb) == (512, 1024), boot
    op.cli("server", "resize", "confirm", "vm1", cloud=DEMO)
    confirmed = op.wait(vm1.id, {"ACTIVE"}, timeout=60)
    assert flavor_name(op, vm1.id) == "m1.tiny"
    wait_gone(vm1.id, host=source)
    assert [process_host(p) for p in qemu_processes(vm1.id)] == [
        confirmed["OS-EXT-SRV-ATTR:host"]]


def test_cold_migration_moves_the_disk(op: QemuCloud, vm1: Guest) -> None:
    source = op.host_of(vm1.id)
    count = boots(op.console(vm1.id))[-1].boot_count
    assert count is not None
    dest = {"c01": "c02", "c02": "c01"}[source]
    op.cli("server", "migrate", "--host", dest, "--wait", vm1.id)
    op.wait(vm1.id, {"VERIFY_RESIZE"}, timeout=120)
    op.cli("server", "resize", "confirm", vm1.id)
    assert op.wait(vm1.id, {"ACTIVE"}, timeout=60)["OS-EXT-SRV-ATTR:host"] == dest
    boot = next_boot(op, vm1)
    assert boot.boot_count == count + 1  # the same disk: its counter went on
    wait_gone(vm1.id, host=source)
    assert [p["binding_host_id"] for p in server_ports(op, vm1.id)] == [dest, dest]


def test_block_live_migration_keeps_the_guest_running(op: QemuCloud, vm1: Guest) -> None:
    source = op.host_of(vm1.id)
    dest = {"c01": "c02", "c02": "c01"}[source]
    before = op.wait_tick(vm1.id, 0)
    ready_lines = op.console(vm1.id).count("GUREUM-READY")
    op.cli("server", "migrate", "--live-migration", "--host", dest, "--wait", vm1.id)
    assert op.wait(vm1.id, {"ACTIVE"}, timeout=180)["OS-EXT-SRV-ATTR:host"] == dest
    after = op.wait_tick(vm1.id, before + 2)
    console = op.console(vm1.id)
    assert console.count("GUREUM-READY") <= ready_lines  # no boot on the destination …
    assert ticks(console)[-1] == after > before  # … the guest went on counting
    wait_gone(vm1.id, host=source)
    assert [process_host(p) for p in qemu_processes(vm1.id)] == [dest]
    (mig,) = [m for m in op.migrations(vm1.id) if m["migration_type"] == "live-migration"]
    assert mig["status"] == "completed" and (mig["source_compute"], mig["dest_compute"]) == (
        source, dest)
    assert_downtime(op, vm1.id)


def assert_downtime(op: QemuCloud, server_id: str) -> int:
    """The live migration's record holds the downtime QEMU measured: shown to the admin
    in the details of its compute_live_migration event (`server event show`, 2.84), the
    memory copied in the migration's own columns."""
    listed = op.cli_json("server", "event", "list", server_id)
    request_id = next(r["Request ID"] for r in listed if r["Action"] == "live-migration")
    shown = op.cli_json("--os-compute-api-version", "2.84", "server", "event", "show",
                        server_id, request_id)
    (event,) = [e for e in shown["events"] if e["event"] == "compute_live_migration"]
    found = re.search(r"downtime (\d+) ms", event["details"] or "")
    assert found, event
    downtime = int(found.group(1))
    assert 0 <= downtime < 30_000, downtime
    (mig,) = [m for m in op.migrations(server_id) if m["migration_type"] == "live-migration"
              and m["status"] == "completed"][-1:]
    r = op.call("GET", f"/servers/{server_id}/migrations/{mig['id']}", version="2.80")
    if r.status_code == 200:  # a finished migration is shown only while in progress
        assert r.json()["migration"]["memory_processed_bytes"] > 0
    return downtime


@pytest.fixture(scope="module")
def ignoring_image(op: QemuCloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    """cirros's kernel and disk, booted with gureum.ignore_acpi=1: the guest ignores the
    power button, so a stop must time out and force it off."""
    cirros = op.cli_json("image", "show", "cirros")
    props = cirros["properties"]
    disk: Path = tmp_path_factory.mktemp("qemu-images") / "disk.qcow2"
    op.cli("image", "save", "--file", str(disk), "cirros")
    image = op.cli_json(
        "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
        "--file", str(disk), "--property", f"kernel_id={props['kernel_id']}",
        "--property", f"ramdisk_id={props['ramdisk_id']}",
        "--property", f"os_command_line={props['os_command_line']} gureum.ignore_acpi=1",
        "--property", f"os_shutdown_timeout={IGNORING_TIMEOUT}", "cirros-ignores-acpi",
        cloud=DEMO)
    return str(image["id"])


def test_a_guest_ignoring_acpi_is_forced_off_after_the_timeout(
        op: QemuCloud, ignoring_image: str) -> None:
    created = op.cli_json("server", "create", "--image", ignoring_image, "--flavor",
                          "m1.nano", "--nic", "none", "--wait", "stubborn", cloud=DEMO)
    sid = created["id"]
    boot = op.wait_boot(sid, 1)
    assert boot.acpi.startswith("ignored") and boot.boot_count == 1, boot

    started = time.monotonic()
    op.cli("server", "stop", "stubborn", cloud=DEMO)
    op.wait(sid, {"SHUTOFF"}, timeout=IGNORING_TIMEOUT + 60)
    assert time.monotonic() - started >= IGNORING_TIMEOUT
    stop = cli_events(op, "stubborn", DEMO, "stop")
    assert {(e["event"], e["result"]) for e in stop["events"]} == {
        ("compute_stop_instance", "Success"), ("compute_power_off_forced", "Success")}
    forced = events(op.last_action(sid, "stop"))["compute_power_off_forced"]
    assert forced["details"].startswith(
        f"The guest did not shut down within {IGNORING_TIMEOUT}s"), forced
    assert not boots(op.console(sid))[-1].powered_off_cleanly
    assert qemu_processes(sid) == []

    op.cli("server", "start", "stubborn", cloud=DEMO)
    op.wait(sid, {"ACTIVE"}, timeout=90)
    # Forced off: the first boot's unsynced write to the counter was lost.
    assert op.wait_boot(sid, 2).boot_count == 1


def detailed(names: Iterator[str] | dict[str, Any]) -> list[dict[str, Any]]:
    """``ip -d link`` of each link (its kind under linkinfo.info_kind)."""
    out = []
    for name in names:
        proc = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", name],
                              capture_output=True, text=True, check=False)
        out.extend(json.loads(proc.stdout or "[]"))
    return out


def test_delete_leaves_nothing_behind(op: QemuCloud, vm1: Guest) -> None:
    servers = {s["Name"]: s["ID"] for s in op.cli_json("server", "list", cloud=DEMO)}
    bridges = {p["binding_vif_details"].get("bridge_name") for p in server_ports(op, vm1.id)}
    port_ids = [p["id"] for p in server_ports(op, vm1.id)]
    assert op.leftovers(vm1.id), "the test would not see what a guest leaves"
    for name in servers:
        op.cli("server", "delete", "--wait", name, cloud=DEMO)
    assert op.cli_json("server", "list", cloud=DEMO) == []
    for sid in servers.values():
        assert op.leftovers(sid) == []
    if is_root():
        here = links()
        assert not [n for n in here if any(p[:8] in n for p in port_ids)], here
        # The last tap gone, so is its bridge, unless the network agent's data plane
        # still carries the network there (its DHCP or router legs: veths).
        for bridge in bridges & set(here):
            legs = links(bridge)
            assert all(link.get("linkinfo", {}).get("info_kind") == "veth"
                       for link in detailed(legs)), (bridge, sorted(legs))
