"""The volume backend contract: where volume data lives and how it is copied.

The API and the conductor's volume manager speak only this interface; the file
backend (``file.py``) keeps qcow2 or raw files in one directory, and a Ceph RBD
backend would keep RBD images in a pool, with nothing else changing.

Every method is given what it needs (ids, sizes, the ``location`` the backend
returned when it made the volume or snapshot) and never reads the database.
What holds after each call:

* on success, the named data exists with the stated size (``create`` and every
  ``*_from_*``/``clone`` call return the new volume's ``location``);
* on failure, they raise :class:`BackendError` with a message fit for users and
  leave no half-made volume behind (a retry starts clean);
* ``delete`` and ``delete_snapshot`` of something already gone succeed, so a
  delete interrupted by a crash can simply be run again;
* sizes are in GiB, as Cinder's.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class BackendError(Exception):
    """A backend operation failed; the message says why, for the volume's user."""


@dataclass(frozen=True)
class Pool:
    """What the scheduler and ``/scheduler-stats/get_pools`` know of a pool."""

    name: str
    total_capacity_gb: float
    free_capacity_gb: float
    provisioned_capacity_gb: float
    capabilities: dict[str, Any]


class VolumeBackend(abc.ABC):
    """One storage backend (Cinder's volume driver)."""

    #: The backend's name, as in ``host@backend#pool`` and ``volume_backend_name``.
    name: str = ""
    #: ``driver_volume_type`` of its connection info ("file", "rbd", …).
    protocol: str = ""
    vendor_name: str = "gureum"
    driver_version: str = "1.0"

    @abc.abstractmethod
    def create(self, volume_id: str, size: int) -> str:
        """An empty volume of ``size`` GiB; returns its location."""

    @abc.abstractmethod
    def delete(self, volume_id: str, location: str | None) -> None:
        """Remove the volume's data (no error if it is already gone)."""

    @abc.abstractmethod
    def extend(self, volume_id: str, location: str, new_size: int) -> None:
        """Grow the volume to ``new_size`` GiB (never shrinks)."""

    @abc.abstractmethod
    def clone(self, source_id: str, source_location: str, volume_id: str, size: int) -> str:
        """A new volume with the source's data, ``size`` GiB (at least the source's)."""

    @abc.abstractmethod
    def snapshot(self, volume_id: str, location: str, snapshot_id: str) -> str:
        """A point-in-time copy of the volume (may be in use); returns its location."""

    @abc.abstractmethod
    def delete_snapshot(self, snapshot_id: str, location: str | None) -> None:
        """Remove the snapshot's data (no error if it is already gone)."""

    @abc.abstractmethod
    def create_from_snapshot(self, snapshot_id: str, snapshot_location: str,
                             volume_id: str, size: int) -> str:
        """A new volume with the snapshot's data, ``size`` GiB."""

    @abc.abstractmethod
    def revert_to_snapshot(self, volume_id: str, location: str, snapshot_id: str,
                           snapshot_location: str) -> None:
        """The volume's data becomes the snapshot's again (same size; the volume is
        not in use)."""

    @abc.abstractmethod
    def copy_from_image(self, image_path: Path, disk_format: str, volume_id: str,
                        size: int) -> str:
        """A new volume holding the image's disk (converted from ``disk_format``)."""

    @abc.abstractmethod
    def copy_to_image(self, volume_id: str, location: str, target: Path,
                      disk_format: str) -> None:
        """Write the volume's data to the file ``target`` in ``disk_format``."""

    @abc.abstractmethod
    def connection_info(self, volume_id: str, location: str, host: str) -> dict[str, Any]:
        """What a compute host needs to plug the volume into a guest:
        ``{"driver_volume_type": …, "data": {…}}`` (Cinder's initialize_connection)."""

    @abc.abstractmethod
    def pools(self) -> list[Pool]:
        """The backend's pools with their capacity, for scheduling and get_pools."""
