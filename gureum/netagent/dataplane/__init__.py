"""Data planes: what makes a host carry its ``HostNetState`` (see base.py)."""

from gureum.netagent.dataplane.base import DataPlane, available, make_data_plane, register

__all__ = ["DataPlane", "available", "make_data_plane", "register"]
