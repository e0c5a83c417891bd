"""What API handlers share: settings, database, bus, identity runtime, thread pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gureum.bus import Transport
from gureum.config import Settings
from gureum.db import Database
from gureum.identity.auth import TokenService
from gureum.identity.core import Identity


@dataclass
class ApiState:
    settings: Settings
    db: Database
    bus: Transport
    identity: Identity
    tokens: TokenService
    executor: ThreadPoolExecutor
    extra: dict[str, Any] = field(default_factory=dict)
