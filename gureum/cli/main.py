"""The `gureum` command: up | api | conductor | compute | network-agent | manage | host |
doctor."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from gureum import __version__
from gureum.config import Settings, load_settings
from gureum.errors import ConfigError, GureumError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML settings file")
    p.add_argument("--data-dir", metavar="DIR", help="where state lives "
                   "(default: ~/.local/share/gureum)")
    p.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL "
                   "(default: SQLite in the data directory)")
    p.add_argument("--bus-url", metavar="URL", help="memory:// or amqp://…")
    p.add_argument("--debug", action="store_true", help="log debug messages")


def _server_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bind", metavar="ADDR", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="P", help="port to listen on (default 8800)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gureum", description="An OpenStack-compatible cloud in one Python package.")
    parser.add_argument("--version", action="version", version=f"gureum {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the whole cloud in one process")
    _common(up)
    _server_opts(up)
    up.add_argument("--hosts", type=int, default=1, metavar="N",
                    help="number of compute agents, named c01, c02, … (default 1)")
    up.add_argument("--driver", choices=["auto", "fake", "qemu"],
                    help="virt driver (default auto: qemu when QEMU is installed, else fake)")

    api = sub.add_parser("api", help="run only the API server")
    _common(api)
    _server_opts(api)

    conductor = sub.add_parser("conductor", help="run only the conductor")
    _common(conductor)
    conductor.add_argument("--host", metavar="NAME", default=None,
                           help="this conductor's name (default: the machine's host name; "
                                "give each conductor on one machine its own)")

    compute = sub.add_parser("compute", help="run one compute agent")
    _common(compute)
    compute.add_argument("--host", required=True, metavar="NAME", help="this host's name")
    compute.add_argument("--driver", choices=["auto", "fake", "qemu"],
                         help="virt driver (default auto: qemu when QEMU is installed)")

    netagent = sub.add_parser("network-agent", help="run one host's network agent (L3, "
                              "DHCP and Linux bridge agents)")
    _common(netagent)
    netagent.add_argument("--host", required=True, metavar="NAME", help="this host's name")

    manage = sub.add_parser("manage", help="administrative tasks")
    msub = manage.add_subparsers(dest="manage_command", required=True, metavar="TASK")
    db = msub.add_parser("db", help="database schema")
    _common(db)
    db.add_argument("action", choices=["upgrade", "version"])
    fernet = msub.add_parser("fernet", help="token keys")
    _common(fernet)
    fernet.add_argument("action", choices=["setup", "rotate"])
    credential = msub.add_parser(
        "credential", help="credential encryption keys (Keystone's credential_setup, "
        "credential_rotate, credential_migrate)")
    _common(credential)
    credential.add_argument("action", choices=["setup", "rotate", "migrate"])
    boot = msub.add_parser("bootstrap", help="create the initial identity records")
    _common(boot)
    _server_opts(boot)
    boot.add_argument("--reset-passwords", action="store_true",
                      help="give admin and demo new passwords and rewrite clouds.yaml")
    image = msub.add_parser(
        "build-test-image", help="build the tiny test guest from Debian's kernel and busybox "
        "(cached), and with --register make it the cloud's cirros image")
    _common(image)
    image.add_argument("--output", metavar="DIR",
                       help="where builds are kept (default: <data dir>/test-image)")
    image.add_argument("--register", action="store_true",
                       help="register it in the cloud (cirros-kernel, cirros-ramdisk, cirros)")
    from gureum.cli import host

    host.add_parser(sub, _common)

    doctor = sub.add_parser(
        "doctor", help="find rows that disagree (port bindings vs servers, volume "
        "attachments vs block device mappings) and work that stopped moving (NIC "
        "operations, leases, volumes, servers' tasks, host drains) and, with --fix, "
        "repair what is safe; exit code 0 when clean, 1 when findings remain")
    _common(doctor)
    doctor.add_argument("--fix", action="store_true",
                        help="repair what can be repaired, each in its own transaction")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--stuck-after", type=float, default=600.0, metavar="SECONDS",
                        help="report work in progress for longer than this as stuck "
                        "(default 600)")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "database_url", None):
        overrides.setdefault("database", {})["url"] = args.database_url
    if getattr(args, "bus_url", None):
        overrides.setdefault("bus", {})["url"] = args.bus_url
    if getattr(args, "bind", None):
        overrides.setdefault("server", {})["bind"] = args.bind
    if getattr(args, "port", None):
        overrides.setdefault("server", {})["port"] = args.port
    if getattr(args, "driver", None):
        overrides.setdefault("compute", {})["driver"] = args.driver
    return load_settings(args.config, overrides, data_dir=args.data_dir)


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        runner = asyncio.Runner()
    with runner:
        runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.debug:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = settings_from(args)
        return dispatch(args, settings)
    except ConfigError as exc:
        print(f"gureum: configuration problem: {exc.message}", file=sys.stderr)
        return 2
    except GureumError as exc:
        print(f"gureum: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def pin_driver(settings: Settings, out: Any = sys.stderr) -> Settings:
    """Resolve ``[compute] driver = "auto"`` once, saying so when it is not QEMU."""
    import dataclasses

    from gureum.virt import auto_driver

    if settings.compute.driver != "auto":
        return settings
    driver, notice = auto_driver()
    if notice:
        print(f"gureum: {notice}", file=out, flush=True)
    return dataclasses.replace(settings, compute=dataclasses.replace(
        settings.compute, driver=driver))


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "host":  # a client of the API: none of the roles' imports
        from gureum.cli import host

        logging.getLogger("httpx").setLevel(logging.WARNING)
        return host.run(args, settings)
    from gureum.cli import roles

    if args.command in ("up", "compute"):
        settings = pin_driver(settings)
    if args.command == "up":
        if args.hosts < 0:
            raise ConfigError("--hosts must be 0 or more")
        from gureum.cloud import run_cloud

        _run(run_cloud(settings, args.hosts))
        return 0
    if args.command == "api":
        _run(roles.run_api(settings))
        return 0
    if args.command == "conductor":
        _run(roles.run_conductor(settings, args.host))
        return 0
    if args.command == "compute":
        _run(roles.run_compute(settings, args.host))
        return 0
    if args.command == "network-agent":
        _run(roles.run_network_agent(settings, args.host))
        return 0
    if args.command == "manage":
        return roles.manage(args, settings)
    if args.command == "doctor":
        from gureum.cli.doctor import doctor

        return doctor(settings, fix=args.fix, as_json=args.json,
                      stuck_after=args.stuck_after)
    raise ConfigError(f"unknown command {args.command}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
