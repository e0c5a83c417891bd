"""Volume backends by name ([volume] backend)."""

from __future__ import annotations

from gureum.config import Settings
from gureum.volume.backends.base import VolumeBackend


def backend_for(settings: Settings) -> VolumeBackend:
    from gureum.volume.backends.file import FileBackend

    return FileBackend(settings.volume_dir, settings.volume.format,
                       copy_delay=settings.volume.copy_delay)


_current: list[VolumeBackend] = []


def configure(settings: Settings) -> VolumeBackend:
    """Make the backend of these settings the one this process uses."""
    backend = backend_for(settings)
    _current[:] = [backend]
    return backend


def current_backend() -> VolumeBackend:
    """The backend this process configured (the API and the conductor do at start)."""
    if not _current:
        configure(Settings())
    return _current[0]
