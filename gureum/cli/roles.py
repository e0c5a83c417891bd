"""Each role on its own (`gureum api|conductor|compute|network-agent`) and `gureum manage`
tasks."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from gureum.agent.service import ComputeAgent
from gureum.api.server import build_app, make_server, wait_started
from gureum.bus import Transport, open_transport
from gureum.conductor.service import Conductor
from gureum.config import Settings
from gureum.db import Database


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _bus(settings: Settings) -> Transport:
    return open_transport(settings.bus.url, prefix=settings.bus.prefix,
                          prefetch=settings.bus.prefetch)


async def run_api(settings: Settings) -> None:
    db = Database(settings.database_url)
    bus = _bus(settings)
    await bus.start()
    try:
        app = build_app(settings, db, bus)
        server = make_server(app, settings)
        task = asyncio.create_task(server.serve())
        try:
            await wait_started(server, task)
            print(f"gureum api listening on {settings.public_url}", file=sys.stderr,
                  flush=True)
            waiter = asyncio.create_task(_until_signal())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            server.should_exit = True
            await task
            app.shutdown()
    finally:
        await bus.stop()
        db.dispose()


async def run_conductor(settings: Settings, host: str | None = None) -> None:
    db = Database(settings.database_url)
    bus = _bus(settings)
    await bus.start()
    try:
        conductor = Conductor(settings, db, bus, name=host)
        await conductor.start()
        print("gureum conductor running", file=sys.stderr, flush=True)
        try:
            await _until_signal()
        finally:
            await conductor.stop()
    finally:
        await bus.stop()
        db.dispose()


async def run_compute(settings: Settings, host: str) -> None:
    bus = _bus(settings)
    await bus.start()
    try:
        agent = ComputeAgent(settings, bus, host)
        await agent.start()
        print(f"gureum compute agent {host} running", file=sys.stderr, flush=True)
        try:
            await _until_signal()
        finally:
            await agent.stop()
    finally:
        await bus.stop()


async def run_network_agent(settings: Settings, host: str) -> None:
    from gureum.netagent.service import NetworkAgent

    bus = _bus(settings)
    await bus.start()
    try:
        agent = NetworkAgent(settings, bus, host)
        await agent.start()
        print(f"gureum network agent {host} running ({agent.plane.name} data plane)",
              file=sys.stderr, flush=True)
        try:
            await _until_signal()
        finally:
            await agent.stop()
    finally:
        await bus.stop()


def manage(args: argparse.Namespace, settings: Settings) -> int:
    from gureum.identity.core import Identity

    db = Database(settings.database_url)
    try:
        if args.manage_command == "db":
            from gureum.db.migrate import current

            if args.action == "upgrade":
                db.upgrade()
            print(f"database schema at revision {current(db)}")
            return 0
        if args.manage_command == "build-test-image":
            return _build_test_image(args, settings, db)
        identity = Identity(settings, db)
        if args.manage_command == "fernet":
            if args.action == "setup":
                created = identity.keys.setup()
                print(f"key repository {identity.keys.path} "
                      f"{'created' if created else 'already exists'}")
            else:
                primary = identity.keys.rotate()
                print(f"rotated: key {primary} is now primary; a new staged key is ready. "
                      "Running servers pick it up on their own.")
            return 0
        if args.manage_command == "credential":
            return _credential_keys(args.action, identity)
        if args.manage_command == "bootstrap":
            return _bootstrap(args, settings, db, identity)
    finally:
        db.dispose()
    return 1


def _build_test_image(args: argparse.Namespace, settings: Settings, db: Database) -> int:
    """Build (or find cached) the test guest; with --register make it the cirros image."""
    from pathlib import Path

    from gureum import testimage

    output = Path(args.output).expanduser() if args.output else \
        testimage.default_output(settings.data_dir)
    image = testimage.build(output, out=sys.stdout)
    print(f"kernel:  {image.kernel}\nramdisk: {image.ramdisk}\ndisk:    {image.disk}\n"
          f"boot:    qemu-system-x86_64 -machine accel=tcg -m 128 -nographic "
          f"{' '.join(repr(a) if ' ' in a else a for a in image.qemu_args())}")
    if not args.register:
        return 0
    from gureum.identity.bootstrap import is_bootstrapped
    from gureum.identity.core import Identity
    from gureum.image.bootstrap import ensure_test_guest

    db.upgrade()
    if not is_bootstrapped(Identity(settings, db)):
        print("gureum: this cloud is not bootstrapped yet; start it once (gureum up) or run "
              "`gureum manage bootstrap`, then register", file=sys.stderr)
        return 1
    if not ensure_test_guest(settings, db, out=sys.stdout, replace=True, output=output):
        print("cirros is already this test guest")
    return 0


def _credential_keys(action: str, identity: object) -> int:
    """Keystone's credential_setup / credential_rotate / credential_migrate."""
    from gureum.identity import credentials
    from gureum.identity.core import Identity

    assert isinstance(identity, Identity)
    keys = identity.credential_keys
    if action == "setup":
        created = keys.setup()
        print(f"credential key repository {keys.path} "
              f"{'created' if created else 'already exists'}")
        return 0
    if action == "migrate":
        with identity.db.session() as s:
            count = credentials.migrate(keys, s)
        print(f"re-encrypted {count} credential(s) with the primary key")
        return 0
    with identity.db.session(write=False) as s:
        stale = credentials.stale_count(keys, s)
    if stale:
        print(f"gureum: {stale} credential(s) are not encrypted with the primary key; "
              "run `gureum manage credential migrate` before rotating again (the key "
              "a rotation drops may be the only one that decrypts them)", file=sys.stderr)
        return 1
    primary = keys.rotate()
    print(f"rotated: credential key {primary} is now primary. Run `gureum manage "
          "credential migrate` to re-encrypt the stored credentials with it.")
    return 0


def _bootstrap(args: argparse.Namespace, settings: Settings, db: Database,
               identity: object) -> int:
    from sqlalchemy import select

    from gureum.cloud import prepare, write_clouds_yaml
    from gureum.identity import models as m
    from gureum.identity import service
    from gureum.identity.bootstrap import new_password
    from gureum.identity.core import Identity

    assert isinstance(identity, Identity)
    prepare(settings, db)
    if not args.reset_passwords:
        print(f"bootstrapped; credentials in {settings.data_dir / 'clouds.yaml'}")
        return 0
    passwords = (new_password(), new_password())
    for name, password in zip(("admin", "demo"), passwords, strict=True):
        hashed = service.hash_password(identity, password)
        with db.session() as s:
            user_id = s.scalar(select(m.User.id).where(
                m.User.name == name, m.User.domain_id == service.DEFAULT_DOMAIN_ID))
            if user_id is None:
                print(f"user {name} does not exist; skipped", file=sys.stderr)
                continue
            service.update_user(identity, s, user_id, {"password": password}, hashed)
    clouds = settings.data_dir / "clouds.yaml"
    write_clouds_yaml(clouds, settings.public_url, settings.server.region, *passwords)
    print(f"new passwords written to {clouds}")
    return 0
