"""Block Storage errors, worded as Cinder words them.

Cinder answers most "wrong state" requests with 400 (its ``InvalidVolume`` and
``InvalidSnapshot`` are ``Invalid`` errors), not 409; clients and tests written
against Cinder expect that, so the volume API does the same. The fault body is
Cinder's (``{"badRequest": {"code", "message"}}``), rendered by
``gureum.api.faults.compute_fault``.
"""

from __future__ import annotations

from gureum.errors import Forbidden, InvalidInput, NotFound, OverQuota

KINDS = {"volume": "Volume", "snapshot": "Snapshot", "volume_type": "Volume type",
         "qos_specs": "QoS spec", "transfer": "Transfer", "attachment": "Volume attachment",
         "backup": "Backup", "message": "Message", "host": "Host"}


def not_found(kind: str, ident: str) -> NotFound:
    if kind == "volume_type":
        return NotFound(f"Volume type with name {ident} could not be found.", kind=kind)
    if kind == "qos_specs":
        return NotFound(f"No such QoS spec {ident}.", kind=kind)
    if kind == "transfer":
        return NotFound(f"Transfer {ident} could not be found.", kind=kind)
    if kind == "attachment":
        return NotFound(f"VolumeAttachment {ident} could not be found.", kind=kind)
    return NotFound(f"{KINDS.get(kind, kind)} {ident} could not be found.", kind=kind)


def bad_request(message: str, field: str | None = None) -> InvalidInput:
    return InvalidInput(message, field)


def invalid_volume(reason: str) -> InvalidInput:
    return InvalidInput(f"Invalid volume: {reason}")


def invalid_snapshot(reason: str) -> InvalidInput:
    return InvalidInput(f"Invalid snapshot: {reason}")


def policy(rule: str) -> Forbidden:
    return Forbidden(f"Policy doesn't allow {rule} to be performed.")


def over_quota(resource: str, requested: int, quota: int, consumed: int) -> OverQuota:
    if resource == "gigabytes":
        return OverQuota("VolumeSizeExceedsAvailableQuota: Requested volume or snapshot "
                         f"exceeds allowed gigabytes quota. Requested {requested}G, quota is "
                         f"{quota}G and {consumed}G has been consumed.")
    if resource == "per_volume_gigabytes":
        return OverQuota(f"VolumeSizeExceedsLimit: Requested volume size {requested}G is "
                         f"larger than maximum allowed limit {quota}G.")
    if resource == "snapshots":
        return OverQuota(f"SnapshotLimitExceeded: Maximum number of snapshots allowed "
                         f"({quota}) exceeded")
    return OverQuota(f"VolumeLimitExceeded: Maximum number of volumes allowed ({quota}) "
                     "exceeded for quota 'volumes'.")
