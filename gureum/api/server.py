"""Build the API application and run it under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from gureum.api import discovery
from gureum.api.app import GureumApp
from gureum.api.state import ApiState
from gureum.bus import Transport
from gureum.compute import api as compute_api
from gureum.config import Settings
from gureum.db import Database
from gureum.identity import api as identity_api
from gureum.identity.auth import TokenAuthenticator, TokenService
from gureum.identity.core import Identity
from gureum.image import api as image_api
from gureum.network import api as network_api
from gureum.outbox import Announcer

log = logging.getLogger("gureum.api")


def build_app(settings: Settings, db: Database, bus: Transport) -> GureumApp:
    identity = Identity(settings, db)
    tokens = TokenService(identity)
    executor = ThreadPoolExecutor(max_workers=settings.server.threads,
                                  thread_name_prefix="api")
    state = ApiState(settings, db, bus, identity, tokens, executor)
    families = [
        identity_api.family(),
        image_api.family(),
        compute_api.family(),
        network_api.family(),
        discovery.volume_family(),
    ]
    app = GureumApp(state, families, TokenAuthenticator(tokens))
    # Work handed to the conductor is announced after its transaction commits.
    announcer = Announcer(bus)
    db.outbox_notifier = announcer
    app.on_startup.append(lambda: announcer.bind(asyncio.get_running_loop()))
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the caller owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_server(app: GureumApp, settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=settings.server.bind, port=settings.server.port, lifespan="on",
        log_level="warning", access_log=False, server_header=False, date_header=True,
        timeout_keep_alive=30, http="httptools", loop="none",
    )
    return _Server(config)


async def wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the API server stopped while starting")
        await asyncio.sleep(0.02)
