"""`gureum manage build-test-image --register`: the test guest becomes the cloud's cirros,
registered as Glance holds an image with its own kernel and ramdisk."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import BIN, GureumUp

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GureumUp]:
    cloud = GureumUp(tmp_path_factory.mktemp("testimage") / "data").start()
    yield cloud
    cloud.stop()


def show(up: GureumUp, name: str) -> dict[str, Any]:
    image: dict[str, Any] = json.loads(up.openstack(
        "--os-cloud", "gureum", "image", "show", name, "-f", "json").stdout)
    return image


def manage(up: GureumUp, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "gureum"), "manage", "build-test-image", "--data-dir",
                           str(up.data_dir), *args], capture_output=True, text=True,
                          timeout=300)


def test_register_makes_cirros_the_test_guest_with_its_kernel_and_ramdisk(
        up: GureumUp, tmp_path: Path) -> None:
    placeholder = show(up, "cirros")  # the fake driver's placeholder disk
    assert placeholder["disk_format"] == "raw"

    done = manage(up, "--register")
    assert done.returncode == 0, done.stderr
    assert "registered the public image cirros-kernel" in done.stdout

    cirros = show(up, "cirros")
    props = cirros["properties"]
    assert cirros["disk_format"] == "qcow2" and cirros["visibility"] == "public"
    assert props["os_command_line"] == "console=tty0 console=ttyS0 quiet"
    kernel, ramdisk = show(up, props["kernel_id"]), show(up, props["ramdisk_id"])
    assert (kernel["name"], kernel["disk_format"]) == ("cirros-kernel", "aki")
    assert (ramdisk["name"], ramdisk["disk_format"]) == ("cirros-ramdisk", "ari")
    build = up.data_dir / "test-image" / props["gureum_test_guest"]
    saved = tmp_path / "kernel"
    up.openstack("--os-cloud", "gureum", "image", "save", "--file", str(saved),
                 props["kernel_id"])
    assert hashlib.sha256(saved.read_bytes()).digest() == \
        hashlib.sha256((build / "vmlinuz").read_bytes()).digest()
    # The placeholder is kept for what may use it, renamed and hidden.
    old = show(up, placeholder["id"])
    assert old["name"] == f"cirros-{placeholder['id'][:8]}", old
    assert old.get("os_hidden", old["properties"].get("os_hidden")) is True, old

    # Again: the build is cached and cirros already is this guest.
    again = manage(up, "--register")
    assert again.returncode == 0, again.stderr
    assert "cirros is already this test guest" in again.stdout
    assert show(up, "cirros")["id"] == cirros["id"]


def test_build_alone_prints_how_to_boot_it(tmp_path: Path) -> None:
    done = subprocess.run([str(BIN / "gureum"), "manage", "build-test-image", "--data-dir",
                           str(tmp_path / "data"), "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "test image: ready in" in done.stdout
    kernel = next(line.split()[1] for line in done.stdout.splitlines()
                  if line.startswith("kernel:"))
    assert Path(kernel).is_file() and Path(kernel).parent.parent == tmp_path / "out"
    assert "-append 'console=tty0 console=ttyS0 quiet'" in done.stdout
