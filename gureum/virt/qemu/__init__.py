"""The QEMU driver: ``qemu-system-x86_64`` guests driven over QMP.

Modules, one concern each: ``cmdline`` (QEMU's argv from a definition),
``domain`` (the guest's files, its definition ``domain.json``, VNC ports),
``disks`` (image cache, overlays, config drive, cache cleaner), ``process``
(launch, find, kill), ``monitor`` (the QMP adapter), ``vif`` (NICs),
``volumes`` (volume files as virtio disks, hot-plugged on PCIe root ports),
``driver`` (the VirtDriver).

Choices:

- Guests outlive the agent: QEMU runs ``-daemonize`` with a pid file (its own
  session, not the agent's child); a restarted agent finds it by pid file and
  ``/proc/<pid>/cmdline`` and talks to it over its QMP socket.
- Power states: a QEMU process → QMP ``query-status`` (running → RUNNING, paused
  → PAUSED, a panic → CRASHED). No process → SHUTDOWN, or SUSPENDED when
  ``suspend.state`` (the memory saved by suspend) is there. QEMU runs without
  ``-no-shutdown``, so a guest that powers itself off ends its process: the
  definition stays, the process is gone, that is SHUTDOWN.
- Clean stop (S1): QMP ``system_powerdown`` re-sent every retry interval, QMP
  ``quit`` (then SIGTERM, SIGKILL) after the timeout.
- Disk cache: ``cache=none`` (O_DIRECT: no host page cache, so another host
  sharing ``instances/`` reads what this one wrote, as live migration on shared
  storage needs). Where the instances directory refuses O_DIRECT (tmpfs) the
  driver falls back to ``cache=writeback`` and says so at start.
- Volumes: files under Block Storage's directory (which every host must reach),
  opened with ``-blockdev`` at boot or ``blockdev-add`` + ``device_add`` into a
  running guest, each on the root port of its device name so a definition
  rebuilt from the spec (hard reboot, a live migration's destination) has the
  same devices at the same addresses; never copied by a block migration.
- ``domain.json`` is per host (``<state_dir>/guests/<uuid>/``, with the QMP
  socket and pid file), not in ``instances/<uuid>/``: ``instances/`` may be
  shared between hosts, a definition belongs to one.
"""

from gureum.virt.qemu.driver import QemuDriver

__all__ = ["QemuDriver"]
