"""Work that stopped moving: rows in a state that says "in progress" with nobody on it.

A process killed at the wrong moment, a host that never came back or a guest that
refuses a NIC leaves rows that say work is under way. Most of them are taken up again
by a conductor (its sweep, its restart's recovery, a lease that runs out); these checks
show the ones that have waited longer than ``stuck_after`` seconds, with their age and
what to do next:

* interface operations (``compute_interface_operations``): retried until the host
  answers or the guest lets go; reported (the conductor owns them);
* leases (``work_claims``) that ran out: released by --fix when the work they guarded
  is over; kept when it is still to do (a conductor's periodic look takes it over);
* volumes, snapshots and backups in a transitional state that no lease, outbox row or
  attachment in progress accounts for: ``attaching``/``reserved`` with no attachment
  being made goes back to available (in-use if attachments remain), ``detaching``
  with no detach in progress back to in-use; the storage states (creating, deleting,
  extending…) are reported — a conductor's restart resumes them, or an operator resets
  the state;
* servers with a task_state that no migration, outbox row or interface operation
  accounts for: reported (a conductor may be in the middle of an agent call that
  leaves no row), with the reset-state command;
* host drains and restores that are paused, or running with nobody holding them.

Nothing a live conductor holds is touched: a lease that has not run out, an outbox
row, an interface operation, a migration in progress.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select

from gureum.compute import host_operations, states
from gureum.compute.models import (
    BlockDeviceMapping,
    HostOperation,
    Instance,
    InterfaceOperation,
    Migration,
)
from gureum.db import Session, compare_and_swap, utcnow
from gureum.db.locks import WorkClaim
from gureum.doctor import Finding, Report
from gureum.outbox import OutboxMessage
from gureum.volume import models as vm
from gureum.volume.manager import BACKUP_WORK, SNAPSHOT_WORK, VOLUME_WORK
from gureum.workflows.drain import LEASE_KIND as HOST_OPERATION_LEASE

ATTACH_STATES = ("attaching", "reserved")
# Storage work the conductor's volume manager runs from the row's status.
WORK_STATES = {"volume": VOLUME_WORK, "snapshot": SNAPSHOT_WORK, "backup": BACKUP_WORK}
# (maintenance is an operator's choice, not work in progress)
OTHER_VOLUME_STATES = ("downloading", "backing-up", "restoring-backup", "retyping")


def _age(now: dt.datetime, since: dt.datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def _outbox(s: Session) -> list[dict[str, Any]]:
    """What the outbox still holds, as (method, args) dicts: work not yet taken."""
    return [dict(r.args or {}, method=r.method) for r in s.scalars(select(OutboxMessage))]


def _live_leases(s: Session, now: dt.datetime) -> set[tuple[str, str]]:
    return {(c.kind, c.ident) for c in s.scalars(select(WorkClaim))
            if c.expires_at >= now}


# -- interface operations -----------------------------------------------------------

def _interfaces(s: Session, report: Report, now: dt.datetime, after: float) -> None:
    for op in s.scalars(select(InterfaceOperation).order_by(InterfaceOperation.id)):
        age = _age(now, op.created_at)
        if age < after:
            continue
        holder = (f"held by {op.held_by or 'the API request that started it'} until "
                  f"{op.lease_until:%H:%M:%S} UTC" if op.lease_until and op.lease_until >= now
                  else "not held by anyone now (a conductor's sweep takes it up)")
        inst = s.get(Instance, op.instance_id)
        host = inst.host if inst is not None and not inst.deleted else None
        where = f" on host {host}" if host else ""
        machine = host or "the server's host"
        report.findings.append(Finding(
            "interface-operation-stuck", f"server {op.instance_id}",
            f"NIC {op.kind} of port {op.port_id}{where} has been retried since it began; "
            f"it is {holder}", "not repaired (the conductor owns it; it keeps trying until "
            f"the host answers or the guest lets the device go): check that "
            f"{machine} is up (`openstack compute service "
            f"list`) and the guest (`openstack console log show {op.instance_id}`); once "
            "they answer it finishes on its own", age=age))


# -- leases --------------------------------------------------------------------------

def _lease_work_open(s: Session, kind: str, ident: str) -> bool | None:
    """Is the work a lease guards still to do? None: a kind doctor does not know."""
    if kind.startswith("volume:") and kind[7:] in WORK_STATES:
        model: Any = {"volume": vm.Volume, "snapshot": vm.Snapshot,
                 "backup": vm.Backup}[kind[7:]]
        row = s.get(model, ident)
        return row is not None and row.status in WORK_STATES[kind[7:]]
    if kind == HOST_OPERATION_LEASE and ident.isdigit():
        op = s.get(HostOperation, int(ident))
        return op is not None and op.status in host_operations.ACTIVE
    return None


def _release_lease(kind: str, ident: str, owner: str, expires_at: dt.datetime
                   ) -> Callable[[Session], bool]:
    def fix(s: Session) -> bool:
        if _lease_work_open(s, kind, ident) is not False:
            return False
        # Only the very lease that was seen, and only while it is still run out: a
        # conductor that renewed or took it since keeps it.
        gone = s.execute(delete(WorkClaim).where(
            WorkClaim.kind == kind, WorkClaim.ident == ident, WorkClaim.owner == owner,
            WorkClaim.expires_at == expires_at, WorkClaim.expires_at < utcnow())
            .execution_options(synchronize_session=False))
        return bool(gone.rowcount)  # type: ignore[attr-defined]
    return fix


def _leases(s: Session, report: Report, now: dt.datetime, after: float) -> None:
    for c in s.scalars(select(WorkClaim).order_by(WorkClaim.kind, WorkClaim.ident)):
        if c.expires_at >= now:
            continue  # someone is on it: never touched
        age = _age(now, c.expires_at)
        if age < after:
            continue
        open_ = _lease_work_open(s, c.kind, c.ident)
        subject = f"lease {c.kind}/{c.ident}"
        if open_ is False:
            report.findings.append(Finding(
                "lease-stale", subject, f"held by {c.owner}, ran out and its work is over",
                "release it", fix=_release_lease(c.kind, c.ident, c.owner, c.expires_at),
                age=age))
        elif open_:
            report.findings.append(Finding(
                "lease-expired", subject, f"held by {c.owner}, which stopped renewing it; "
                "its work is still to do", "not repaired (a running conductor takes the "
                "work over in its periodic look): check that a conductor runs "
                "(`openstack compute service list`, `gureum conductor`)", age=age))
        else:
            report.findings.append(Finding(
                "lease-stale", subject, f"held by {c.owner}, ran out (a kind of work doctor "
                "does not know)", "not repaired: look at the work it guards", age=age))


# -- volumes and snapshots ------------------------------------------------------------

def _attach_in_progress(s: Session, v: vm.Volume, pending: list[dict[str, Any]]) -> bool:
    if any(a.attach_status in ATTACH_STATES for a in v.attachments):
        return True
    if any(p.get("volume_id") == v.id or p.get("new_volume_id") == v.id for p in pending):
        return True
    return s.scalar(select(BlockDeviceMapping.id).where(
        BlockDeviceMapping.volume_id == v.id,
        BlockDeviceMapping.status.in_(("attaching", "boot", "detaching", "swapping",
                                       "swap_target")))) is not None


def _settle_volume(volume_id: str, status: str) -> Callable[[Session], bool]:
    """attaching/reserved → available (in-use if attachments remain); detaching → in-use
    (available if none remains). A compare-and-swap from the status seen, after the
    same look the check made, in the fix's own transaction."""
    def fix(s: Session) -> bool:
        v = s.get(vm.Volume, volume_id)
        if v is None or v.status != status or _attach_in_progress(s, v, _outbox(s)):
            return False
        attached = any(a.attach_status == "attached" for a in v.attachments)
        values = ({"status": "in-use", "attach_status": "attached"} if attached else
                  {"status": "available", "attach_status": "detached"})
        return compare_and_swap(s, vm.Volume, volume_id, {"status": status},
                                {**values, "updated_at": utcnow()})
    return fix


def _volumes(s: Session, report: Report, now: dt.datetime, after: float) -> None:
    pending = _outbox(s)
    leased = _live_leases(s, now)
    queued = {(p.get("kind"), p.get("ident")) for p in pending
              if p["method"] == "volume_work"}
    watch = (*VOLUME_WORK, *ATTACH_STATES, "detaching", *OTHER_VOLUME_STATES)
    # A backup being made or restored drives its volume's backing-up/restoring-backup.
    backups = list(s.scalars(select(vm.Backup).where(vm.Backup.status.in_(BACKUP_WORK))
                             .order_by(vm.Backup.id)))
    by_backup = {b.volume_id for b in backups} | {
        str((b.task or {}).get("volume_id")) for b in backups}
    for v in s.scalars(select(vm.Volume).where(vm.Volume.status.in_(watch))
                       .order_by(vm.Volume.id)):
        age = _age(now, v.updated_at or v.created_at)
        if age < after:
            continue
        subject = f"volume {v.id}"
        if v.status in (*ATTACH_STATES, "detaching"):
            if _attach_in_progress(s, v, pending):
                continue
            back = ("in-use" if any(a.attach_status == "attached" for a in v.attachments)
                    else "available")
            # A multiattach volume takes new attachments without a change of its own
            # status, so a reset could race one: left to the operator.
            report.findings.append(Finding(
                "volume-stuck", subject, f"is {v.status} but no attach or detach is in "
                "progress for it (no attachment being made, no server mapping in between, "
                f"nothing in the outbox)", f"set it back to {back}" if not v.multiattach
                else f"not repaired (multiattach): `openstack volume set --state {back} "
                f"{v.id}` once no attach runs", fix=None if v.multiattach
                else _settle_volume(v.id, v.status), age=age))
            continue
        if ("volume:volume", v.id) in leased or ("volume", v.id) in queued:
            continue  # a conductor has it, or is about to
        if v.status in ("backing-up", "restoring-backup") and v.id in by_backup:
            continue  # its backup's row says (below)
        report.findings.append(Finding(
            "volume-stuck", subject, f"is {v.status} and no conductor holds or has been "
            "asked to do its work", "not repaired (the work may still be wanted): a "
            "conductor's restart resumes creating/deleting/extending/uploading/reverting; "
            f"to give up on it, `openstack volume set --state error {v.id}` (or available "
            "if its data is known good)", age=age))
    for snap in s.scalars(select(vm.Snapshot).where(vm.Snapshot.status.in_(SNAPSHOT_WORK))
                          .order_by(vm.Snapshot.id)):
        age = _age(now, snap.updated_at or snap.created_at)
        if age < after or ("volume:snapshot", snap.id) in leased \
                or ("snapshot", snap.id) in queued:
            continue
        report.findings.append(Finding(
            "snapshot-stuck", f"snapshot {snap.id}", f"is {snap.status} and no conductor "
            "holds or has been asked to do its work", "not repaired: a conductor's restart "
            f"resumes it; to give up, `openstack volume snapshot set --state error "
            f"{snap.id}`", age=age))
    for b in backups:
        age = _age(now, b.updated_at or b.created_at)
        if age < after or ("volume:backup", b.id) in leased or ("backup", b.id) in queued:
            continue
        report.findings.append(Finding(
            "backup-stuck", f"backup {b.id}", f"is {b.status} (volume {b.volume_id}) and "
            "no conductor holds or has been asked to do its work", "not repaired: a "
            "conductor's restart resumes it; to give up, `openstack volume backup set "
            f"--state error {b.id}`", age=age))


# -- servers ------------------------------------------------------------------------

def _servers(s: Session, report: Report, now: dt.datetime, after: float) -> None:
    busy = list(s.scalars(select(Instance).where(Instance.task_state.is_not(None),
                                                 Instance.deleted.is_(False))
                          .order_by(Instance.id)))
    if not busy:
        return
    ids = [i.id for i in busy]
    moving = set(s.scalars(select(Migration.instance_id).where(
        Migration.instance_id.in_(ids), Migration.status.not_in(states.MIGRATION_TERMINAL))))
    nics = set(s.scalars(select(InterfaceOperation.instance_id).where(
        InterfaceOperation.instance_id.in_(ids))))
    queued: set[str] = set()
    for p in _outbox(s):
        queued.update(p.get("instance_ids") or ())
        if p.get("instance_id"):
            queued.add(p["instance_id"])
    for inst in busy:
        age = _age(now, inst.updated_at)
        if age < after or inst.id in moving | nics | queued:
            continue
        report.findings.append(Finding(
            "server-task-stuck", f"server {inst.id}", f"has task_state {inst.task_state} "
            f"(vm_state {inst.vm_state}) and no migration, outbox row or NIC operation is "
            "in progress for it", "not repaired (a conductor may still be waiting on its "
            "host's agent; a conductor's restart resumes the task): if its host is up and "
            f"nothing happens, `openstack server set --state active {inst.id}` (or --state "
            "error) clears the task, then retry",
            age=age))


# -- host operations ----------------------------------------------------------------

def _host_operations(s: Session, report: Report, now: dt.datetime, after: float) -> None:
    leased = _live_leases(s, now)
    for op in s.scalars(select(HostOperation).where(
            HostOperation.status.in_((*host_operations.ACTIVE, "paused")))
            .order_by(HostOperation.id)):
        age = _age(now, op.updated_at)
        if age < after:
            continue
        again = f"gureum host {op.kind} {op.host}"
        if op.status == "paused":
            report.findings.append(Finding(
                "host-operation-paused", f"host {op.host}", f"{op.kind} {op.uuid} is "
                "paused", f"not repaired: run `{again}` to continue it"
                + (f", or `gureum host restore {op.host}` to move back what it moved"
                   if op.kind == "drain" else ""), age=age))
        elif (HOST_OPERATION_LEASE, str(op.id)) not in leased:
            report.findings.append(Finding(
                "host-operation-stuck", f"host {op.host}", f"{op.kind} {op.uuid} is "
                f"{op.status} but no conductor holds it", "not repaired: a conductor's "
                f"start takes it up; or run `{again}` again", age=age))


def check(s: Session, report: Report, stuck_after: float) -> None:
    now = utcnow()
    _interfaces(s, report, now, stuck_after)
    _leases(s, report, now, stuck_after)
    _volumes(s, report, now, stuck_after)
    _servers(s, report, now, stuck_after)
    _host_operations(s, report, now, stuck_after)
