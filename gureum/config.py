"""One settings object: a TOML file plus environment overrides, loaded once.

The settings are frozen dataclasses, one per section, whose fields say their
type and range; pydantic checks them. `load_settings` reads the file (if any),
applies ``GUREUM_<SECTION>__<KEY>`` environment variables, then explicit
overrides (command-line flags), and returns the result. A wrong type, a value
out of range or an unknown name stops the start with one line naming the
setting, where it came from, the value and what is allowed. Nothing reads
settings from a global: the object is passed explicitly.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import (
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    TypeAdapter,
    ValidationError,
)
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from gureum.errors import ConfigError

Port = Annotated[int, Field(ge=1, le=65535)]
# A per-project quota: -1 is unlimited.
Quota = Annotated[int, Field(ge=-1)]

# Every section: built only from known names, each value checked against its type.
STRICT = ConfigDict(extra="forbid")


def default_data_dir() -> Path:
    """The per-user data directory (XDG_DATA_HOME/gureum or ~/.local/share/gureum)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gureum"


@dataclass(frozen=True, config=STRICT)
class ServerSettings:
    bind: str = "127.0.0.1"
    port: Port = 8800
    # The URL clients reach this server at; derived from bind/port when empty.
    public_url: str = ""
    # Worker threads for blocking handlers (database, bcrypt, file I/O).
    threads: Annotated[int, Field(ge=1, le=1024)] = 16
    region: str = "RegionOne"
    # A client that sends no part of its request body for this long gets a 408
    # (a body shorter than its Content-Length, a stalled chunked upload).
    body_timeout: PositiveFloat = 60.0
    # The request line and headers together, at most (beyond: 431).
    max_header_bytes: Annotated[int, Field(ge=1024)] = 65536


@dataclass(frozen=True, config=STRICT)
class DatabaseSettings:
    # Empty: sqlite file in the data directory.
    url: str = ""
    echo: bool = False


@dataclass(frozen=True, config=STRICT)
class BusSettings:
    # memory:// (one process: gureum up) or amqp://user:password@host:5672/vhost (RabbitMQ:
    # each role its own process).
    url: str = "memory://"
    # AMQP queue and exchange names start with this: clouds sharing a broker (or vhost)
    # need different prefixes.
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")] = "gureum"
    # AMQP: messages a server holds while they wait for their turn (the rest wait in
    # the broker); AMQP's prefetch count is 16 bits.
    prefetch: Annotated[int, Field(ge=1, le=65535)] = 256


@dataclass(frozen=True, config=STRICT)
class IdentitySettings:
    token_expiration: PositiveInt = 3600
    # Keystone's default for bcrypt.
    password_hash_rounds: Annotated[int, Field(ge=4, le=31)] = 12
    # Keystone's [security_compliance] options. 0 disables lockout.
    lockout_failure_attempts: NonNegativeInt = 6
    lockout_duration: NonNegativeInt = 1800
    # Failed logins from one address beyond this many per window are slowed down.
    address_failure_threshold: NonNegativeInt = 5
    address_failure_window: PositiveInt = 300
    address_max_delay: NonNegativeFloat = 5.0
    max_active_keys: Annotated[int, Field(ge=1)] = 3
    # Empty: <data_dir>/fernet-keys
    key_repository: str = ""
    # The keys that encrypt credential blobs (/v3/credentials), apart from the
    # token keys as in Keystone. Empty: <data_dir>/credential-keys
    credential_key_repository: str = ""
    # How often a process checks the database for identity changes made elsewhere.
    cache_check_interval: NonNegativeFloat = 1.0


@dataclass(frozen=True, config=STRICT)
class ImageSettings:
    # Empty: <data_dir>/images
    store_dir: str = ""
    # 0 means unlimited.
    max_image_size: NonNegativeInt = 0


@dataclass(frozen=True, config=STRICT)
class ComputeSettings:
    report_interval: PositiveFloat = 10.0
    service_down_time: PositiveFloat = 60.0
    # "auto": qemu when qemu-system-x86_64 is installed (and gureum has the QEMU
    # driver), else fake; `gureum up` and `gureum compute` say which they chose.
    driver: Literal["auto", "fake", "qemu"] = "auto"
    # The QEMU driver: "qemu" (TCG, emulation: works everywhere) or "kvm" (hardware
    # acceleration; nested KVM may hang guests).
    virt_type: Literal["qemu", "kvm"] = "qemu"
    # Cached base images (instances/_base) no guest used for this many seconds are
    # removed by a cleaner that runs every image_cache_interval seconds (S14).
    image_cache_max_age: NonNegativeFloat = 86400.0
    image_cache_interval: PositiveFloat = 2400.0
    # How the QEMU driver plugs ports (virt/qemu/vif.py): "bridge" (a tap per port on
    # the network's Linux bridge: needs root), "user" (QEMU's user networking), or
    # "auto" (bridge when it can). The host reports it; its ports' bindings follow.
    vif_mechanism: Literal["auto", "bridge", "user"] = "auto"
    # Build attempts (hosts tried) before a server goes to ERROR.
    max_attempts: PositiveInt = 3
    default_availability_zone: str = "nova"
    # "spread" (most free RAM first) or "pack" (least free RAM first).
    weigher: Literal["spread", "pack"] = "spread"
    cpu_allocation_ratio: PositiveFloat = 4.0
    ram_allocation_ratio: PositiveFloat = 1.0
    disk_allocation_ratio: PositiveFloat = 1.0
    reserved_host_memory_mb: NonNegativeInt = 512
    reserved_host_disk_gb: NonNegativeInt = 0
    # Clean shutdown (S1): ACPI power-down re-sent every retry interval, forced off
    # after the timeout (the image property os_shutdown_timeout overrides it).
    shutdown_timeout: NonNegativeFloat = 60.0
    shutdown_retry_interval: PositiveFloat = 10.0
    resize_confirm_window: NonNegativeFloat = 0.0
    allow_resize_to_same_host: bool = False
    resume_guests_state_on_host_boot: bool = False
    # Per-host state (instances/, image cache); empty: <data_dir>/hosts/<host>.
    state_dir: str = ""
    # The guests' disks ("{host}" is the host's name); empty: <state_dir>/instances.
    # Hosts given one directory (NFS…) detect it with marker files and move no disks.
    instances_path: str = ""
    # The fake driver's host size and its failure/delay injection, e.g.
    # fake_failures = "c02:spawn" (spawn fails on c02), fake_delays = "spawn:0.5".
    fake_vcpus: PositiveInt = 16
    fake_memory_mb: PositiveInt = 32768
    fake_disk_gb: PositiveInt = 500
    fake_failures: str = ""
    fake_delays: str = ""
    # Delays may name a host: "c03:live_migrate:20" (migrations from c03 take 20 s).
    # Guests that ignore ACPI power-down (S1): "c02" (every guest on c02), "*:vm1"
    # (guests with hostname vm1 on any host). Hosts given one instances directory
    # (S3, detected by marker files): "c01,c02" (groups separated by ";").
    fake_ignore_acpi: str = ""
    fake_shared_storage: str = ""
    # Test-only failure injection over the bus (the agent's fake_inject); off in a cloud.
    fake_test_mode: bool = False
    # Calls an agent runs at once, per lane (look-ups and controls; guest operations);
    # more wait their turn. Live migrations have their own bound (Nova's default: 1).
    max_concurrent_calls: int = 16
    max_concurrent_live_migrations: int = 1
    # How long the API waits for an agent to answer a synchronous call.
    rpc_timeout: PositiveFloat = 60.0
    # Moving guests between hosts (the QEMU driver): the address other hosts reach this
    # one at for live migration and disk copies (Nova's live_migration_inbound_addr),
    # and the ports it listens on there, e.g. "49152-49215" (empty: ephemeral ports).
    migration_address: str = "127.0.0.1"
    migration_port_range: str = ""
    # Live migration: bandwidth in MiB/s (0: unbounded), QEMU's downtime limit in ms,
    # and seconds per GiB of memory (and disk, for block migration) before one that
    # does not finish is aborted (Nova's live_migration_completion_timeout).
    live_migration_bandwidth: NonNegativeFloat = 0.0
    live_migration_downtime: PositiveInt = 300
    live_migration_completion_timeout: PositiveFloat = 800.0


@dataclass(frozen=True, config=STRICT)
class VncSettings:
    """Graphical consoles in a browser (Nova's [vnc]): QEMU's VNC websocket behind the
    token-checked proxy the API serves at /vnc, with Debian's noVNC page."""

    # Off: no console URL is given (Nova's 400 "Unavailable console type").
    enabled: bool = True
    # The noVNC page a console URL opens (Nova's option of the same name); empty:
    # <public_url>/vnc/vnc_lite.html. The proxy's websocket is beside it (websockify).
    novncproxy_base_url: str = ""
    # How long a console URL's token can be used to connect, in seconds (Nova's
    # [consoleauth] token_ttl); a connection already open stays open.
    token_ttl: Annotated[int, Field(ge=1, le=86400)] = 600
    # Where noVNC's files are: Debian's package `novnc` installs them here.
    novnc_path: str = "/usr/share/novnc"
    # Where the QEMU driver's guests serve VNC on their compute host (Nova's option of
    # the same name). The proxy connects there: an API on another machine needs an
    # address of the compute host it can reach.
    server_listen: str = "127.0.0.1"


@dataclass(frozen=True, config=STRICT)
class ConductorSettings:
    # Failure injection for tests: stop a workflow right after a step, as if the
    # conductor process died there, e.g. "resize:power_off" or "*:transfer".
    crash_after: str = ""
    # The outbox (gureum/outbox.py): how often the conductor looks for work whose
    # hand-over message was lost, and how old such work must be to count as lost.
    outbox_sweep_interval: PositiveFloat = 1.0
    outbox_grace: NonNegativeFloat = 2.0
    # After a restart, how long a resumed workflow waits for the hosts it needs before
    # it rolls back as far as the hosts that answer allow (seconds).
    resume_host_wait: NonNegativeFloat = 60.0
    # Long storage work (a volume copy) is leased by the conductor doing it (seconds;
    # renewed every third of it while the work runs). Another conductor, or this one
    # restarted, takes unfinished work over once its owner let the lease expire.
    work_lease: PositiveFloat = 30.0


@dataclass(frozen=True, config=STRICT)
class NetworkSettings:
    """Networking (Neutron's [DEFAULT] global_physnet_mtu and [ml2] path_mtu)."""

    # The MTU of the physical network under every network: flat and VLAN networks
    # get it as it is, overlays (VXLAN, GRE, GENEVE) less their encapsulation (S7).
    physnet_mtu: Annotated[int, Field(ge=68, le=65535)] = 1500
    # The largest IP packet the underlay carries between hosts for overlays; 0: the
    # same as physnet_mtu. The smaller of the two counts, as in Neutron.
    path_mtu: Annotated[int, Field(ge=0, le=65535)] = 0
    # GENEVE's header varies with its options: the size counted for it (outer
    # Ethernet + UDP + GENEVE; Neutron's [ml2_type_geneve] max_header_size).
    geneve_max_header_size: Annotated[int, Field(ge=30, le=512)] = 30
    # The network agents (gureum/netagent): what carries routers, DHCP and ports on a
    # host. "linuxbridge" (bridges, taps, dnsmasq, router namespaces: root), "noop"
    # (nothing on the host: the fake driver), "auto" (linuxbridge when it can run).
    data_plane: Literal["auto", "linuxbridge", "noop"] = "auto"
    # How often a network agent heartbeats, and how long without one before it shows
    # dead (alive False) and its routers and networks move to a live agent (Neutron's
    # report_interval and agent_down_time).
    agent_report_interval: PositiveFloat = 10.0
    agent_down_time: PositiveFloat = 75.0
    # How often the conductor looks for routers and networks on dead agents (0: half
    # of agent_down_time, as Neutron's rescheduling loop), and how often an agent asks
    # for its state again without being told something changed.
    reschedule_interval: NonNegativeFloat = 0.0
    resync_interval: PositiveFloat = 30.0
    # How often the conductor checks the networking tables for changes made outside the
    # Networking API (Compute binding ports) to tell the agents at once.
    watch_interval: PositiveFloat = 1.0


@dataclass(frozen=True, config=STRICT)
class VolumeSettings:
    """Block Storage: where volumes live and in which format."""

    # The backend (gureum/volume/backends): "file" keeps each volume as a file here.
    backend: Literal["file"] = "file"
    # Empty: <compute state_dir or data_dir>/volumes. Shared between hosts when the
    # directory is (NFS, CephFS…); the connection info is the absolute path.
    path: str = ""
    format: Literal["qcow2", "raw"] = "qcow2"
    # Volume backups (one qcow2 file each); empty: <data_dir>/volume-backups. Keep it
    # on other storage than the volumes for backups to outlive them.
    backup_path: str = ""
    # Tests only: seconds a copy waits with its data written to the temporary file,
    # before renaming it into place (the window a test kills a conductor in).
    copy_delay: NonNegativeFloat = 0.0


@dataclass(frozen=True, config=STRICT)
class QuotaSettings:
    """Default per-project compute quotas (os-quota-sets); -1 is unlimited."""

    instances: Quota = 10
    cores: Quota = 20
    ram: Quota = 51200
    key_pairs: Quota = 100
    metadata_items: Quota = 128
    server_groups: Quota = 10
    server_group_members: Quota = 10
    injected_files: Quota = 5
    injected_file_content_bytes: Quota = 10240
    injected_file_path_bytes: Quota = 255


@dataclass(frozen=True, config=STRICT)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    image: ImageSettings = field(default_factory=ImageSettings)
    compute: ComputeSettings = field(default_factory=ComputeSettings)
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    conductor: ConductorSettings = field(default_factory=ConductorSettings)
    vnc: VncSettings = field(default_factory=VncSettings)
    volume: VolumeSettings = field(default_factory=VolumeSettings)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'gureum.db'}"

    @property
    def key_repository(self) -> Path:
        return Path(self.identity.key_repository or self.data_dir / "fernet-keys")

    @property
    def credential_key_repository(self) -> Path:
        return Path(self.identity.credential_key_repository
                    or self.data_dir / "credential-keys")

    @property
    def image_store_dir(self) -> Path:
        return Path(self.image.store_dir or self.data_dir / "images")

    @property
    def volume_dir(self) -> Path:
        return Path(self.volume.path or Path(self.compute.state_dir or self.data_dir)
                    / "volumes")

    @property
    def volume_backup_dir(self) -> Path:
        return Path(self.volume.backup_path or self.data_dir / "volume-backups")

    def host_state_dir(self, host: str) -> Path:
        base = self.compute.state_dir
        return Path(base) / host if base else self.data_dir / "hosts" / host

    @property
    def novncproxy_base_url(self) -> str:
        return self.vnc.novncproxy_base_url or f"{self.public_url}/vnc/vnc_lite.html"

    @property
    def public_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        host = self.server.bind
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server.port}"


_SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings) if f.name != "data_dir"}


_field_types: dict[str, dict[str, Any]] = {}
_adapters: dict[tuple[str, str], TypeAdapter[Any]] = {}


def _fields(section: str) -> dict[str, Any]:
    """A section's setting names and their (annotated) types."""
    found = _field_types.get(section)
    if found is None:
        cls = _SECTIONS[section]
        hints = typing.get_type_hints(cls, include_extras=True)
        found = _field_types[section] = {f.name: hints[f.name]
                                         for f in dataclasses.fields(cls)}
    return found


def allowed(tp: Any) -> str:
    """What a setting of type ``tp`` accepts, in words: "an integer from 1 to 65535"."""
    limits: dict[str, Any] = {}
    if typing.get_origin(tp) is Annotated:
        tp, *meta = typing.get_args(tp)
        for item in meta:
            for m in (item.metadata if isinstance(item, FieldInfo) else [item]):
                if isinstance(m, annotated_types.Ge | annotated_types.Gt | annotated_types.Le
                              | annotated_types.Lt):
                    limits.update(dataclasses.asdict(m))
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(tp))
    if tp is bool:
        return "true or false"
    noun = {int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))
    if "ge" in limits and "le" in limits:
        return f"{noun} from {limits['ge']} to {limits['le']}"
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return " ".join([noun, *(f"{words[k]} {v}" for k, v in limits.items())])


def _check(section: str, key: str, value: Any, origin: str, strict: bool) -> Any:
    """The value, converted and checked against the setting's type; ConfigError if not."""
    tp = _fields(section)[key]
    adapter = _adapters.get((section, key))
    if adapter is None:
        adapter = _adapters[(section, key)] = TypeAdapter(tp)
    try:
        return adapter.validate_python(value, strict=strict)
    except ValidationError as exc:
        reason = exc.errors(include_url=False)[0]["msg"]
        raise ConfigError(f"{origin}: {value!r} is not allowed ({reason}); allowed: "
                          f"{allowed(tp)}") from None


@dataclasses.dataclass
class _Layer:
    """Values from one source: where they come from and how each one is named there."""

    where: str  # "config file g.toml", "environment", "command line"
    values: dict[str, Any]
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    strict: bool = True  # typed sources (TOML, flags); the environment has only text

    def name(self, section: str, key: str) -> str:
        return self.names.get((section, key)) or f"{self.where}: [{section}] {key}"


def _environment_layer(env: typing.Mapping[str, str]) -> _Layer:
    layer = _Layer("environment", {}, strict=False)
    for name, value in env.items():
        if not name.startswith("GUREUM_"):
            continue
        rest = name[len("GUREUM_"):].lower()
        if rest == "data_dir":
            layer.values["data_dir"] = value
        elif "__" in rest:
            section, key = rest.split("__", 1)
            layer.values.setdefault(section, {})[key] = value
            layer.names[(section, key)] = f"environment variable {name}"
    return layer


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    environ: dict[str, str] | None = None,
    data_dir: str | Path | None = None,
) -> Settings:
    """Build the settings: defaults < file < environment < explicit overrides."""
    env = os.environ if environ is None else environ
    layers: list[_Layer] = []
    if config_file:
        path = Path(config_file)
        try:
            with path.open("rb") as fh:
                layers.append(_Layer(f"config file {path}", tomllib.load(fh)))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    layers.append(_environment_layer(env))
    if overrides:
        layers.append(_Layer("command line", dict(overrides)))
    if data_dir is not None:
        layers.append(_Layer("command line", {"data_dir": str(data_dir)}))

    chosen: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for layer in layers:
        for section, values in layer.values.items():
            if section == "data_dir":
                top["data_dir"] = Path(values).expanduser()
                continue
            if section not in _SECTIONS:
                raise ConfigError(f"{layer.where}: unknown section [{section}] (known: "
                                  f"{', '.join(_SECTIONS)})")
            if not isinstance(values, dict):
                raise ConfigError(f"{layer.where}: [{section}] must be a table")
            known = _fields(section)
            for key, value in values.items():
                name = layer.name(section, key)
                if key not in known:
                    raise ConfigError(f"{name}: unknown setting (known in [{section}]: "
                                      f"{', '.join(known)})")
                chosen.setdefault(section, {})[key] = _check(section, key, value, name,
                                                              layer.strict)
    sections = {name: _SECTIONS[name](**values) for name, values in chosen.items()}
    return Settings(**top, **sections)
