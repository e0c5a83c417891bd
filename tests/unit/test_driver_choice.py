"""`[compute] driver = "auto"`: QEMU where it is installed, the fake driver with a
notice where it is not; and what the first start registers as cirros on each."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from gureum import virt
from gureum.cli.main import pin_driver
from gureum.cloud import prepare
from gureum.db import Database
from gureum.image import models as m
from gureum.virt.fake import FakeDriver
from tests.harness import make_settings


def no_qemu(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(virt.shutil, "which",
                        lambda name: None if name == virt.QEMU_BINARY else real(name))


def test_auto_without_qemu_is_the_fake_driver_with_a_one_line_notice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_qemu(monkeypatch)
    settings = make_settings(tmp_path, compute={"driver": "auto"})
    out = io.StringIO()
    assert pin_driver(settings, out).compute.driver == "fake"
    notice = out.getvalue()
    assert notice.count("\n") == 1 and "apt-get install qemu-system-x86" in notice
    assert isinstance(virt.make_driver(settings, "c01"), FakeDriver)


def test_auto_with_qemu_installed_is_qemu_once_gureum_has_the_driver(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(virt.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(virt, "driver_classes", lambda: {"fake": FakeDriver})
    out = io.StringIO()
    settings = make_settings(tmp_path, compute={"driver": "auto"})
    assert pin_driver(settings, out).compute.driver == "fake"
    assert "no QEMU driver" in out.getvalue()
    monkeypatch.setattr(virt, "driver_classes", lambda: {"fake": FakeDriver, "qemu": object})
    out = io.StringIO()
    assert pin_driver(settings, out).compute.driver == "qemu"
    assert out.getvalue() == ""


def test_a_named_driver_is_kept_without_a_word(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    no_qemu(monkeypatch)
    out = io.StringIO()
    for name in ("fake", "qemu"):
        settings = make_settings(tmp_path, compute={"driver": name})
        assert pin_driver(settings, out).compute.driver == name
    assert out.getvalue() == ""


def cirros_family(db: Database) -> dict[str, m.Image]:
    with db.session(write=False) as s:
        return {i.name or "": i for i in s.scalars(select(m.Image))}


needs_qemu_img = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img is not installed (apt-get install "
    "qemu-utils): the test guest cannot be built")


@needs_qemu_img
def test_first_start_on_qemu_registers_the_test_guest_as_cirros(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", compute={"driver": "qemu"})
    db = Database(settings.database_url)
    try:
        out = io.StringIO()
        prepare(settings, db, out)
        images = cirros_family(db)
        assert set(images) == {"cirros", "cirros-kernel", "cirros-ramdisk"}, out.getvalue()
        props = images["cirros"].props()
        assert props["kernel_id"] == images["cirros-kernel"].id
        assert props["ramdisk_id"] == images["cirros-ramdisk"].id
        assert props["os_command_line"] == "console=tty0 console=ttyS0 quiet"
        assert (images["cirros"].disk_format, images["cirros-kernel"].disk_format,
                images["cirros-ramdisk"].disk_format) == ("qcow2", "aki", "ari")
        assert images["cirros"].virtual_size == 64 << 20
        assert (settings.data_dir / "test-image" / props["gureum_test_guest"]).is_dir()
        # A restart registers nothing more; nor does one after cirros was deleted.
        prepare(settings, db, io.StringIO())
        assert set(cirros_family(db)) == set(images)
        with db.session() as s:
            s.delete(s.get(m.Image, images["cirros"].id))
        prepare(settings, db, io.StringIO())
        assert set(cirros_family(db)) == {"cirros-kernel", "cirros-ramdisk"}
    finally:
        db.dispose()


@needs_qemu_img
def test_a_placeholder_cirros_becomes_the_test_guest_when_the_cloud_moves_to_qemu(
        tmp_path: Path) -> None:
    fake = make_settings(tmp_path / "data")
    db = Database(fake.database_url)
    try:
        prepare(fake, db, io.StringIO())
        placeholder = cirros_family(db)["cirros"]
        assert placeholder.disk_format == "raw"
        prepare(make_settings(tmp_path / "data", compute={"driver": "qemu"}), db,
                io.StringIO())
        images = cirros_family(db)
        assert images["cirros"].disk_format == "qcow2"
        old = images[f"cirros-{placeholder.id[:8]}"]
        assert old.id == placeholder.id and old.os_hidden
    finally:
        db.dispose()
