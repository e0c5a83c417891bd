"""What a client asks before it acts: the extensions gureum's Block Storage API
honours, the filters each listing accepts (3.33+), and the per-project default
volume types (3.62+)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.microversion import at_least
from gureum.api.web import Request, Response, empty, json_response
from gureum.errors import NotAcceptable, NotFound
from gureum.volume import errors as e
from gureum.volume import models as m
from gureum.volume import policy, schemas, snapshots, types, volumes
from gureum.volume.api import route

UPDATED = "2023-08-31T00:00:00+00:00"
# (alias, name, description): each one's attributes and routes are implemented.
EXTENSIONS = [
    ("os-admin-actions", "AdminActions", "Enable admin actions."),
    ("backups", "Backups", "Backups support."),
    ("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
    ("capabilities", "Capabilities", "Capabilities support."),
    ("os-extended-services", "ExtendedServices", "Extended services support."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes",
     "Extended SnapshotAttributes support."),
    ("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
    ("os-vol-image-meta", "VolumeImageMetadata",
     "Show image metadata associated with the volume."),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute",
     "Expose migration_status as an attribute of a volume."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute",
     "Expose the internal project_id as an attribute of a volume."),
    ("os-volume-actions", "VolumeActions", "Enable volume actions."),
    ("os-volume-transfer", "VolumeTransfer", "Volume transfer management support."),
    ("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("qos-specs", "Qos_specs_manage", "QoS specs support."),
    ("os-quota-sets", "Quotas", "Quota management support."),
    ("os-quota-class-sets", "QuotaClasses", "Quota classes management support."),
    ("os-used-limits", "UsedLimits", "Provide data on limited resources that are being "
     "used."),
    ("os-services", "Services", "Services support."),
    ("scheduler-stats", "Scheduler_stats", "Scheduler stats support."),
    ("os-snapshot-actions", "SnapshotActions", "Enable snapshot manager actions."),
]

FILTERS = {
    "volume": sorted(set(volumes.FILTERS) - {"display_name", "created_at", "group_id"}),
    "snapshot": sorted(set(snapshots.FILTERS) - {"display_name"}),
    "transfer": ["name"],
    "attachment": ["volume_id", "instance_id", "status"],
    "pool": ["name"],
    "backup": ["name", "status", "volume_id"],
    "group": [],
    "group_snapshot": [],
    "message": [],
}


@route("GET", "/extensions")
def list_extensions(req: Request, s: Session) -> Response:
    policy.reader(req.context, "volume_extension:extensions")
    return json_response({"extensions": [
        {"alias": alias, "name": name, "description": desc, "updated": UPDATED, "links": [],
         "namespace": f"https://docs.openstack.org/volume/ext/{alias}/api/v1"}
        for alias, name, desc in EXTENSIONS]})


@route("GET", "/resource_filters")
def resource_filters(req: Request, s: Session) -> Response:
    if not at_least(req, "3.33"):
        raise NotAcceptable("Version 3.33 or later is required for resource filters.")
    policy.reader(req.context, "volume_extension:resource_filters")
    wanted = req.arg("resource")
    return json_response({"resource_filters": [
        {"resource": r, "filters": f} for r, f in FILTERS.items()
        if wanted is None or wanted == r]})


# -- default types -------------------------------------------------------------------------

def _need(req: Request) -> None:
    if not at_least(req, "3.62"):
        raise NotAcceptable("Version 3.62 or later is required for default types.")


def _view(row: m.DefaultType) -> dict[str, str]:
    return {"project_id": row.project_id, "volume_type_id": row.volume_type_id}


@route("PUT", "/default-types/{project_id}")
def set_default(req: Request, s: Session) -> Response:
    _need(req)
    ctx = policy.admin(req.context, "volume_extension:default_set_or_update")
    body = schemas.body_of(req.json(), "default_type")
    ref = body.get("volume_type")
    if not isinstance(ref, str) or not ref:
        raise e.bad_request("Missing required element 'volume_type'.", "volume_type")
    t = types.find(s, ctx, ref)
    project_id = req.path_params["project_id"]
    row = s.get(m.DefaultType, project_id)
    if row is None:
        row = m.DefaultType(project_id=project_id, volume_type_id=t.id)
        s.add(row)
    else:
        row.volume_type_id = t.id
    s.flush()
    return json_response({"default_type": _view(row)})


@route("GET", "/default-types/{project_id}")
def show_default(req: Request, s: Session) -> Response:
    _need(req)
    ctx = policy.reader(req.context, "volume_extension:default_get")
    project_id = req.path_params["project_id"]
    if not ctx.is_admin and project_id != ctx.project_id:
        raise e.policy("volume_extension:default_get")
    row = s.get(m.DefaultType, project_id)
    if row is None:
        raise NotFound(f"Default type for project {project_id} could not be found.")
    return json_response({"default_type": _view(row)})


@route("GET", "/default-types")
def list_defaults(req: Request, s: Session) -> Response:
    _need(req)
    policy.admin(req.context, "volume_extension:default_get_all")
    rows = s.scalars(select(m.DefaultType).order_by(m.DefaultType.project_id))
    return json_response({"default_types": [_view(r) for r in rows]})


@route("DELETE", "/default-types/{project_id}")
def unset_default(req: Request, s: Session) -> Response:
    _need(req)
    policy.admin(req.context, "volume_extension:default_unset")
    row = s.get(m.DefaultType, req.path_params["project_id"])
    if row is not None:
        s.delete(row)
    return empty(204)
