"""A volume's attachments against its server's block device mappings (S12).

* an attachment (attached) naming a server that no longer exists keeps its volume
  in-use for ever: --fix detaches it as the server's delete would have (the volume
  is available again; its data is untouched);
* an attachment (attached) to a live server that has no mapping for the volume: the
  server does not know the disk, so nothing will ever detach it; reported, for the
  operator to look at (``openstack volume attachment delete`` releases it);
* a mapping (attached) whose volume is gone: the server's next start asks for a disk
  that is not there; reported, for the operator to restore the volume or take the
  disk off the server. When the server is deleted too, the mapping is a leftover of
  its delete (which removes a server's mappings): --fix removes it.

Servers with a task or a move in progress are left alone, as for ports: their
attachments and mappings are legitimately in between.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.compute.models import BlockDeviceMapping, Instance
from gureum.compute.volumes import PLUGGED
from gureum.db import Session
from gureum.doctor import Finding, Report
from gureum.doctor.ports import _moving
from gureum.volume import models as vm
from gureum.volume import service as volsvc


def _detach(volume_id: str, attachment_id: str, instance_id: str) -> Any:
    def fix(s: Session) -> bool:
        inst = s.get(Instance, instance_id)
        if inst is not None and not inst.deleted:
            return False  # the server is back (it never is, but never detach a live disk)
        a = s.get(vm.VolumeAttachment, attachment_id)
        if a is None or a.attach_status == "detached":
            return False
        volsvc.detach(s, volume_id, attachment_id)
        return True
    return fix


def _drop_mapping(mapping_id: int, instance_id: str) -> Any:
    def fix(s: Session) -> bool:
        inst = s.get(Instance, instance_id)
        if inst is not None and not inst.deleted:
            return False
        b = s.get(BlockDeviceMapping, mapping_id)
        if b is None or b.instance_id != instance_id:
            return False
        if b.volume_id and s.get(vm.Volume, b.volume_id) is not None:
            return False  # the volume is back: never drop a mapping to a real disk
        s.delete(b)
        return True
    return fix


def check(s: Session, report: Report) -> None:
    attached = list(s.scalars(select(vm.VolumeAttachment).where(
        vm.VolumeAttachment.attach_status == "attached",
        vm.VolumeAttachment.instance_id.is_not(None))
        .order_by(vm.VolumeAttachment.volume_id, vm.VolumeAttachment.id)))
    mappings = list(s.scalars(select(BlockDeviceMapping).where(
        BlockDeviceMapping.volume_id.is_not(None),
        BlockDeviceMapping.status.in_(PLUGGED)).order_by(BlockDeviceMapping.id)))
    ids = {a.instance_id for a in attached if a.instance_id} | {b.instance_id for b in mappings}
    servers = {i.id: i for i in s.scalars(select(Instance).where(
        Instance.id.in_(sorted(ids))))} if ids else {}
    mapped = {(b.instance_id, b.volume_id) for b in mappings}
    moving = _moving(s, set(servers))
    busy = {i for i, inst in servers.items() if not inst.deleted
            and (inst.task_state is not None or i in moving)}
    report.busy.extend(sorted(busy - set(report.busy)))
    report.checked_volumes += len({a.volume_id for a in attached})
    for a in attached:
        assert a.instance_id is not None
        inst = servers.get(a.instance_id)
        if inst is None or inst.deleted:
            report.findings.append(Finding(
                "attachment-orphaned", f"volume {a.volume_id}",
                f"attachment {a.id} names server {a.instance_id}, which no longer exists",
                "detach it (the volume becomes available; its data stays)",
                fix=_detach(a.volume_id, a.id, a.instance_id)))
        elif inst.id not in busy and (a.instance_id, a.volume_id) not in mapped:
            report.findings.append(Finding(
                "attachment-unmapped", f"volume {a.volume_id}",
                f"attachment {a.id} to server {a.instance_id}, which has no block device "
                "mapping for it", "not repaired: look at the server; `openstack volume "
                f"attachment delete {a.id}` releases the volume"))
    volume_ids = sorted({b.volume_id for b in mappings if b.volume_id})
    live = set(s.scalars(select(vm.Volume.id).where(vm.Volume.id.in_(volume_ids)))) \
        if volume_ids else set()
    for b in mappings:
        inst = servers.get(b.instance_id)
        if b.volume_id in live or b.instance_id in busy:
            continue
        if inst is None or inst.deleted:
            report.findings.append(Finding(
                "mapping-volume-gone", f"server {b.instance_id}",
                f"block device mapping {b.uuid} ({b.device_name or 'no device'}) names "
                f"volume {b.volume_id}, which no longer exists, and the server is deleted",
                "remove the mapping (a leftover of the server's delete)",
                fix=_drop_mapping(b.id, b.instance_id)))
        else:
            report.findings.append(Finding(
                "mapping-volume-gone", f"server {b.instance_id}",
                f"block device mapping {b.uuid} ({b.device_name or 'no device'}) names "
                f"volume {b.volume_id}, which no longer exists",
                "not repaired: restore the volume, or take the disk off the server "
                f"(openstack server remove volume {b.instance_id} {b.volume_id})"))
