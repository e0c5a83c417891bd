"""Moving QEMU guests between hosts: the QemuDriver's resize, cold and live migration
and evacuation methods (the driver delegates them here).

Cold migration and resize (S2): the source exports the guest's files over its
transfer channel (``transfer.py``): the disk overlay, the config drive, and the
cached bases they need (``_base/<image>``: the disk's backing file, the kernel
and ramdisk). The destination fetches what it lacks, points the overlay at its
own copy of the base (``qemu-img rebase -u``: the bytes are the same) and
leaves ``instances/<uuid>/.imported``; ``finish_migration`` defines the guest
on those files (or on the shared ones: S3), grows the disk and applies the new
RAM and vCPUs. On storage both hosts see (or the same host), a resize keeps
the disk as it was before growing it (``disk.pre-resize``) and a revert
restores it: the guest comes back with its old disk, as Nova's does.

Live migration (``migration.py``): ``prepare_incoming`` defines the guest here
marked ``incoming`` (not listed), makes its empty disk for a block migration,
starts QEMU with ``-incoming defer`` and has it listen. The destination takes
the guest in as soon as QEMU says the state arrived (a watcher, and every
``list_guests``/``guest_info``): the mark goes and the NBD export stops. The
source's ``live_migrate`` ends its own QEMU once QEMU reports completion, and
returns the figures QEMU measured (the downtime among them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gureum.virt.driver import DriverError, GuestSpec, MigrationFailed
from gureum.virt.qemu import disks, domain, migration, transfer, vif
from gureum.virt.qemu.migration import MigrationOptions, Outgoing, Target
from gureum.virt.qemu.transfer import ExportedFile, TransferServer

if TYPE_CHECKING:
    from gureum.virt.qemu.domain import GuestFiles
    from gureum.virt.qemu.driver import QemuDriver

log = logging.getLogger("gureum.virt.qemu.moving")

IMPORTED = ".imported"  # in instances/<uuid>/: the files were copied here
PRE_RESIZE = "disk.pre-resize"  # the disk before a resize grew it (for a revert)
DISK_NAMES = ("disk", "disk.config")
WATCH_INTERVAL = 0.2
GiB = 1 << 30


def _plain_name(name: Any) -> str:
    """A file name from a description: no directories, nothing hidden."""
    text = str(name)
    if not text or "/" in text or text.startswith(".") or text in ("..",):
        raise MigrationFailed(f"Not a file name the migration copies: {text!r}")
    return text


class Mover:
    """One host's side of moving its guests (a QemuDriver's)."""

    def __init__(self, driver: QemuDriver, options: MigrationOptions | None = None,
                 transfer_ttl: float = 3600.0) -> None:
        self.driver = driver
        self.options = options or MigrationOptions()
        self.server = TransferServer(self.options.address, self.options.ports, transfer_ttl)
        self.outgoing: dict[str, Outgoing] = {}
        self._watcher: asyncio.Task[None] | None = None

    @property
    def host(self) -> str:
        return self.driver.host

    async def start(self) -> None:
        """At init_host: take in guests that arrived while the agent was away; drop
        the empty ones still waiting (as a fake's die with its agent; the source then
        fails its migration and keeps the guest); and stop the outgoing migrations
        nobody drives any more (the guest runs on here, never left paused half-way)."""
        for guest_id, dom in self._incoming():
            async with self.driver._lock(guest_id):
                if not await self._take_if_arrived(guest_id, dom):
                    log.warning("%s: dropping %s, still waiting for a live migration "
                                "when the agent started", self.host, guest_id)
                    await self._drop_incoming(guest_id, dom)
        for guest_id in await self.driver.list_guests():
            if self.driver._pid(guest_id) is not None:
                with contextlib.suppress(DriverError):
                    await self._stop_unattended(guest_id)

    async def _stop_unattended(self, guest_id: str) -> None:
        mon = self.driver.monitor(guest_id)
        status = (await mon.execute("query-migrate") or {}).get("status")
        jobs = [j["id"] for j in await mon.execute("query-jobs") or []
                if str(j.get("id", "")).startswith("mirror-")]
        if status not in migration.IN_PROGRESS and not jobs:
            return  # none, or completed: the guest moved and the conductor decides
        log.warning("%s: a live migration of %s was left running by the agent before "
                    "this one; cancelling it", self.host, guest_id)
        moving = Outgoing(mon, guest_id, Target("", 0), self.options, bool(jobs))
        moving.jobs = jobs
        await moving.abort()
        # Stopped by the migration itself (its last phase): it ran before.
        await moving._clean_up_failure(was_running=status in ("pre-switchover", "device"))

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self.server.close()

    # -- cold migration and resize ---------------------------------------------------------
    async def export_disks(self, guest_id: str) -> list[dict[str, Any]]:
        dom = self.driver._domain(guest_id)
        files = self.driver.files(guest_id)
        entries: list[dict[str, Any]] = []
        backing: dict[str, Any] = {}
        if files.disk.is_file():
            info = await disks.info(files.disk)
            base = info.get("backing-filename")
            if base:
                backing = {"backing": Path(base).name,
                           "backing_format": info.get("backing-filename-format", "raw")}
                entries.append(self._entry("base", Path(base), backing["backing_format"]))
            entries.append(self._entry("disk", files.disk, "qcow2", **backing,
                                       virtual_size=int(info.get("virtual-size", 0))))
        if files.config_drive.is_file():
            entries.append(self._entry("disk", files.config_drive, "raw"))
        for key in ("kernel", "initrd"):
            path = (dom.get("boot") or {}).get(key)
            if path and Path(path).is_file():
                entries.append(self._entry("base", Path(path), "raw"))
        await self.server.start()
        export = self.server.register(guest_id, [
            ExportedFile(e["name"], Path(e["path"])) for e in entries])
        channel = export.description(self.server.address, self.server.port)
        return [{**e, "channel": channel, "marker": self.driver.marker} for e in entries]

    def _entry(self, kind: str, path: Path, fmt: str, **more: Any) -> dict[str, Any]:
        name = path.name if kind == "disk" else f"{disks.BASE_DIR}/{path.name}"
        return {"path": str(path), "name": name, "kind": kind, "size": path.stat().st_size,
                "format": fmt, **more}

    async def import_disks(self, spec: GuestSpec, descriptions: list[dict[str, Any]],
                           source: str) -> None:
        files = self.driver.files(spec.id)
        async with self.driver._lock(spec.id):
            existing = domain.load(files)
            if existing is not None and not existing.get("incoming"):
                raise MigrationFailed(f"Guest {spec.id} is defined on {self.host}; its disks "
                                      "are not copied over it.")
            marker = next((d["marker"] for d in descriptions if d.get("marker")), None)
            if marker and await self.driver.check_shared_storage(str(marker)):
                return  # the source's instances directory is this one: nothing to copy
            made = not files.data.exists()
            fetched: list[Path] = []
            try:
                files.data.mkdir(parents=True, exist_ok=True)
                for d in descriptions:
                    await self._fetch(spec.id, files, d, fetched)
                await self._rebase(files, descriptions)
                (files.data / IMPORTED).write_text(f"copied from {source}\n")
            except BaseException as exc:
                if made:
                    shutil.rmtree(files.data, ignore_errors=True)
                else:
                    for path in fetched:
                        path.unlink(missing_ok=True)
                if isinstance(exc, MigrationFailed):
                    raise
                if isinstance(exc, DriverError | OSError):
                    raise MigrationFailed(f"Copying the disks of {spec.id} from {source} to "
                                          f"{self.host} failed: {exc}") from exc
                raise
        for channel in {json_key(d["channel"]): d["channel"] for d in descriptions
                        if d.get("channel")}.values():
            await transfer.done(channel)

    async def _fetch(self, guest_id: str, files: GuestFiles, d: dict[str, Any],
                     fetched: list[Path]) -> None:
        channel = d.get("channel")
        if not isinstance(channel, dict):
            raise MigrationFailed(f"The description of {d.get('name')!r} names no transfer "
                                  "channel.")
        if d.get("kind") == "base":
            name = _plain_name(str(d["name"]).removeprefix(f"{disks.BASE_DIR}/"))
            target = disks.base_path(self.driver.instances_dir, name)
            if target.is_file():
                os.utime(target)  # used now (the image cache cleaner looks)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
        else:
            name = _plain_name(d["name"])
            if name not in DISK_NAMES:
                raise MigrationFailed(f"{guest_id}: {name!r} is not a disk this driver uses.")
            target = files.data / name
        await transfer.fetch(channel, str(d["name"]), target, size=int(d["size"]))
        if d.get("kind") != "base":
            fetched.append(target)

    async def _rebase(self, files: GuestFiles, descriptions: list[dict[str, Any]]) -> None:
        """Point the copied overlay at this host's copy of its base (same bytes)."""
        for d in descriptions:
            if d.get("kind") == "disk" and d.get("backing") and files.disk.is_file():
                base = disks.base_path(self.driver.instances_dir,
                                       _plain_name(d["backing"]))
                await disks.run(disks.qemu_img(), "rebase", "-u", "-f", "qcow2", "-b",
                                str(base), "-F", str(d.get("backing_format") or "raw"),
                                str(files.disk))

    async def finish_migration(self, spec: GuestSpec, resize_disk: bool,
                               power_on: bool) -> None:
        d = self.driver
        files = d.files(spec.id)
        async with d._lock(spec.id):
            old = domain.load(files)
            if old is not None and old.get("incoming"):
                raise MigrationFailed(f"Guest {spec.id} is waiting for a live migration on "
                                      f"{self.host}.")
            imported = (files.data / IMPORTED).is_file()
            if not files.disk.is_file() and not imported and not spec.boots_from_volume:
                raise MigrationFailed(f"The disks of {spec.id} are not on {self.host}: they "
                                      "were neither copied nor on shared storage.")
            try:
                await d._stop_process(spec.id)  # the definition changes: a fresh start
                await d._make_disks(spec)  # none copied: fresh ones; the config drive anew
                await self._resize(spec, files, resize_disk, keep_old=not imported)
                dom = await d._define(spec, keep=old)
                if power_on:
                    await d._launch(dom)
            except (DriverError, OSError) as exc:
                raise MigrationFailed(f"Finishing the move of {spec.id} on {self.host} "
                                      f"failed: {exc}") from exc
            (files.data / IMPORTED).unlink(missing_ok=True)

    async def _resize(self, spec: GuestSpec, files: GuestFiles, resize_disk: bool,
                      keep_old: bool) -> None:
        """Grow the disk to the flavor's (resize_disk), keeping the old one where the source
        keeps none (shared storage, same host); or, for a revert to a smaller flavor, put
        that old disk back."""
        backup = files.data / PRE_RESIZE
        if not files.disk.is_file():
            return  # a guest booting from a volume: its root disk is the volume's
        size = int((await disks.info(files.disk)).get("virtual-size", 0))
        want = spec.root_gb * GiB
        if resize_disk:
            backup.unlink(missing_ok=True)
            if want > size:
                if keep_old:
                    part = backup.with_name(f".{PRE_RESIZE}.part")
                    await asyncio.get_running_loop().run_in_executor(
                        None, shutil.copyfile, files.disk, part)
                    os.replace(part, backup)
                await disks.grow(files.disk, spec.root_gb)
        elif backup.is_file() and 0 < want < size:
            old_size = int((await disks.info(backup)).get("virtual-size", 0))
            if old_size <= want:  # it is the disk this (smaller) flavor had
                os.replace(backup, files.disk)

    # -- live migration: the destination ------------------------------------------------------
    async def prepare_incoming(self, spec: GuestSpec, block_migration: bool) -> str:
        d = self.driver
        files = d.files(spec.id)
        async with d._lock(spec.id):
            old = domain.load(files)
            if old is not None and not old.get("incoming"):
                raise MigrationFailed(f"Guest {spec.id} is already defined on {self.host}.")
            if old is not None:
                await self._drop_incoming(spec.id, old)  # an earlier attempt's
            has_disk = files.disk.is_file()
            if spec.boots_from_volume and not has_disk:
                pass  # no local root disk to copy or to find: the volume is on both hosts
            elif block_migration and has_disk:
                raise MigrationFailed(f"{self.host} already has a disk for {spec.id} (a shared "
                                      "instances directory?); a block migration would copy "
                                      "over it.")
            elif not block_migration and not has_disk:
                raise MigrationFailed(f"The disk of {spec.id} is not on {self.host}: the hosts "
                                      "do not share the instances directory; a block "
                                      "migration is needed.")
            made = not files.data.exists()
            dom: dict[str, Any] = {}
            try:
                if block_migration:
                    await d._make_disks(spec)  # empty, same virtual size, on the same base
                dom = await d._define(spec, mark={"incoming": True, "made_disks": made})
                await d._launch(dom, incoming="defer")
                target = await migration.listen(d.monitor(spec.id), self.options, spec.id,
                                                _local_drives(dom) if block_migration
                                                else [])
            except BaseException as exc:
                await self._drop_incoming(spec.id, dom or {"made_disks": made})
                if isinstance(exc, MigrationFailed):
                    raise
                if isinstance(exc, DriverError | OSError):
                    raise MigrationFailed(f"Preparing {self.host} for the live migration of "
                                          f"{spec.id} failed: {exc}") from exc
                raise
        self._watch()
        return target.uri()

    async def abort_incoming(self, guest_id: str) -> None:
        files = self.driver.files(guest_id)
        async with self.driver._lock(guest_id):
            dom = domain.load(files)
            if dom is None or not dom.get("incoming"):
                return  # nothing waiting, or a guest that runs here: never touched
            if await self._take_if_arrived(guest_id, dom):
                return
            await self._drop_incoming(guest_id, dom)

    async def _drop_incoming(self, guest_id: str, dom: dict[str, Any]) -> None:
        d = self.driver
        files = d.files(guest_id)
        with contextlib.suppress(DriverError):
            await d._stop_process(guest_id)
        await asyncio.to_thread(vif.unplug_all, guest_id, dom.get("nics", []), self.host)
        shutil.rmtree(files.run, ignore_errors=True)
        if dom.get("made_disks"):
            shutil.rmtree(files.data, ignore_errors=True)

    def _incoming(self, only: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        found = []
        ids = [only] if only else sorted(p.parent.name for p in (
            self.driver.state_dir / "guests").glob("*/domain.json"))
        for guest_id in ids:
            dom = domain.load(self.driver.files(guest_id))
            if dom is not None and dom.get("incoming"):
                found.append((guest_id, dom))
        return found

    async def receive(self, only: str | None = None) -> None:
        """Take in the guests whose state has arrived (one, or every one waiting here).
        A look at every guest leaves one someone is working on (its lock held) for the
        next look; a look at one guest (a caller about to use it, never holding its
        lock) waits its turn, since the holder may be the watcher taking it in."""
        for guest_id, _dom in self._incoming(only):
            lock = self.driver._lock(guest_id)
            if lock.locked() and only is None:
                continue
            async with lock:
                for _, dom in self._incoming(guest_id):  # as it is now, after the wait
                    await self._take_if_arrived(guest_id, dom)

    async def _take_if_arrived(self, guest_id: str, dom: dict[str, Any]) -> bool:
        d = self.driver
        if d._pid(guest_id) is None:
            return False
        mon = d.monitor(guest_id)
        try:
            if not await migration.arrived(mon):
                return False
        except DriverError:
            return False
        await migration.settle(mon)
        dom.pop("incoming", None)
        dom.pop("made_disks", None)
        domain.save(d.files(guest_id), dom)
        log.info("%s: guest %s arrived by live migration", self.host, guest_id)
        return True

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_loop())

    async def _watch_loop(self) -> None:
        while self._incoming():
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                await self.receive()
            except Exception:  # the next look may do better; arrivals are also
                log.exception("%s: looking for arrived guests failed", self.host)

    # -- live migration: the source ---------------------------------------------------------------
    async def live_migrate(self, guest_id: str, dest_uri: str, block_migration: bool
                           ) -> dict[str, Any]:
        d = self.driver
        dom = d._domain(guest_id)
        if d._pid(guest_id) is None:
            raise MigrationFailed(f"Guest {guest_id} is not running on {self.host}; only a "
                                  "running guest can be live-migrated.")
        target = Target.parse(dest_uri)
        size = int(dom.get("memory_mb", 0)) << 20
        if block_migration:
            size += int(dom.get("root_gb", 0)) * GiB
        # A guest booting from a volume has no local disk to copy: memory only.
        copy_disks = block_migration and bool(_local_drives(dom))
        moving = self.outgoing[guest_id] = Outgoing(d.monitor(guest_id), guest_id, target,
                                                    self.options, copy_disks, size)
        report = d.migration_progress
        if report is not None:
            moving.progress = lambda figures: report(guest_id, figures)
        try:
            figures = await moving.run()
        except DriverError as exc:
            if isinstance(exc, MigrationFailed):
                raise
            raise MigrationFailed(f"Live migration of {guest_id} failed: {exc}") from exc
        finally:
            self.outgoing.pop(guest_id, None)
        # The guest runs on the destination: this copy goes (its disk too, unless shared).
        await d.destroy(guest_id, keep_disks=not block_migration)
        log.info("%s: guest %s live-migrated to %s (downtime %s ms)", self.host, guest_id,
                 target.host, figures.get("downtime_ms"))
        return figures

    async def abort_migration(self, guest_id: str) -> None:
        moving = self.outgoing.get(guest_id)
        if moving is not None:
            await moving.abort()

    async def force_complete_migration(self, guest_id: str) -> None:
        moving = self.outgoing.get(guest_id)
        if moving is not None:
            await moving.force_complete()


def json_key(channel: dict[str, Any]) -> str:
    return f"{channel.get('address')}:{channel.get('port')}/{channel.get('export')}"


def _local_drives(dom: dict[str, Any]) -> list[str]:
    """The disks a block migration copies: the local root disk, when the guest has one (a
    guest booting from a volume has none; volumes are never copied: both hosts reach
    them)."""
    return [str(x["id"]) for x in dom.get("disks") or [] if x.get("id") == "disk0"]
