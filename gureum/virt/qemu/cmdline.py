"""The QEMU command line of a guest, from its domain definition.

The domain definition (``domain.json``, see ``gureum/virt/qemu/__init__.py``)
is a JSON-able dict built from the GuestSpec by ``build_domain``; ``argv``
turns it into ``qemu-system-x86_64`` arguments. Nothing here touches the host:
both are pure functions, so a hard reboot that rebuilds the definition from the
database always gets the same command line for the same spec.
"""

from __future__ import annotations

import shlex
import uuid
from typing import Any

from gureum.virt.qemu import vif, volumes

SCHEMA = 1  # the domain.json layout version
TCG_TB_SIZE_MB = 64
QMP_SOCKET = "qmp.sock"  # relative to the guest's run directory (QEMU's cwd): see argv


def qemu_uuid(guest_id: str) -> str:
    """The guest's id as QEMU's -uuid (ids that are no UUID get a stable one made
    from them); also what identifies the guest's process in /proc."""
    try:
        return str(uuid.UUID(guest_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gureum-guest:{guest_id}"))


def drive_args(disk: dict[str, Any]) -> list[str]:
    """One disk: a -drive backend and a virtio-blk device (bootindex for the boot disk)."""
    opts = [f"file={_opt(disk['path'])}", "if=none", f"id={disk['id']}",
            f"format={disk['format']}", f"cache={disk['cache']}"]
    if disk.get("readonly"):
        opts.append("readonly=on")
    else:
        opts.append("discard=unmap")
    device = [f"virtio-blk-pci,drive={disk['id']},id=dev-{disk['id']}"]
    if disk.get("serial"):
        device.append(f"serial={disk['serial']}")
    if disk.get("bootindex") is not None:
        device.append(f"bootindex={int(disk['bootindex'])}")
    return ["-drive", ",".join(opts), "-device", ",".join(device)]


def _opt(value: str) -> str:
    """A value inside a QEMU option list: commas are doubled."""
    return str(value).replace(",", ",,")


def argv(domain: dict[str, Any], binary: str, incoming: str | None = None) -> list[str]:
    """The full command line. ``incoming``: a migration URI QEMU waits on (``-incoming``)
    instead of booting, e.g. ``exec:cat <file>`` to resume a suspended guest.

    QEMU runs with the guest's run directory as its working directory: the QMP socket
    is given relative to it, because the absolute path of a unix socket may be longer
    than the 108 bytes the kernel allows.
    """
    accel = "kvm" if domain["virt_type"] == "kvm" else "tcg"
    args = [binary,
            "-name", f"guest={_opt(domain['name'])},debug-threads=on",
            "-uuid", qemu_uuid(domain["uuid"]),
            "-machine", domain["machine"],
            # TCG's translation cache defaults to 1 GiB per guest; small guests need
            # far less, and a host runs many.
            "-accel", "kvm" if accel == "kvm" else f"tcg,tb-size={TCG_TB_SIZE_MB}",
            "-cpu", "host" if accel == "kvm" else "max",
            "-m", str(int(domain["memory_mb"])),
            "-smp", str(int(domain["vcpus"])),
            "-nodefaults", "-no-user-config",
            "-rtc", "base=utc",
            "-boot", "strict=on",
            "-vga", "std"]
    boot = domain.get("boot") or {}
    if boot.get("kernel"):
        args += ["-kernel", boot["kernel"]]
        if boot.get("initrd"):
            args += ["-initrd", boot["initrd"]]
        if boot.get("cmdline"):
            args += ["-append", boot["cmdline"]]
    for disk in domain["disks"]:
        args += drive_args(disk)
    for vol in domain.get("volumes", []):
        if vol.get("boot"):
            args += volumes.qemu_args(vol)
    args += vif.port_args()  # the NICs' root ports, before the NICs on them
    for nic in domain.get("nics", []):
        args += vif.qemu_args(nic)
    args += volumes.port_args()  # after the other devices: their addresses stay
    for vol in domain.get("volumes", []):
        if not vol.get("boot"):
            args += volumes.qemu_args(vol)
    args += ["-chardev", f"file,id=serial0,path={_opt(domain['console_log'])},append=on",
             "-serial", "chardev:serial0",
             "-qmp", f"unix:{QMP_SOCKET},server=on,wait=off"]
    vnc = domain.get("vnc")
    if vnc:
        args += ["-vnc", f"{vnc['listen']}:{int(vnc['display'])},"
                         f"websocket={int(vnc['websocket'])}"]
    else:
        args += ["-display", "none"]
    if incoming:
        args += ["-incoming", incoming]
    args += ["-daemonize", "-pidfile", domain["pidfile"]]
    return args


def exec_uri(command: str, path: str) -> str:
    """A QEMU ``exec:`` migration URI running ``command`` on a quoted path."""
    return f"exec:{command} {shlex.quote(path)}"
