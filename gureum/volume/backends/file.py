"""The file backend: each volume a qcow2 (default) or raw file in one directory.

``<path>/volume-<id>.<format>`` holds a volume, ``<path>/snapshot-<id>.<format>``
a snapshot (a full copy, so a snapshot never depends on its volume's later
writes and a volume with snapshots can still be extended). The directory may be
shared between hosts (NFS, CephFS…): the connection info is the file's
absolute path, which every host then sees the same.

Data is written to a hidden temporary file beside its target and renamed into
place once complete, so a crash mid-copy leaves no half volume under a real
name; a retry starts clean. qemu-img does the copies and conversions; without
it, volumes are sparse raw files and only raw images can be copied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gureum.volume.backends.base import BackendError, Pool, VolumeBackend

GiB = 1 << 30
CHUNK = 1 << 20


def _qemu_img() -> str | None:
    return shutil.which("qemu-img")


class FileBackend(VolumeBackend):
    name = "file"
    protocol = "file"

    def __init__(self, root: Path, volume_format: str = "qcow2",
                 qemu_img: str | None = "auto", copy_delay: float = 0.0) -> None:
        self.root = Path(root)
        self.copy_delay = copy_delay  # tests: the data sits in its temporary file a while
        self.qemu_img = _qemu_img() if qemu_img == "auto" else qemu_img
        if volume_format == "qcow2" and not self.qemu_img:
            volume_format = "raw"  # sparse raw files are all we can make without qemu-img
        self.format = volume_format

    # -- names -----------------------------------------------------------------------
    def _new(self, kind: str, ident: str) -> str:
        return f"{kind}-{ident}.{self.format}"

    def path(self, location: str) -> Path:
        if "/" in location or location.startswith("."):
            raise BackendError(f"not a file backend location: {location!r}")
        return self.root / location

    @staticmethod
    def format_of(location: str) -> str:
        return "qcow2" if location.endswith(".qcow2") else "raw"

    @contextlib.contextmanager
    def _writing(self, location: str) -> Iterator[Path]:
        """A temporary path to write; renamed to the location's on success."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(location)
        tmp = self.root / f".{location}.part"
        _unlink(tmp)
        try:
            yield tmp
            if self.copy_delay:
                time.sleep(self.copy_delay)
            os.replace(tmp, target)
        except BaseException:
            _unlink(tmp)
            raise

    def _run(self, *args: str) -> str:
        assert self.qemu_img
        proc = subprocess.run([self.qemu_img, *args], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise BackendError(f"qemu-img {args[0]} failed: "
                               f"{detail[-1] if detail else proc.returncode}")
        return proc.stdout

    def _make_empty(self, path: Path, size: int) -> None:
        if self.format == "qcow2":
            self._run("create", "-q", "-f", "qcow2", str(path), f"{size}G")
        else:
            with path.open("wb") as fh:
                fh.truncate(size * GiB)

    def _convert(self, src: Path, src_format: str, dst: Path, size: int) -> None:
        """Copy src into dst in this backend's format, then grow dst to ``size`` GiB."""
        if self.qemu_img:
            self._run("convert", "-U", "-q", "-f", src_format, "-O", self.format, str(src),
                      str(dst))
            virtual = self._virtual_size(dst)
            if virtual < size * GiB:
                self._run("resize", "-q", "-f", self.format, str(dst), f"{size}G")
            return
        if src_format != "raw":
            raise BackendError(f"cannot convert a {src_format} disk without qemu-img")
        _sparse_copy(src, dst)
        with dst.open("r+b") as fh:
            if fh.seek(0, os.SEEK_END) < size * GiB:
                fh.truncate(size * GiB)

    def _virtual_size(self, path: Path) -> int:
        import json

        info = json.loads(self._run("info", "-U", "--output=json", str(path)))
        return int(info["virtual-size"])

    # -- the contract ----------------------------------------------------------------
    def create(self, volume_id: str, size: int) -> str:
        location = self._new("volume", volume_id)
        with self._writing(location) as tmp:
            self._make_empty(tmp, size)
        return location

    def delete(self, volume_id: str, location: str | None) -> None:
        _unlink(self.path(location or self._new("volume", volume_id)))

    def extend(self, volume_id: str, location: str, new_size: int) -> None:
        path = self.path(location)
        if not path.exists():
            raise BackendError(f"the data of volume {volume_id} is missing")
        if self.format_of(location) == "qcow2":
            self._run("resize", "-q", "-f", "qcow2", str(path), f"{new_size}G")
        else:
            with path.open("r+b") as fh:
                fh.truncate(new_size * GiB)

    def clone(self, source_id: str, source_location: str, volume_id: str, size: int) -> str:
        src = self.path(source_location)
        if not src.exists():
            raise BackendError(f"the data of source volume {source_id} is missing")
        location = self._new("volume", volume_id)
        with self._writing(location) as tmp:
            self._convert(src, self.format_of(source_location), tmp, size)
        return location

    def snapshot(self, volume_id: str, location: str, snapshot_id: str) -> str:
        src = self.path(location)
        if not src.exists():
            raise BackendError(f"the data of volume {volume_id} is missing")
        snap = self._new("snapshot", snapshot_id)
        with self._writing(snap) as tmp:
            self._convert(src, self.format_of(location), tmp, 0)
        return snap

    def delete_snapshot(self, snapshot_id: str, location: str | None) -> None:
        _unlink(self.path(location or self._new("snapshot", snapshot_id)))

    def create_from_snapshot(self, snapshot_id: str, snapshot_location: str,
                             volume_id: str, size: int) -> str:
        src = self.path(snapshot_location)
        if not src.exists():
            raise BackendError(f"the data of snapshot {snapshot_id} is missing")
        location = self._new("volume", volume_id)
        with self._writing(location) as tmp:
            self._convert(src, self.format_of(snapshot_location), tmp, size)
        return location

    def revert_to_snapshot(self, volume_id: str, location: str, snapshot_id: str,
                           snapshot_location: str) -> None:
        src = self.path(snapshot_location)
        if not src.exists():
            raise BackendError(f"the data of snapshot {snapshot_id} is missing")
        fmt = self.format_of(location)
        with self._writing(location) as tmp:
            if self.qemu_img:
                self._run("convert", "-q", "-f", self.format_of(snapshot_location), "-O",
                          fmt, str(src), str(tmp))
            else:
                _sparse_copy(src, tmp)

    def copy_from_image(self, image_path: Path, disk_format: str, volume_id: str,
                        size: int) -> str:
        if not image_path.exists():
            raise BackendError("the image's data is missing")
        location = self._new("volume", volume_id)
        fmt = disk_format if disk_format in ("qcow2", "raw", "vmdk", "vdi", "vhd", "vhdx") \
            else "raw"
        fmt = "vpc" if fmt == "vhd" else fmt
        with self._writing(location) as tmp:
            self._convert(image_path, fmt, tmp, size)
        return location

    def copy_to_image(self, volume_id: str, location: str, target: Path,
                      disk_format: str) -> None:
        src = self.path(location)
        if not src.exists():
            raise BackendError(f"the data of volume {volume_id} is missing")
        src_format = self.format_of(location)
        if self.qemu_img:
            self._run("convert", "-U", "-q", "-f", src_format, "-O",
                      "qcow2" if disk_format == "qcow2" else "raw", str(src), str(target))
        elif disk_format == "raw" and src_format == "raw":
            _sparse_copy(src, target)
        else:
            raise BackendError(f"cannot write a {disk_format} image without qemu-img")

    def connection_info(self, volume_id: str, location: str, host: str) -> dict[str, Any]:
        return {"driver_volume_type": self.protocol,
                "data": {"path": str(self.path(location).absolute()),
                         "format": self.format_of(location), "volume_id": volume_id}}

    def pools(self) -> list[Pool]:
        self.root.mkdir(parents=True, exist_ok=True)
        usage = shutil.disk_usage(self.root)
        provisioned = 0
        for entry in os.scandir(self.root):
            if entry.name.startswith("volume-"):
                provisioned += self._size_of(Path(entry.path))
        return [Pool(name=self.name, total_capacity_gb=round(usage.total / GiB, 2),
                     free_capacity_gb=round(usage.free / GiB, 2),
                     provisioned_capacity_gb=round(provisioned / GiB, 2),
                     capabilities={"thin_provisioning_support": True,
                                   "thick_provisioning_support": False,
                                   "max_over_subscription_ratio": "20.0",
                                   "reserved_percentage": 0, "multiattach": False,
                                   "QoS_support": False, "volume_format": self.format,
                                   "storage_protocol": self.protocol})]

    def _size_of(self, path: Path) -> int:
        if path.suffix == ".qcow2":
            try:
                with path.open("rb") as fh:
                    head = fh.read(32)
                return int.from_bytes(head[24:32], "big")
            except OSError:
                return 0
        try:
            return path.stat().st_size
        except OSError:
            return 0


def _sparse_copy(src: Path, dst: Path) -> None:
    """Copy a file leaving holes where the source has zeros."""
    zero = bytes(CHUNK)
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            if chunk == zero[:len(chunk)]:
                fout.seek(len(chunk), os.SEEK_CUR)
            else:
                fout.write(chunk)
        fout.truncate()


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
