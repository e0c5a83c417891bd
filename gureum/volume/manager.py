"""The volume manager: the storage work of Block Storage, run by the conductor.

Cinder runs this in its cinder-volume service; gureum runs it in the conductor,
the process that already takes work handed over by the API through the outbox
(``volume_work``) and that already owns long work and its recovery. The API
stays quick (a request only writes rows) and a copy of a large image never
holds an API worker; in distributed mode the conductor runs where the volume
directory (or the Ceph cluster) is reachable.

What to do is read from the row, never from the message: a volume ``creating``
is filled from its snapshot, source volume or image (or made empty); one
``deleting`` is removed with its snapshots; ``extending`` grows to
``task["new_size"]``; ``uploading`` is written into the image
``task["image_id"]``. A snapshot ``creating`` or ``deleting`` likewise. Each
step is idempotent (backends write to a temporary name and rename), so after a
crash ``recover`` simply runs again whatever is still in a transitional state;
a failure sets the error status with a message, never leaves the row stuck.

Several conductors may run (distributed mode), and each one's ``recover`` finds
the same unfinished rows: the work is leased (gureum/db/locks.py). A manager
claims a row before it starts the work, renews the lease while the work runs and
releases it once the outcome is written; a manager that cannot claim leaves the
work to its owner. Work whose owner died (its lease expired) is taken over by the
conductor's periodic look (``take_over``), so a copy runs on one conductor at a
time and a dead conductor's copy is finished by another.
The manager also keeps the cinder-scheduler and cinder-volume service rows
alive (``openstack volume service list``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gureum.bus import Transport
from gureum.config import Settings
from gureum.db import Database, compare_and_swap, locks, utcnow
from gureum.volume import models as m
from gureum.volume.backends import configure
from gureum.volume.backends.base import BackendError
from gureum.workflows.engine import SimulatedCrash

log = logging.getLogger("gureum.volume")

BACKUP_WORK = ("creating", "deleting", "restoring")
VOLUME_WORK = ("creating", "deleting", "extending", "uploading", "reverting")
SNAPSHOT_WORK = ("creating", "deleting")
GiB = 1 << 30
SCHEDULER = "cinder-scheduler"
VOLUME = "cinder-volume"
BACKUP = "cinder-backup"


class VolumeManager:
    def __init__(self, settings: Settings, db: Database, host: str,
                 bus: Transport | None = None) -> None:
        self.settings = settings
        self.db = db
        self.host = host
        self.bus = bus  # to ask a compute agent to grow an attached volume
        self._loop: asyncio.AbstractEventLoop | None = None
        self.backend = configure(settings)
        self.backend_host = f"{host}@{self.backend.name}"
        self._running: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Who holds a lease: the conductor's name, as for host operations (drain.py).
        # The bus serves one conductor per name, so a lease held under this name is
        # this conductor's or its dead predecessor's: a restart takes it up at once.
        self.owner = host
        self.lease = settings.conductor.work_lease

    # -- entry points ----------------------------------------------------------------
    async def work(self, kind: str, ident: str, request_id: str = "") -> None:
        """Start what the row's status asks for, if no other conductor has it leased
        (once per row at a time)."""
        self._loop = asyncio.get_running_loop()
        key = (kind, ident)
        if key in self._running:
            return
        self._running.add(key)
        try:
            claimed = await asyncio.to_thread(self._claim, kind, ident)
        except Exception:
            self._running.discard(key)
            raise
        if not claimed:
            self._running.discard(key)
            log.info("volume work on %s %s is leased by another conductor", kind, ident)
            return
        log.info("volume work on %s %s claimed by %s", kind, ident, self.owner)
        task = asyncio.create_task(self._work(kind, ident, request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _claim(self, kind: str, ident: str) -> bool:
        with self.db.session() as s:
            return locks.claim(s, f"volume:{kind}", ident, self.owner, self.lease)

    def _renew(self, kind: str, ident: str) -> bool:
        with self.db.session() as s:
            return locks.renew(s, f"volume:{kind}", ident, self.owner, self.lease)

    def _release(self, kind: str, ident: str) -> None:
        with self.db.session() as s:
            locks.release(s, f"volume:{kind}", ident, self.owner)

    async def _keep_lease(self, kind: str, ident: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await asyncio.to_thread(self._renew, kind, ident):
                    log.error("the lease on volume work %s %s was lost (not renewed in "
                              "time); another conductor may take it over", kind, ident)
                    return
            except Exception:  # the database may be briefly unavailable; try again
                log.exception("renewing the lease on volume work %s %s failed", kind, ident)

    async def _work(self, kind: str, ident: str, request_id: str) -> None:
        keeper = asyncio.create_task(self._keep_lease(kind, ident))
        crashed = False
        try:
            await asyncio.to_thread(self.run_once, kind, ident)
        except SimulatedCrash as crash:  # tests: the process "died" here
            crashed = True
            log.warning("%s", crash)
        except Exception:
            log.exception("volume work on %s %s failed (request %s)", kind, ident, request_id)
        finally:
            keeper.cancel()
            if not crashed:  # a dead process releases nothing: its lease runs out
                try:
                    await asyncio.to_thread(self._release, kind, ident)
                except Exception:
                    log.exception("releasing volume work %s %s failed", kind, ident)
            self._running.discard((kind, ident))

    def in_flight(self) -> list[tuple[str, str]]:
        with self.db.session(write=False) as s:
            snaps = [("snapshot", i) for i in s.scalars(select(m.Snapshot.id).where(
                m.Snapshot.status.in_(SNAPSHOT_WORK)))]
            vols = [("volume", i) for i in s.scalars(select(m.Volume.id).where(
                m.Volume.status.in_(VOLUME_WORK)))]
            backups = [("backup", i) for i in s.scalars(select(m.Backup.id).where(
                m.Backup.status.in_(BACKUP_WORK)))]
        return snaps + vols + backups

    KINDS = ("snapshot", "volume", "backup")

    def _unleased(self) -> list[tuple[str, str]]:
        """In-flight work no other conductor holds a live lease on and this manager is
        not running (a lease under this conductor's name is its predecessor's)."""
        found = self.in_flight()
        with self.db.session(write=False) as s:
            leased = {(kind, i) for kind in self.KINDS
                      for i in locks.claimed(s, f"volume:{kind}", other_than=self.owner)}
        return [w for w in found if w not in leased and w not in self._running]

    def _orphaned(self) -> list[tuple[str, str]]:
        """In-flight work whose lease expired: the conductor doing it died. (Work nobody
        ever claimed is not taken here: an operator's reset-state to "deleting" is not
        a request to delete; a restart's ``recover`` runs such work, as it always did.)"""
        with self.db.session(write=False) as s:
            stale = {kind: locks.expired(s, f"volume:{kind}") for kind in self.KINDS}
        if not any(stale.values()):
            return []
        found = set(self.in_flight())
        with self.db.session() as s:
            for kind, idents in stale.items():
                locks.forget_expired(s, f"volume:{kind}",
                                     {i for i in idents if (kind, i) not in found})
        return [(kind, i) for kind, idents in stale.items() for i in sorted(idents)
                if (kind, i) in found and (kind, i) not in self._running]

    async def recover(self) -> None:
        """Run again what a previous conductor left in a transitional state, unless a
        live conductor holds it (its lease has not expired)."""
        for kind, ident in await asyncio.to_thread(self._unleased):
            log.info("resuming the volume work on %s %s after a restart", kind, ident)
            await self.work(kind, ident)

    async def take_over(self) -> None:
        """Take up work whose conductor died: its lease expired (called periodically)."""
        for kind, ident in await asyncio.to_thread(self._orphaned):
            log.warning("taking over the volume work on %s %s (its lease expired)",
                        kind, ident)
            await self.work(kind, ident)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def report_services(self) -> None:
        """Heartbeat the scheduler and the volume service rows."""
        now = utcnow()
        try:
            caps = self.capabilities()
        except OSError as exc:  # the directory is gone: report no pools
            log.warning("volume backend %s: %s", self.backend.name, exc)
            caps = {"pools": []}
        with self.db.session() as s:
            for host, binary in ((self.host, SCHEDULER), (self.backend_host, VOLUME),
                                 (self.host, BACKUP)):
                row = s.scalar(select(m.VolumeService).where(m.VolumeService.host == host,
                                                             m.VolumeService.binary == binary))
                if row is None:
                    row = m.VolumeService(host=host, binary=binary, created_at=now)
                    s.add(row)
                row.updated_at = now
                if binary == VOLUME:
                    row.capabilities = caps

    def capabilities(self) -> dict[str, Any]:
        b = self.backend
        pools = []
        for pool in b.pools():
            pools.append({
                "name": f"{self.backend_host}#{pool.name}", "pool_name": pool.name,
                "total_capacity_gb": pool.total_capacity_gb,
                "free_capacity_gb": pool.free_capacity_gb,
                "provisioned_capacity_gb": pool.provisioned_capacity_gb,
                "allocated_capacity_gb": pool.provisioned_capacity_gb,
                "volume_backend_name": b.name, "vendor_name": b.vendor_name,
                "driver_version": b.driver_version, "storage_protocol": b.protocol,
                "timestamp": utcnow().isoformat(), **pool.capabilities})
        return {"volume_backend_name": b.name, "vendor_name": b.vendor_name,
                "driver_version": b.driver_version, "storage_protocol": b.protocol,
                "pools": pools}

    def _maybe_crash(self, op: str) -> None:
        """Crash injection for tests (``[conductor] crash_after = "volume:create"``): stop
        after the storage work and before its outcome is written, as a conductor killed
        there would."""
        targets = {t.strip() for t in self.settings.conductor.crash_after.split(",")}
        if targets & {f"volume:{op}", "volume:*"}:
            raise SimulatedCrash(f"volume manager crashed after {op} (injected)")

    # -- the work --------------------------------------------------------------------
    def run_once(self, kind: str, ident: str) -> None:
        if kind == "snapshot":
            self._snapshot_work(ident)
        elif kind == "backup":
            self._backup_work(ident)
        else:
            self._volume_work(ident)

    def _volume_work(self, volume_id: str) -> None:
        with self.db.session(write=False) as s:
            v = s.get(m.Volume, volume_id)
            if v is None or v.status not in VOLUME_WORK:
                return
            status, task = v.status, dict(v.task or {})
            row: dict[str, Any] = {"backend_name": (v.volume_type.extra_specs or {}).get(
                "volume_backend_name"), "size": v.size, "location": v.provider_location,
                   "snapshot_id": v.snapshot_id, "source_volid": v.source_volid,
                   "image_id": v.image_id}
            snaps = [(sn.id, sn.provider_location) for sn in s.scalars(
                select(m.Snapshot).where(m.Snapshot.volume_id == volume_id))]
            plugged = [(a.instance_id, a.attached_host) for a in v.attachments
                       if a.attach_status == "attached" and a.instance_id and a.attached_host]
        if status == "creating":
            self._create(volume_id, row)
        elif status == "deleting":
            self._delete(volume_id, row["location"], snaps)
        elif status == "extending":
            self._extend(volume_id, row["location"], int(task.get("new_size") or 0),
                         str(task.get("previous_status") or "available"), plugged)
        elif status == "uploading":
            self._upload(volume_id, row["location"], task)
        elif status == "reverting":
            self._revert(volume_id, row["location"], str(task.get("snapshot_id") or ""))

    def _check_capacity(self, size: int) -> None:
        """Cinder's capacity filter for thin pools: the free space times the pool's
        over-subscription ratio must hold the new volume."""
        pools = self.backend.pools()
        for pool in pools:
            ratio = float(pool.capabilities.get("max_over_subscription_ratio", 1.0))
            if pool.free_capacity_gb * ratio >= size:
                return
        raise BackendError(f"No valid backend was found. Insufficient free virtual space "
                           f"({pools[0].free_capacity_gb if pools else 0}GB free) to "
                           f"accommodate thin provisioned {size}GB volume.")

    def _disabled(self) -> bool:
        """An operator disabled the volume service (os-services): no new volumes."""
        with self.db.session(write=False) as s:
            return bool(s.scalar(select(m.VolumeService.disabled).where(
                m.VolumeService.host == self.backend_host,
                m.VolumeService.binary == VOLUME)))

    def _source(self, row: dict[str, Any]) -> tuple[str, Any]:
        """What a new volume is made from, read in its own short transaction."""
        with self.db.session(write=False) as s:
            if row["snapshot_id"]:
                snap = s.get(m.Snapshot, row["snapshot_id"])
                if snap is None or not snap.provider_location:
                    raise BackendError(f"snapshot {row['snapshot_id']} is gone")
                return "snapshot", (snap.id, snap.provider_location)
            if row["source_volid"]:
                src = s.get(m.Volume, row["source_volid"])
                if src is None or not src.provider_location:
                    raise BackendError(f"source volume {row['source_volid']} is gone")
                return "volume", (src.id, src.provider_location)
            if row["image_id"]:
                from gureum.image import models as im

                image = s.get(im.Image, row["image_id"])
                if image is None or image.status != im.ACTIVE:
                    raise BackendError(f"image {row['image_id']} is not active any more")
                return "image", (self._image_path(image.id), image.disk_format or "raw")
        return "empty", None

    def _image_path(self, image_id: str) -> Path:
        from gureum.image.store import ImageStore

        return ImageStore(self.settings.image_store_dir).path(image_id)

    def _create(self, volume_id: str, row: dict[str, Any]) -> None:
        size = int(row["size"])
        try:
            if self._disabled():
                raise BackendError("No valid backend was found. The volume service "
                                   f"{self.backend_host} is disabled.")
            wanted = row.get("backend_name")
            if wanted and wanted != self.backend.name:
                raise BackendError(f"No valid backend was found. No backend is named "
                                   f"{wanted} (the volume type's volume_backend_name).")
            self._check_capacity(size)
            kind, src = self._source(row)
            if kind == "snapshot":
                location = self.backend.create_from_snapshot(src[0], src[1], volume_id, size)
            elif kind == "volume":
                location = self.backend.clone(src[0], src[1], volume_id, size)
            elif kind == "image":
                location = self.backend.copy_from_image(src[0], src[1], volume_id, size)
            else:
                location = self.backend.create(volume_id, size)
        except (BackendError, OSError) as exc:
            log.warning("volume %s could not be created: %s", volume_id, exc)
            self._set_volume(volume_id, "creating", {"status": "error", "error": str(exc)})
            return
        self._maybe_crash("create")
        if not self._set_volume(volume_id, "creating", {
                "status": "available", "provider_location": location, "error": None,
                "host": f"{self.backend_host}#{self.backend.name}", "launched_at": utcnow()}):
            # Deleted (or reset) while we copied: the data is nobody's.
            with self.db.session(write=False) as s:
                v = s.get(m.Volume, volume_id)
                keep = v is not None and v.provider_location == location
            if not keep:
                self.backend.delete(volume_id, location)

    def _delete(self, volume_id: str, location: str | None,
                snaps: list[tuple[str, str | None]]) -> None:
        try:
            for snap_id, snap_location in snaps:
                self.backend.delete_snapshot(snap_id, snap_location)
            self.backend.delete(volume_id, location)
        except (BackendError, OSError) as exc:
            log.warning("volume %s could not be deleted: %s", volume_id, exc)
            self._set_volume(volume_id, "deleting", {"status": "error_deleting",
                                                     "error": str(exc)})
            return
        self._maybe_crash("delete")
        with self.db.session() as s:
            v = s.get(m.Volume, volume_id)
            if v is None or v.status != "deleting":
                return
            for snap in s.scalars(select(m.Snapshot).where(m.Snapshot.volume_id == volume_id)):
                s.delete(snap)
            for a in list(v.attachments):
                s.delete(a)
            for t in s.scalars(select(m.Transfer).where(m.Transfer.volume_id == volume_id)):
                s.delete(t)
            s.flush()
            s.delete(v)

    def _extend(self, volume_id: str, location: str | None, new_size: int, previous: str,
                plugged: list[tuple[str, str]]) -> None:
        """Grow the volume. An attached one (3.42+) is grown by the hypervisor that holds
        it open (a running QEMU resizes the image it has locked, and its guest sees the
        disk grow): the host's agent is asked, as Cinder has Nova do it."""
        try:
            if not location or new_size <= 0:
                raise BackendError("nothing to extend")
            if previous == "in-use" and plugged:
                for instance_id, host in plugged:
                    self._agent_extend(host, instance_id, volume_id, new_size)
            else:
                self.backend.extend(volume_id, location, new_size)
        except (BackendError, OSError) as exc:
            log.warning("volume %s could not be extended: %s", volume_id, exc)
            # An attached volume that did not grow is still attached and usable.
            failed = "error_extending" if previous == "available" else previous
            self._set_volume(volume_id, "extending", {"status": failed,
                                                      "error": str(exc), "task": {}})
            return
        self._maybe_crash("extend")
        self._set_volume(volume_id, "extending", {"status": previous, "size": new_size,
                                                  "task": {}, "error": None})

    def _agent_extend(self, host: str, instance_id: str, volume_id: str, new_size: int
                      ) -> None:
        from gureum.agent import messages as msg
        from gureum.agent import rpc as agent_rpc
        from gureum.bus import BusError, RemoteError

        if self.bus is None or self._loop is None:
            raise BackendError("no bus to reach the compute host of the attached volume")
        timeout = self.settings.compute.rpc_timeout
        call = agent_rpc.call(self.bus, host, msg.ExtendVolume(instance_id, volume_id,
                                                               new_size * GiB), timeout)
        try:
            asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout + 5)
        except RemoteError as exc:
            raise BackendError(f"host {host} could not grow the attached volume: "
                               f"{exc.remote_message}") from exc
        except (BusError, TimeoutError) as exc:
            raise BackendError(f"host {host} did not answer: {exc}") from exc

    def _upload(self, volume_id: str, location: str | None, task: dict[str, Any]) -> None:
        from gureum.volume import uploads

        back = task.get("previous_status") or "available"
        try:
            if not location:
                raise BackendError("the volume has no data")
            uploads.copy_to_image(self.settings, self.db, self.backend, volume_id, location,
                                  task)
        except (BackendError, OSError) as exc:
            log.warning("volume %s could not be uploaded: %s", volume_id, exc)
            uploads.forget_image(self.db, str(task.get("image_id") or ""))
            self._set_volume(volume_id, "uploading", {"status": back, "task": {},
                                                      "error": str(exc)})
            return
        self._maybe_crash("upload")
        self._set_volume(volume_id, "uploading", {"status": back, "task": {}})

    def _revert(self, volume_id: str, location: str | None, snapshot_id: str) -> None:
        with self.db.session(write=False) as s:
            snap = s.get(m.Snapshot, snapshot_id)
            snap_location = snap.provider_location if snap is not None else None
        try:
            if not location or not snap_location:
                raise BackendError(f"snapshot {snapshot_id} has no data")
            self.backend.revert_to_snapshot(volume_id, location, snapshot_id, snap_location)
        except (BackendError, OSError) as exc:
            log.warning("volume %s could not be reverted: %s", volume_id, exc)
            self._set_volume(volume_id, "reverting", {"status": "error", "task": {},
                                                      "error": str(exc)})
            self._set_snapshot(snapshot_id, "restoring", {"status": "available"})
            return
        self._set_volume(volume_id, "reverting", {"status": "available", "task": {},
                                                  "error": None})
        self._set_snapshot(snapshot_id, "restoring", {"status": "available"})

    def _set_volume(self, volume_id: str, expected: str, values: dict[str, Any]) -> bool:
        with self.db.session() as s:
            return compare_and_swap(s, m.Volume, volume_id, {"status": expected},
                                    {**values, "updated_at": utcnow()})

    # -- snapshots ---------------------------------------------------------------------
    def _snapshot_work(self, snapshot_id: str) -> None:
        with self.db.session(write=False) as s:
            snap = s.get(m.Snapshot, snapshot_id)
            if snap is None or snap.status not in SNAPSHOT_WORK:
                return
            status, location = snap.status, snap.provider_location
            v = s.get(m.Volume, snap.volume_id)
            vol_location = v.provider_location if v is not None else None
            volume_id = snap.volume_id
        if status == "creating":
            try:
                if not vol_location:
                    raise BackendError(f"volume {volume_id} has no data")
                location = self.backend.snapshot(volume_id, vol_location, snapshot_id)
            except (BackendError, OSError) as exc:
                log.warning("snapshot %s could not be created: %s", snapshot_id, exc)
                self._set_snapshot(snapshot_id, "creating", {"status": "error",
                                                             "error": str(exc)})
                return
            self._maybe_crash("snapshot")
            if not self._set_snapshot(snapshot_id, "creating", {
                    "status": "available", "progress": "100%",
                    "provider_location": location}):
                self.backend.delete_snapshot(snapshot_id, location)
            return
        try:
            self.backend.delete_snapshot(snapshot_id, location)
        except (BackendError, OSError) as exc:
            self._set_snapshot(snapshot_id, "deleting", {"status": "error_deleting",
                                                         "error": str(exc)})
            return
        with self.db.session() as s:
            snap = s.get(m.Snapshot, snapshot_id)
            if snap is not None and snap.status == "deleting":
                s.delete(snap)

    # -- backups -----------------------------------------------------------------------
    def _backup_work(self, backup_id: str) -> None:
        from gureum.volume import backups

        root = self.settings.volume_backup_dir
        with self.db.session(write=False) as s:
            b = s.get(m.Backup, backup_id)
            if b is None or b.status not in BACKUP_WORK:
                return
            status, task, location = b.status, dict(b.task or {}), b.location
            v = s.get(m.Volume, b.volume_id)
            vol_location = v.provider_location if v is not None else None
            snap = s.get(m.Snapshot, b.snapshot_id) if b.snapshot_id else None
            snapshot = (snap.id, snap.provider_location) \
                if snap is not None and snap.provider_location else None
            volume_id, size = b.volume_id, b.size
        if status == "creating":
            back = task.get("previous_status") or "available"
            try:
                if not vol_location:
                    raise BackendError(f"volume {volume_id} has no data")
                name = backups.write_backup(self.backend, root, backup_id, volume_id,
                                            vol_location, snapshot, size)
            except (BackendError, OSError) as exc:
                log.warning("backup %s could not be made: %s", backup_id, exc)
                self._set_backup(backup_id, "creating", {"status": "error",
                                                         "fail_reason": str(exc)})
                self._set_volume(volume_id, "backing-up", {"status": back})
                return
            self._maybe_crash("backup")
            self._set_backup(backup_id, "creating", {"status": "available", "location": name,
                                                     "data_timestamp": utcnow(), "task": {}})
            self._set_volume(volume_id, "backing-up", {"status": back})
        elif status == "deleting":
            try:
                backups.remove_backup(root, location, backup_id)
            except (BackendError, OSError) as exc:
                self._set_backup(backup_id, "deleting", {"status": "error_deleting",
                                                         "fail_reason": str(exc)})
                return
            with self.db.session() as s:
                row = s.get(m.Backup, backup_id)
                if row is not None and row.status == "deleting":
                    s.delete(row)
        else:
            self._restore(backup_id, root, location, str(task.get("volume_id") or ""))

    def _restore(self, backup_id: str, root: Path, location: str | None,
                 volume_id: str) -> None:
        from gureum.volume import backups

        with self.db.session(write=False) as s:
            v = s.get(m.Volume, volume_id)
            size = v.size if v is not None else 0
        try:
            if v is None:
                raise BackendError(f"volume {volume_id} is gone")
            path = root / (location or backups.backup_file(root, backup_id).name)
            new_location = self.backend.copy_from_image(path, "qcow2", volume_id, size)
        except (BackendError, OSError) as exc:
            log.warning("backup %s could not be restored: %s", backup_id, exc)
            self._set_volume(volume_id, "restoring-backup", {"status": "error_restoring",
                                                             "task": {}, "error": str(exc)})
            self._set_backup(backup_id, "restoring", {"status": "available", "task": {}})
            return
        self._set_volume(volume_id, "restoring-backup", {
            "status": "available", "task": {}, "provider_location": new_location,
            "host": f"{self.backend_host}#{self.backend.name}", "error": None})
        self._set_backup(backup_id, "restoring", {"status": "available", "task": {}})

    def _set_backup(self, backup_id: str, expected: str, values: dict[str, Any]) -> bool:
        with self.db.session() as s:
            return compare_and_swap(s, m.Backup, backup_id, {"status": expected},
                                    {**values, "updated_at": utcnow()})

    def _set_snapshot(self, snapshot_id: str, expected: str, values: dict[str, Any]) -> bool:
        with self.db.session() as s:
            return compare_and_swap(s, m.Snapshot, snapshot_id, {"status": expected},
                                    {**values, "updated_at": utcnow()})
