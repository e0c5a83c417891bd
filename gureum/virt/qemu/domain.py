"""A guest's files on the host, and its definition (``domain.json``).

Per host (``<state_dir>/guests/<uuid>/``, never shared): ``domain.json``,
``qmp.sock`` and ``qemu.pid``. Definitions are per host because ``instances/``
may be shared between hosts (S3) while a guest is defined on one of them (and
on two during a live migration on shared storage, each with its own QEMU).

With the disks (``<instances>/<uuid>/``, shared or not): ``disk`` (the qcow2
overlay on ``_base/<image>``), ``disk.config`` (config drive), ``disk.rescue``
(the rescue image's overlay while rescued), ``console.log`` and
``suspend.state`` (a suspended guest's memory).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gureum.virt.driver import GuestSpec
from gureum.virt.qemu import cmdline

DEFAULT_CMDLINE = "root=/dev/vda console=ttyS0"
VNC_BASE = 5900  # QEMU's display N listens on 5900 + N
WEBSOCKET_BASE = 5700  # and its websocket (noVNC) on 5700 + N, as chosen here


@dataclass(frozen=True)
class GuestFiles:
    guest_id: str
    run: Path  # per host
    data: Path  # beside the disks

    @property
    def domain(self) -> Path:
        return self.run / "domain.json"

    @property
    def qmp(self) -> Path:
        return self.run / cmdline.QMP_SOCKET

    @property
    def pidfile(self) -> Path:
        return self.run / "qemu.pid"

    @property
    def disk(self) -> Path:
        return self.data / "disk"

    @property
    def config_drive(self) -> Path:
        return self.data / "disk.config"

    @property
    def rescue_disk(self) -> Path:
        return self.data / "disk.rescue"

    @property
    def console(self) -> Path:
        return self.data / "console.log"

    @property
    def suspend_state(self) -> Path:
        return self.data / "suspend.state"


def load(files: GuestFiles) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(files.domain.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    return data


def save(files: GuestFiles, domain: dict[str, Any]) -> None:
    """Write domain.json atomically (a reader never sees half of it)."""
    files.run.mkdir(parents=True, exist_ok=True)
    tmp = files.domain.with_name(".domain.json.tmp")
    tmp.write_text(json.dumps(domain, indent=1, sort_keys=True))
    os.replace(tmp, files.domain)


def build(spec: GuestSpec, files: GuestFiles, *, virt_type: str, machine: str,
          cache: str, boot: dict[str, str | None], rescue_base: bool = False,
          vnc: dict[str, Any] | None = None,
          nics: list[dict[str, Any]] | None = None,
          volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The definition of a guest from its spec (hard reboot rebuilds it the same way).

    ``boot``: kernel, initrd and cmdline paths/text (empty: boot from the disk).
    ``nics``: the NIC entries the host's VIF drivers made for ``spec.network_info``
    (``vif.Vifs.plug_all``), in order.
    ``rescue_base``: boot ``disk.rescue`` with the guest's disk as second disk.
    ``volumes``: the entries of ``volumes.entry`` for ``spec.block_devices``; a guest
    booting from a volume has no local root disk.
    """
    vols = list(volumes or [])
    disks: list[dict[str, Any]] = []
    main = {"id": "disk0", "path": str(files.disk), "format": "qcow2", "cache": cache,
            "serial": spec.id[:20]}
    if rescue_base:
        disks.append({"id": "rescue0", "path": str(files.rescue_disk), "format": "qcow2",
                      "cache": cache, "bootindex": 1})
        disks.append({**main, "id": "disk1"})
    elif not any(v.get("boot") for v in vols):
        disks.append({**main, "bootindex": 1})
    if spec.config_drive:
        disks.append({"id": "config0", "path": str(files.config_drive), "format": "raw",
                      "cache": cache, "readonly": True})
    return {
        "schema": cmdline.SCHEMA, "uuid": spec.id, "name": spec.name,
        "hostname": spec.hostname, "virt_type": virt_type, "machine": machine,
        "vcpus": spec.vcpus, "memory_mb": spec.memory_mb, "root_gb": spec.root_gb,
        "image_id": spec.image_id, "boot": boot, "disks": disks, "nics": list(nics or []),
        "volumes": vols,
        "console_log": str(files.console), "pidfile": str(files.pidfile),
        "vnc": vnc, "rescue": rescue_base, "spec": spec.to_dict(),
    }


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_vnc(listen: str, taken: set[int], start: int = 0) -> dict[str, Any]:
    """A display whose VNC and websocket ports are both free now (QEMU binds them; a
    race with another process shows as a failed start, which is retried)."""
    for display in range(start, 200):
        if display in taken:
            continue
        if port_free(listen, VNC_BASE + display) and port_free(listen,
                                                               WEBSOCKET_BASE + display):
            return {"listen": listen, "display": display,
                    "port": VNC_BASE + display, "websocket": WEBSOCKET_BASE + display}
    raise OSError(f"no free VNC display on {listen}")
