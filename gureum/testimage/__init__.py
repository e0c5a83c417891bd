"""A tiny bootable test guest, built here from Debian's packages.

``gureum manage build-test-image`` and the first start of a cloud on the QEMU
driver build it from what ``linux-image-amd64`` and ``busybox-static`` installed
(``/boot/vmlinuz-<ver>``, ``/lib/modules/<ver>``, ``/bin/busybox``): no download,
nothing copied into the repository.

The build (cached: a second one with the same inputs is instant) is a directory
``<output>/<kernel version>-<hash of the inputs>/`` holding

- ``vmlinuz``       the kernel (Glance: disk and container format ``aki``);
- ``initramfs.gz``  a gzip'd cpio (newc) with busybox, the kernel modules the guest
                    needs (insmod'ed in dependency order: virtio, ext4, isofs, ACPI
                    button, evdev) and ``/init`` (``init.sh``
                    beside this file) (Glance: ``ari``);
- ``disk.qcow2``    a 64 MiB disk with an empty ext4 file system labelled
                    ``gureum-data`` (Glance: ``qcow2``/``bare``);
- ``manifest.json`` what was built from what.

Registered in a cloud (``--register``, or the first start on the QEMU driver) as
Glance does it for a kernel/ramdisk ("uec") image: public images ``cirros-kernel``
(aki), ``cirros-ramdisk`` (ari) and ``cirros`` (qcow2), the last with the
properties ``kernel_id``, ``ramdisk_id`` and ``os_command_line`` (``console=tty0
console=ttyS0 quiet``). A driver boots it as ``-kernel <kernel> -initrd <ramdisk> -append
<os_command_line> -drive file=<disk>,if=virtio``; the serial console is ttyS0, and
the init's lines are on the screen (tty0, the VNC console) too.

Kernel arguments the guest reads:

- ``gureum.ignore_acpi=1``  do not power off on the ACPI power button (a guest whose
                            clean stop must time out);
- ``gureum.dhcp=0``         do not ask for a DHCP lease on the NICs;
- ``gureum.trace_modules=1`` print the uptime after each module loads;
- ``gureum.ping=<address>[,<address>…]`` ping these every 2 seconds (a line
                            ``gureum.ping=<address>`` in the user data does the same).

What the guest prints on its serial console, in this order (one line each):

- ``ram-mb: 128``           RAM the firmware gave it, rounded up to MiB;
- ``mem-total-mb: 98``      MemTotal from /proc/meminfo;
- ``disk-mb: 64``           size of /dev/vda (0 when there is no disk);
- ``boot-count: N``         a counter kept in ``boot-count`` on the disk's file system,
                            incremented on every boot with a buffered write: a clean
                            power-off (the ACPI button) keeps it, a forced one loses
                            it (``none`` without a usable disk);
- ``config-drive: /dev/vdb``, ``instance-uuid: …``, ``hostname: …`` and one
  ``user-data: <line>`` per line of user data, when an ISO 9660 config drive
  (label ``config-2``, ``openstack/latest/meta_data.json``) is attached as a
  virtio disk (not as an IDE CD-ROM: the guest has no driver for one);
- ``nic: eth0 <mac>`` per NIC, and later, when a DHCP lease comes (asking for the
  interface MTU, option 26, and classless static routes, option 121, and applying
  them): ``dhcp: eth0 <ip>/<len>``, ``GUREUM-IP eth0 <ip>/<len>`` and
  ``GUREUM-MTU eth0 <mtu>`` (the interface's MTU with the lease applied);
- ``GUREUM-NETDATA eth0 mtu 1450`` per link of the config drive's
  ``network_data.json`` (its MTU applied to the NIC with the link's MAC), then per
  network ``GUREUM-NETDATA eth0 ipv4 <ip>/<len>`` (a static IPv4 network: configured,
  with its default route) or ``GUREUM-NETDATA eth0 <type> [<ip>]`` (any other:
  ``ipv4_dhcp``, ``ipv6_slaac``…; only printed);
- ``acpi: power button powers off`` (or ``acpi: ignored …``);
- ``uptime-at-ready: 5.31`` seconds since the kernel started (``uptime-at-init``
                            earlier: when /init began);
- ``GUREUM-READY``          the guest is up;
- ``tick N`` every second, from 1; after a tick, ``GUREUM-IP6 eth0 <address>/<len>
  mtu <mtu>`` for each global IPv6 address new since (SLAAC from router
  advertisements; the interface's IPv6 MTU, an advertisement's MTU applied), and
  ``GUREUM-DISK vdb <bytes> <serial>`` for a disk plugged since (a volume: its serial
  is the volume id's first 20 characters) and ``GUREUM-DISK-GONE vdb`` for one unplugged;
  ``GUREUM-DISK-SIZE vdb <bytes>`` for one whose size changed (extended, or swapped
  for a larger volume);
- on the power button: ``acpi: power button: syncing and powering off`` then
  ``gureum-guest: powered off cleanly``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gureum.errors import GureumError

HERE = Path(__file__).resolve().parent
# Bump when the build changes in a way the hashed inputs below do not show.
BUILDER_VERSION = "1"
READY_MARKER = "GUREUM-READY"
# Kernel messages on the screen and the serial port (the last console= is
# /dev/console); the init's lines go to both anyway.
DEFAULT_COMMAND_LINE = "console=tty0 console=ttyS0 quiet"
IGNORE_ACPI_ARG = "gureum.ignore_acpi=1"
DISK_MB = 64
KERNEL_NAME = "vmlinuz"
RAMDISK_NAME = "initramfs.gz"
DISK_NAME = "disk.qcow2"
# The modules the guest loads (with what modules.dep says they need, first).
# Every disk is virtio, the config drive too (as gureum's QEMU driver attaches it): no
# IDE/SCSI CD-ROM stack, five modules fewer to load under TCG.
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4", "isofs",
           "button", "evdev")
# busybox applets linked in /bin (the init scripts use these).
APPLETS = ("sh", "ash", "mount", "umount", "insmod", "cat", "echo", "sed", "grep", "head", "tr",
           "tee", "tail", "wc", "dd", "sleep", "usleep", "mkdir", "ls", "findfs", "hostname", "ip",
           "udhcpc", "acpid", "sync", "poweroff", "reboot", "mke2fs", "dmesg", "uname", "ifconfig",
           "route", "ps", "kill", "df", "free", "blockdev", "lsmod", "rmmod", "modprobe", "sysctl",
           "date", "cut", "awk", "test", "[", "true", "false", "stat", "ping")
PACKAGES = "qemu-utils linux-image-amd64 busybox-static"


class TestImageError(GureumError):
    """The test guest cannot be built here (a missing package, a failing tool)."""

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class Sources:
    """What a build reads: one kernel, its modules, a static busybox."""

    kernel: Path
    modules_dir: Path
    busybox: Path

    @property
    def kernel_version(self) -> str:
        return self.modules_dir.name


@dataclass(frozen=True)
class GuestImage:
    """A built test guest: its three files and how to boot them."""

    directory: Path
    kernel_version: str

    @property
    def key(self) -> str:
        """Kernel version and inputs hash: the build's name (the image property
        ``gureum_test_guest`` of a registered one)."""
        return self.directory.name

    @property
    def kernel(self) -> Path:
        return self.directory / KERNEL_NAME

    @property
    def ramdisk(self) -> Path:
        return self.directory / RAMDISK_NAME

    @property
    def disk(self) -> Path:
        return self.directory / DISK_NAME

    def qemu_args(self, disk: Path | None = None, command_line: str = DEFAULT_COMMAND_LINE
                  ) -> list[str]:
        """The QEMU options that boot it (the disk: this image's, or a copy of it)."""
        return ["-kernel", str(self.kernel), "-initrd", str(self.ramdisk),
                "-append", command_line,
                "-drive", f"file={disk or self.disk},if=virtio,format=qcow2"]


def find_sources(boot: Path = Path("/boot"), modules_root: Path = Path("/lib/modules"),
                 busybox: Path | None = None) -> Sources:
    """The newest installed kernel that has its modules, and busybox-static."""
    candidates = []
    for kernel in boot.glob("vmlinuz-*"):
        version = kernel.name[len("vmlinuz-"):]
        if (modules_root / version / "modules.dep").is_file():
            candidates.append((_version_key(version), kernel, modules_root / version))
    if not candidates:
        raise TestImageError(
            f"no kernel with its modules in {boot} and {modules_root}; install the "
            f"packages it needs: apt-get install {PACKAGES}")
    _, kernel, modules_dir = max(candidates)
    if not os.access(kernel, os.R_OK):
        raise TestImageError(f"{kernel} is not readable by this user; build the test "
                             "image as root once (it is cached), or make it readable")
    found = busybox or next((p for p in (Path("/bin/busybox"), Path("/usr/bin/busybox"))
                             if p.is_file()), None)
    if found is None or not _is_static(found):
        raise TestImageError("a static busybox is needed for the test guest: "
                             "apt-get install busybox-static")
    return Sources(kernel, modules_dir, found)


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in
                 version.replace("-", ".").split("."))


def _is_static(path: Path) -> bool:
    # An ELF with no PT_INTERP program header is statically linked.
    with path.open("rb") as fh:
        head = fh.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    return all(int.from_bytes(table[i:i + 4], "little") != 3
               for i in range(0, len(table), phentsize))


def module_order(modules_dir: Path, wanted: Iterable[str] = MODULES) -> list[str]:
    """Paths (relative to ``modules_dir``) of the wanted modules and everything they
    need, each after its dependencies: what ``insmod`` must be given, in order."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[path] = rest.split()
        by_name[_module_name(path)] = path
    order: list[str] = []
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        # modules.dep lists the full closure, the deepest last.
        for dep in reversed(deps.get(path, [])):
            visit(dep)
        order.append(path)

    for name in wanted:
        found = by_name.get(name.replace("-", "_"))
        if found is None:
            builtin = modules_dir / "modules.builtin"
            if builtin.is_file() and any(_module_name(p) == name
                                         for p in builtin.read_text().split()):
                continue
            raise TestImageError(f"kernel module {name} is neither in {modules_dir} "
                                 "nor built in")
        visit(found)
    return order


def _module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if path.name.endswith(".ko.zst"):
        if shutil.which("zstd") is None:
            raise TestImageError(f"{path} is zstd-compressed: apt-get install zstd")
        return subprocess.run(["zstd", "-dc", str(path)], check=True,
                              capture_output=True).stdout
    return data


class Cpio:
    """A cpio archive in the "newc" format the kernel unpacks as an initramfs."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
               ) -> None:
        encoded = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(encoded), 0)
        self.ino += 1
        self.buf.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        self._pad()
        self.buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def initramfs(sources: Sources) -> bytes:
    """The guest's initramfs: busybox, the modules in load order, /init and its hooks."""
    archive = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "etc", "etc/acpi", "etc/acpi/PWRF",
              "lib", "lib/modules", "data", "config", "tmp", "var", "var/log", "root"):
        archive.directory(d)
    archive.char_device("dev/console", 5, 1)
    archive.char_device("dev/ttyS0", 4, 64)
    archive.file("bin/busybox", sources.busybox.read_bytes(), 0o755)
    for applet in APPLETS:
        archive.symlink(f"bin/{applet}", "busybox")
    archive.symlink("sbin/init", "/init")
    order = module_order(sources.modules_dir)
    names = []
    for path in order:
        name = _module_name(path)
        names.append(name)
        archive.file(f"lib/modules/{name}.ko", _module_bytes(sources.modules_dir / path))
    archive.file("etc/modules-order", ("\n".join(names) + "\n").encode())
    archive.file("init", (HERE / "init.sh").read_bytes(), 0o755)
    archive.file("etc/acpi/PWRF/00000080", (HERE / "power-button.sh").read_bytes(), 0o755)
    archive.file("etc/udhcpc.script", (HERE / "udhcpc.sh").read_bytes(), 0o755)
    archive.file("etc/hostname", b"gureum-guest\n")
    return gzip.compress(archive.finish(), compresslevel=6, mtime=0)


def inputs_hash(sources: Sources) -> str:
    """What decides the build's content: the scripts, this builder, the packages'
    files (named by path, size and modification time: hashing the kernel every
    start would make the cache slower than it needs to be)."""
    h = hashlib.sha256()
    h.update(f"builder {BUILDER_VERSION} disk {DISK_MB} modules {MODULES} "
             f"applets {APPLETS}\n".encode())
    h.update(Path(__file__).read_bytes())
    for script in ("init.sh", "power-button.sh", "udhcpc.sh"):
        h.update((HERE / script).read_bytes())
    for path in (sources.kernel, sources.busybox, sources.modules_dir / "modules.dep"):
        st = path.stat()
        h.update(f"{path} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None)
    if found is None:
        raise TestImageError(f"{name} is needed to build the test image: "
                             f"apt-get install {package}")
    return found


def _disk(target: Path, size_mb: int) -> None:
    """An ext4 file system on a qcow2 disk (a blank one when mke2fs is missing: the
    guest then makes the file system itself on its first boot)."""
    qemu_img = _tool("qemu-img", "qemu-utils")
    raw = target.with_suffix(".raw")
    with raw.open("wb") as fh:
        fh.truncate(size_mb << 20)
    mke2fs = shutil.which("mke2fs") or (
        "/sbin/mke2fs" if Path("/sbin/mke2fs").exists() else None)
    if mke2fs:
        # No metadata checksums (the guest needs no crc32c for them), inode tables and
        # journal written now, not by the guest's lazy-init thread under TCG.
        subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-L", "gureum-data",
                        "-O", "^metadata_csum", "-E",
                        "lazy_itable_init=0,lazy_journal_init=0", str(raw)],
                       check=True, capture_output=True)
    subprocess.run([qemu_img, "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw),
                    str(target)], check=True, capture_output=True)
    raw.unlink()


def default_output(data_dir: Path) -> Path:
    return data_dir / "test-image"


def build(output: Path, sources: Sources | None = None, out: TextIO | None = sys.stderr,
          force: bool = False) -> GuestImage:
    """Build the test guest under ``output`` (or find it there, built before)."""
    def say(line: str) -> None:
        if out is not None:
            print(line, file=out, flush=True)

    sources = sources or find_sources()
    key = f"{sources.kernel_version}-{inputs_hash(sources)}"
    image = GuestImage(output / key, sources.kernel_version)
    if not force and (image.directory / "manifest.json").is_file():
        return image
    output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=output))
    try:
        say(f"test image: kernel {sources.kernel} ({sources.kernel_version})")
        shutil.copyfile(sources.kernel, work / KERNEL_NAME)
        say(f"test image: initramfs from {sources.busybox} and "
            f"{len(module_order(sources.modules_dir))} kernel modules")
        (work / RAMDISK_NAME).write_bytes(initramfs(sources))
        say(f"test image: {DISK_MB} MiB ext4 disk")
        try:
            _disk(work / DISK_NAME, DISK_MB)
        except subprocess.CalledProcessError as exc:
            raise TestImageError(f"making the test disk failed: {exc.cmd[0]}: "
                                 f"{exc.stderr.decode(errors='replace').strip()}") from None
        (work / "manifest.json").write_text(json.dumps({
            "kernel_version": sources.kernel_version, "kernel": str(sources.kernel),
            "busybox": str(sources.busybox), "modules": module_order(sources.modules_dir),
            "command_line": DEFAULT_COMMAND_LINE, "builder": BUILDER_VERSION}, indent=2))
        if force and image.directory.exists():
            shutil.rmtree(image.directory)
        try:
            work.rename(image.directory)
        except OSError:
            if not (image.directory / "manifest.json").is_file():
                raise
            # Another build of the same inputs finished first: use it.
        say(f"test image: ready in {image.directory}")
        return image
    finally:
        if work.exists():
            shutil.rmtree(work)
