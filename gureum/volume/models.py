"""Block Storage tables: volumes, their attachments, snapshots, types, QoS, transfers,
quotas and the volume services.

Shapes follow Cinder's database where that helps:

* a volume's status is the one users see (creating, available, in-use, …);
  its ``attach_status`` (detached, attaching, attached, detaching) is kept apart
  so an attach racing a delete is one compare-and-swap on either;
* one ``volume_attachments`` row per (volume, server) attachment, from reserve
  to detach: the attachments API (3.27+) and Compute's attach both write it;
* user metadata, image metadata (Cinder's ``volume_glance_metadata``) and admin
  metadata (``readonly``, …) are JSON columns of the volume: they are read with
  it every time and never queried on their own;
* ``provider_location`` is what the backend needs to find the volume again
  (a file name for the file backend, pool/image for a Ceph one);
* the work the conductor must do for a volume (a copy from an image, a clone)
  is named by the row's status and its source columns, so a conductor restarted
  in the middle finds it again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gureum.db.base import Base, new_uuid, utcnow

DEFAULT_TYPE_NAME = "__DEFAULT__"
# The availability zone every volume lives in (Cinder's storage_availability_zone).
ZONE = "nova"


class VolumeType(Base):
    __tablename__ = "volume_types"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    qos_specs_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class VolumeTypeProject(Base):
    """Access to a private volume type (Cinder's volume_type_projects)."""

    __tablename__ = "volume_type_projects"
    __table_args__ = (UniqueConstraint("volume_type_id", "project_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume_type_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("volume_types.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)


class DefaultType(Base):
    """A project's own default volume type (3.62+ /default-types)."""

    __tablename__ = "volume_default_types"
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    volume_type_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("volume_types.id"), index=True)


class QosSpecs(Base):
    __tablename__ = "volume_qos_specs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    consumer: Mapped[str] = mapped_column(String(16), default="back-end")
    specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GroupType(Base):
    __tablename__ = "volume_group_types"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    group_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Group(Base):
    """A generic volume group (3.13+): volumes snapshotted together."""

    __tablename__ = "volume_groups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="available")
    group_type_id: Mapped[str] = mapped_column(String(36), ForeignKey("volume_group_types.id"),
                                               index=True)
    volume_type_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    availability_zone: Mapped[str] = mapped_column(String(255), default=ZONE)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GroupSnapshot(Base):
    __tablename__ = "volume_group_snapshots"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    group_id: Mapped[str] = mapped_column(String(36), ForeignKey("volume_groups.id"),
                                          index=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    group_type_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Volume(Base):
    __tablename__ = "volumes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="creating", index=True)
    attach_status: Mapped[str] = mapped_column(String(32), default="detached")
    # What went wrong last (shown as the volume's user message).
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(255), default=ZONE)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(Boolean, default=False)
    volume_type_id: Mapped[str] = mapped_column(String(36), ForeignKey("volume_types.id"),
                                                index=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    source_volid: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    group_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    image_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    migration_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provider_location: Mapped[str | None] = mapped_column(String(255), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    image_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    admin_metadata: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Work the conductor is doing or must do for it: {"op": "extend", "new_size": 2, …}.
    task: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    launched_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)

    volume_type: Mapped[VolumeType] = relationship(lazy="joined")
    attachments: Mapped[list[VolumeAttachment]] = relationship(
        back_populates="volume", lazy="selectin",
        order_by="(VolumeAttachment.created_at, VolumeAttachment.id)")


class VolumeAttachment(Base):
    __tablename__ = "volume_attachments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"), index=True)
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    attached_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mountpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # reserved, attaching, attached, detaching
    attach_status: Mapped[str] = mapped_column(String(32), default="reserved")
    attach_mode: Mapped[str] = mapped_column(String(8), default="rw")
    connector: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    connection_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attach_time: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    detach_time: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)

    volume: Mapped[Volume] = relationship(back_populates="attachments", lazy="joined")


class Snapshot(Base):
    __tablename__ = "volume_snapshots"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"), index=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="creating", index=True)
    group_snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True,
                                                          index=True)
    progress: Mapped[str] = mapped_column(String(8), default="0%")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_location: Mapped[str | None] = mapped_column(String(255), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Backup(Base):
    """A copy of a volume's data kept apart from it (Cinder's backups; the file store)."""

    __tablename__ = "volume_backups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    volume_id: Mapped[str] = mapped_column(String(36), index=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    container: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="creating", index=True)
    is_incremental: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    fail_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    location: Mapped[str | None] = mapped_column(String(255), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    # {"op": "restore", "volume_id": …} while a restore runs.
    task: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    data_timestamp: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Transfer(Base):
    __tablename__ = "volume_transfers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    volume_id: Mapped[str] = mapped_column(String(36), ForeignKey("volumes.id"), index=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    salt: Mapped[str] = mapped_column(String(64))
    crypt_hash: Mapped[str] = mapped_column(String(255))
    no_snapshots: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Quota(Base):
    """A project's own limit (project_id set) or a quota class's (class_name set)."""

    __tablename__ = "volume_quotas"
    __table_args__ = (UniqueConstraint("project_id", "class_name", "resource"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    class_name: Mapped[str] = mapped_column(String(255), default="")
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)


class VolumeService(Base):
    """cinder-volume and cinder-scheduler as `openstack volume service list` shows them."""

    __tablename__ = "volume_services"
    __table_args__ = (UniqueConstraint("host", "binary"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(255), default=ZONE)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    # The backend's pools and capabilities, as the volume service last reported them.
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
