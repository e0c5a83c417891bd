"""The conductor ↔ compute agent protocol: one typed, versioned message per operation.

Before, the conductor sent ``driver(op="power_off", guest_id=…, timeout=…)`` with
strings, and a typo or a renamed argument surfaced as a TypeError deep in the
agent. Now every operation is a frozen dataclass (``PowerOff(guest_id, timeout,
retry_interval)``) whose fields are the driver method's arguments, registered
under the driver method's name. On the wire a call is::

    {"version": "1.0", "message": "power_off", "args": {"guest_id": …, …}}

and the agent checks it before anything runs: a major version it does not speak,
an unknown type, a missing or unknown field, or a field of the wrong type is
answered with ``BadMessage`` naming what is wrong (the caller gets a RemoteError
with status 400). A minor version only ever adds message types or optional
fields, so an agent accepts any minor of its major. Results come back as JSON
and are rebuilt into their dataclass (``PowerOffResult``, ``GuestInfo``,
``PreflightFacts``, ``VncConsole``) by the message that asked for them.

Each message also names the lane it runs in on the agent (see
``gureum/agent/service.py``): quick look-ups and controls never queue behind
guest operations, and live migrations (hours) have their own small bound.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, get_type_hints

from gureum.errors import GureumError
from gureum.virt.driver import (
    GuestInfo,
    GuestSpec,
    PowerOffResult,
    PreflightFacts,
    VncConsole,
)

VERSION = (1, 0)
VERSION_TEXT = f"{VERSION[0]}.{VERSION[1]}"

# Lanes of the agent's bounded concurrency.
CONTROL = "control"  # look-ups and controls: quick, and must not wait behind operations
OPERATION = "operation"  # guest operations: seconds to minutes (a clean shutdown waits)
LIVE_MIGRATION = "live_migration"  # minutes to hours

R = TypeVar("R")


class BadMessage(GureumError):
    """A call the agent cannot take: wrong version, unknown type, bad or unknown fields."""

    status = 400
    title = "Bad Request"


@dataclass(frozen=True)
class Message(Generic[R]):
    """Base of every message; ``R`` is what the call returns."""

    name: ClassVar[str] = ""
    lane: ClassVar[str] = OPERATION
    returns: ClassVar[type | None] = None  # a dataclass the JSON result is rebuilt into

    def envelope(self) -> dict[str, Any]:
        """What goes on the bus."""
        args = {f.name: _to_wire(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"version": VERSION_TEXT, "message": self.name, "args": args}

    def result(self, raw: Any) -> R:
        """The reply, rebuilt into its type."""
        if self.returns is not None and isinstance(raw, dict):
            return typing.cast(R, self.returns(**raw))
        return typing.cast(R, raw)


MESSAGES: dict[str, type[Message[Any]]] = {}

M = TypeVar("M", bound=type[Message[Any]])


def message(name: str, lane: str = OPERATION, returns: type | None = None
            ) -> typing.Callable[[M], M]:
    """Register a message class under ``name`` (the driver method it calls)."""
    def register(cls: M) -> M:
        if name in MESSAGES:
            raise ValueError(f"message type {name!r} is registered twice")
        cls.name, cls.lane, cls.returns = name, lane, returns
        MESSAGES[name] = cls
        return cls
    return register


# -- guest operations (each calls the VirtDriver method of the same name) ----------------

@message("spawn")
@dataclass(frozen=True)
class Spawn(Message[None]):
    spec: GuestSpec


@message("destroy")
@dataclass(frozen=True)
class Destroy(Message[None]):
    guest_id: str
    keep_disks: bool = False


@message("power_off", returns=PowerOffResult)
@dataclass(frozen=True)
class PowerOff(Message[PowerOffResult]):
    guest_id: str
    timeout: float
    retry_interval: float


@message("power_on")
@dataclass(frozen=True)
class PowerOn(Message[None]):
    spec: GuestSpec


@message("reboot")
@dataclass(frozen=True)
class Reboot(Message[None]):
    spec: GuestSpec
    hard: bool


@message("pause")
@dataclass(frozen=True)
class Pause(Message[None]):
    guest_id: str


@message("unpause")
@dataclass(frozen=True)
class Unpause(Message[None]):
    guest_id: str


@message("suspend")
@dataclass(frozen=True)
class Suspend(Message[None]):
    guest_id: str


@message("resume")
@dataclass(frozen=True)
class Resume(Message[None]):
    spec: GuestSpec


@message("snapshot")
@dataclass(frozen=True)
class Snapshot(Message[int]):
    guest_id: str
    target_path: str


@message("rescue")
@dataclass(frozen=True)
class Rescue(Message[None]):
    spec: GuestSpec
    rescue_image_path: str


@message("unrescue")
@dataclass(frozen=True)
class Unrescue(Message[None]):
    spec: GuestSpec


# -- volumes -------------------------------------------------------------------------------

@message("attach_volume")
@dataclass(frozen=True)
class AttachVolume(Message[None]):
    guest_id: str
    connection_info: dict[str, Any]
    device_name: str


@message("detach_volume")
@dataclass(frozen=True)
class DetachVolume(Message[None]):
    guest_id: str
    volume_id: str


@message("extend_volume")
@dataclass(frozen=True)
class ExtendVolume(Message[None]):
    guest_id: str
    volume_id: str
    new_size: int  # bytes


@message("swap_volume")
@dataclass(frozen=True)
class SwapVolume(Message[None]):
    guest_id: str
    old_volume_id: str
    new_connection_info: dict[str, Any]


# -- interfaces ----------------------------------------------------------------------------

@message("attach_interface")
@dataclass(frozen=True)
class AttachInterface(Message[None]):
    guest_id: str
    vif: dict[str, Any]


@message("detach_interface")
@dataclass(frozen=True)
class DetachInterface(Message[None]):
    guest_id: str
    port_id: str


# -- moving guests ---------------------------------------------------------------------

@message("preflight", lane=CONTROL, returns=PreflightFacts)
@dataclass(frozen=True)
class Preflight(Message[PreflightFacts]):
    spec: GuestSpec
    source_marker: str | None = None


@message("export_disks")
@dataclass(frozen=True)
class ExportDisks(Message[list[dict[str, Any]]]):
    guest_id: str


@message("import_disks")
@dataclass(frozen=True)
class ImportDisks(Message[None]):
    spec: GuestSpec
    disks: list[dict[str, Any]]
    source: str


@message("finish_migration")
@dataclass(frozen=True)
class FinishMigration(Message[None]):
    spec: GuestSpec
    resize_disk: bool
    power_on: bool


@message("prepare_incoming")
@dataclass(frozen=True)
class PrepareIncoming(Message[str]):
    spec: GuestSpec
    block_migration: bool


@message("abort_incoming", lane=CONTROL)
@dataclass(frozen=True)
class AbortIncoming(Message[None]):
    guest_id: str


@message("live_migrate", lane=LIVE_MIGRATION)
@dataclass(frozen=True)
class LiveMigrate(Message[dict[str, Any] | None]):
    guest_id: str
    dest_uri: str
    block_migration: bool


@message("abort_migration", lane=CONTROL)
@dataclass(frozen=True)
class AbortMigration(Message[None]):
    guest_id: str


@message("force_complete_migration", lane=CONTROL)
@dataclass(frozen=True)
class ForceCompleteMigration(Message[None]):
    guest_id: str


# -- look-ups ----------------------------------------------------------------------------

@message("guest_info", lane=CONTROL, returns=GuestInfo)
@dataclass(frozen=True)
class GetGuestInfo(Message[GuestInfo]):
    guest_id: str


@message("list_guests", lane=CONTROL)
@dataclass(frozen=True)
class ListGuests(Message[list[str]]):
    pass


@message("console_output", lane=CONTROL)
@dataclass(frozen=True)
class ConsoleOutput(Message[str]):
    guest_id: str
    tail: int | None = None


@message("get_vnc_console", lane=CONTROL, returns=VncConsole)
@dataclass(frozen=True)
class GetVncConsole(Message[VncConsole]):
    guest_id: str


@message("set_admin_password")
@dataclass(frozen=True)
class SetAdminPassword(Message[None]):
    guest_id: str
    password: str


@message("trigger_crash_dump")
@dataclass(frozen=True)
class TriggerCrashDump(Message[None]):
    guest_id: str


# -- the agent's own (not a driver method) -------------------------------------------------

@message("build")
@dataclass(frozen=True)
class Build(Message[None]):
    """Spawn and report the outcome to the conductor (``build_result``); sent as a cast."""

    spec: GuestSpec
    request_id: str
    attempt: int = 1


@message("power_state", lane=CONTROL)
@dataclass(frozen=True)
class GetPowerState(Message[int | None]):
    """The guest's power state, or None when it is not on the host."""

    guest_id: str


@message("ping", lane=CONTROL)
@dataclass(frozen=True)
class Ping(Message[dict[str, Any]]):
    pass


@message("fake_inject", lane=CONTROL)
@dataclass(frozen=True)
class FakeInject(Message[None]):
    """Test-only failure injection; refused unless [compute] fake_test_mode is on."""

    step: str
    message: str = "injected failure"
    times: int | None = 1


# -- the receiving side ----------------------------------------------------------------------

def decode(version: Any, message: Any, args: Any) -> Message[Any]:
    """Check a call as it arrives and build its message; BadMessage says what is wrong."""
    major = _major(version)
    if major != VERSION[0]:
        raise BadMessage(f"This compute agent speaks protocol {VERSION_TEXT}; a call of "
                         f"version {version!r} cannot be taken (the major versions differ).")
    cls = MESSAGES.get(message) if isinstance(message, str) else None
    if cls is None:
        raise BadMessage(f"Unknown message type {message!r} (protocol {VERSION_TEXT}).")
    if not isinstance(args, dict):
        raise BadMessage(f"The arguments of {message} must be an object.")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(args) - set(fields))
    if unknown:
        raise BadMessage(f"Unknown field{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)} in {message} (protocol {VERSION_TEXT}).")
    missing = sorted(name for name, f in fields.items() if name not in args
                     and f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
    if missing:
        raise BadMessage(f"Missing field{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} in {message}.")
    values = {name: _conform(value, hints[name], f"{message}.{name}")
              for name, value in args.items()}
    return cls(**values)


def _major(version: Any) -> int | None:
    if not isinstance(version, str):
        return None
    head, _, _ = version.partition(".")
    return int(head) if head.isdigit() else None


def _conform(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the field's type, or BadMessage naming the field."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        if len(inner) == 1:
            return _conform(value, inner[0], where)
    elif hint is GuestSpec:
        if isinstance(value, dict):
            try:
                return GuestSpec.from_dict(value)
            except TypeError as exc:
                raise BadMessage(f"{where} is not a complete guest spec: {exc}") from None
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint in (str, bool):
        if isinstance(value, hint):
            return value
    elif origin in (list, dict):
        if isinstance(value, origin):
            return value
    elif hint is Any:
        return value
    name = getattr(hint, "__name__", str(hint))
    raise BadMessage(f"{where} must be {name}, not {type(value).__name__}.")


def _to_wire(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def result_to_wire(value: Any) -> Any:
    """A driver's result as JSON (dataclasses become objects)."""
    return _to_wire(value)
