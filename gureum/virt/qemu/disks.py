"""Disks: the image cache (``instances/_base``), qcow2 overlays, config drives.

- ``cache_image``: ``instances/_base/<image-id>`` is a copy of the image file the
  agent fetched (``spec.image_path``), made once per image and host (or once per
  shared ``instances/``), under a lock, renamed into place so no reader sees half
  a copy. raw and qcow2 images are kept as they are (a qcow2 image with a backing
  file of its own is refused: it could make QEMU read any host file); other
  formats are converted to raw.
- ``create_overlay``: ``instances/<uuid>/disk``, a qcow2 overlay on the base
  (``-b base -F fmt``), grown to the flavor's root disk (never shrunk).
- ``clean_image_cache``: removes bases that no guest's disk in ``instances/``
  uses (every guest directory is looked at, so on shared storage the other
  hosts' guests count too) and that were not used for ``max_age`` seconds (S14).
- ``make_config_drive``: an ISO 9660 image labelled ``config-2`` with
  ``openstack/<version>/meta_data.json``, ``user_data`` and (from 2015-10-15 on)
  ``network_data.json``, for ``latest`` and each of Nova's dated versions
  (genisoimage).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gureum.virt.driver import DriverError
from gureum.virt.network_data import METADATA_VERSIONS, NETWORK_DATA_SINCE
from gureum.virt.qemu.process import find_binary

BASE_DIR = "_base"
GiB = 1 << 30


async def run(*argv: str, timeout: float = 600.0) -> str:
    """Run a tool; its stdout, or DriverError with its stderr."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise DriverError(f"Could not run {argv[0]}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DriverError(f"{Path(argv[0]).name} took longer than {timeout:g}s.") from None
    if proc.returncode != 0:
        raise DriverError(f"{Path(argv[0]).name} failed: "
                          f"{err.decode(errors='replace').strip() or proc.returncode}")
    return out.decode(errors="replace")


def qemu_img() -> str:
    return find_binary("qemu-img")


async def info(path: Path) -> dict[str, Any]:
    """``qemu-img info`` of a file (its format probed: only for trusted files)."""
    out = await run(qemu_img(), "info", "--output=json", "-U", str(path))
    data: dict[str, Any] = json.loads(out)
    return data


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def base_path(instances: Path, image_id: str) -> Path:
    if not image_id or "/" in image_id or image_id.startswith("."):
        raise DriverError(f"Not an image id: {image_id!r}")
    return instances / BASE_DIR / image_id


async def cache_image(instances: Path, image_id: str, source: str) -> tuple[Path, str]:
    """The cached base of an image, copied from ``source`` if not cached yet; returns
    (path, format). The base's mtime is refreshed: it was used now."""
    base = base_path(instances, image_id)
    base.parent.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    lock = base.parent / f".{image_id}.lock"
    await loop.run_in_executor(None, _lock_and_touch_or_none, lock, base)
    if not base.exists():
        if not source or not Path(source).is_file():
            raise DriverError(f"Image {image_id} is not cached on this host and its file "
                              f"{source or '(none given)'} is not readable here.")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".part",
                                        dir=base.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            await loop.run_in_executor(None, shutil.copyfile, source, tmp)
            fmt = await _checked_format(tmp)
            if fmt not in ("raw", "qcow2"):
                raw = tmp.with_suffix(".raw")
                await run(qemu_img(), "convert", "-f", fmt, "-O", "raw", str(tmp), str(raw))
                os.replace(raw, tmp)
            os.replace(tmp, base)  # a concurrent copy of the same image is the same bytes
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_suffix(".raw").unlink(missing_ok=True)
    return base, await _checked_format(base)


def _lock_and_touch_or_none(lock: Path, base: Path) -> None:
    with _locked(lock), contextlib.suppress(FileNotFoundError):
        os.utime(base)


async def _checked_format(path: Path) -> str:
    data = await info(path)
    if data.get("backing-filename"):
        raise DriverError(f"Image file {path.name} has a backing file of its own; refused.")
    return str(data.get("format", "raw"))


async def create_overlay(disk: Path, base: Path | None, base_format: str, size_gb: int
                         ) -> None:
    """A qcow2 disk on ``base`` (or a blank one when base is None) of at least
    size_gb GiB."""
    args = [qemu_img(), "create", "-q", "-f", "qcow2"]
    if base is not None:
        args += ["-b", str(base), "-F", base_format]
    args.append(str(disk))
    if base is None:
        args.append(str(max(size_gb, 1) * GiB))
    await run(*args)
    if base is not None and size_gb > 0:
        await grow(disk, size_gb)


async def grow(disk: Path, size_gb: int) -> None:
    """Grow a disk to size_gb GiB (never shrinks it)."""
    current = int((await info(disk)).get("virtual-size", 0))
    if size_gb * GiB > current:
        await run(qemu_img(), "resize", "-q", "-f", "qcow2", str(disk), str(size_gb * GiB))


def backing_file(disk: Path) -> str | None:
    """A qcow2 file's backing file name, read from its header (cheap, no qemu-img)."""
    try:
        with disk.open("rb") as fh:
            head = fh.read(20)
            if len(head) < 20 or head[:4] != b"QFI\xfb":
                return None
            offset, size = struct.unpack(">QI", head[8:20])
            if not offset or not size or size > 4096:
                return None
            fh.seek(offset)
            return fh.read(size).decode(errors="replace")
    except OSError:
        return None


def bases_in_use(instances: Path) -> set[str]:
    """Names of the bases some guest's disk (any file in a guest directory) uses."""
    used: set[str] = set()
    for guest_dir in instances.iterdir() if instances.is_dir() else ():
        if guest_dir.name.startswith((".", BASE_DIR)) or not guest_dir.is_dir():
            continue
        for disk in guest_dir.iterdir():
            name = backing_file(disk) if disk.is_file() else None
            if name:
                used.add(Path(name).name)
    return used


def clean_image_cache(instances: Path, max_age: float, now: float | None = None
                      ) -> list[str]:
    """Remove unused bases older than max_age seconds; returns the removed image ids."""
    base_dir = instances / BASE_DIR
    if not base_dir.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    used = bases_in_use(instances)
    for base in sorted(base_dir.iterdir()):
        if base.name.startswith(".") or base.name in used:
            continue
        with _locked(base_dir / f".{base.name}.lock"):
            try:
                if now - base.stat().st_mtime < max_age:
                    continue
            except FileNotFoundError:
                continue
            if base.name in bases_in_use(instances):  # a spawn used it meanwhile
                continue
            base.unlink(missing_ok=True)
        (base_dir / f".{base.name}.lock").unlink(missing_ok=True)
        removed.append(base.name)
    return removed


def genisoimage() -> str:
    for name in ("genisoimage", "mkisofs", "xorrisofs"):
        path = shutil.which(name)
        if path:
            return path
    raise DriverError("genisoimage is not installed; install it with "
                      "`apt-get install genisoimage` (needed for config drives).")


async def make_config_drive(target: Path, meta_data: dict[str, Any],
                            user_data: str | None,
                            network_data: dict[str, Any] | None = None) -> None:
    """An ISO labelled config-2 with openstack/<version>/{meta_data.json,user_data,
    network_data.json} (as Nova's: ``latest`` and the dated versions)."""
    with tempfile.TemporaryDirectory(prefix=".cfgdrive-", dir=target.parent) as tmp:
        for version in ("latest", *METADATA_VERSIONS):
            where = Path(tmp) / "openstack" / version
            where.mkdir(parents=True)
            (where / "meta_data.json").write_text(json.dumps(meta_data, sort_keys=True))
            if user_data is not None:
                (where / "user_data").write_text(user_data)
            if network_data is not None and (version == "latest"
                                             or version >= NETWORK_DATA_SINCE):
                # One key and value a line: the test guest's shell reads it with sed.
                (where / "network_data.json").write_text(
                    json.dumps(network_data, sort_keys=True, indent=1))
        part = target.with_name(f".{target.name}.part")
        try:
            await run(genisoimage(), "-quiet", "-o", str(part), "-ldots", "-allow-lowercase",
                      "-allow-multidot", "-l", "-J", "-r", "-V", "config-2", tmp)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
