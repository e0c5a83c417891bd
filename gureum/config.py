"""One settings object: a TOML file plus environment overrides, loaded once.

The settings are plain frozen dataclasses, one per section. `load_settings`
reads the file (if any), applies ``GUREUM_<SECTION>__<KEY>`` environment
variables, then explicit overrides (command-line flags), and returns the
result. Nothing reads settings from a global: the object is passed explicitly.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gureum.errors import ConfigError


def default_data_dir() -> Path:
    """The per-user data directory (XDG_DATA_HOME/gureum or ~/.local/share/gureum)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gureum"


@dataclass(frozen=True)
class ServerSettings:
    bind: str = "127.0.0.1"
    port: int = 8800
    # The URL clients reach this server at; derived from bind/port when empty.
    public_url: str = ""
    # Worker threads for blocking handlers (database, bcrypt, file I/O).
    threads: int = 16
    region: str = "RegionOne"


@dataclass(frozen=True)
class DatabaseSettings:
    # Empty: sqlite file in the data directory.
    url: str = ""
    echo: bool = False


@dataclass(frozen=True)
class BusSettings:
    # memory:// (in-process) now; amqp://… in distributed mode.
    url: str = "memory://"


@dataclass(frozen=True)
class IdentitySettings:
    token_expiration: int = 3600
    # Keystone's default for bcrypt.
    password_hash_rounds: int = 12
    # Keystone's [security_compliance] options. 0 disables lockout.
    lockout_failure_attempts: int = 6
    lockout_duration: int = 1800
    # Failed logins from one address beyond this many per window are slowed down.
    address_failure_threshold: int = 5
    address_failure_window: int = 300
    address_max_delay: float = 5.0
    max_active_keys: int = 3
    # Empty: <data_dir>/fernet-keys
    key_repository: str = ""
    # The keys that encrypt credential blobs (/v3/credentials), apart from the
    # token keys as in Keystone. Empty: <data_dir>/credential-keys
    credential_key_repository: str = ""
    # How often a process checks the database for identity changes made elsewhere.
    cache_check_interval: float = 1.0


@dataclass(frozen=True)
class ImageSettings:
    # Empty: <data_dir>/images
    store_dir: str = ""
    # 0 means unlimited.
    max_image_size: int = 0


@dataclass(frozen=True)
class ComputeSettings:
    report_interval: float = 10.0
    service_down_time: float = 60.0
    driver: str = "fake"
    # Build attempts (hosts tried) before a server goes to ERROR.
    max_attempts: int = 3
    default_availability_zone: str = "nova"
    # "spread" (most free RAM first) or "pack" (least free RAM first).
    weigher: str = "spread"
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 512
    reserved_host_disk_gb: int = 0
    # Clean shutdown (S1): ACPI power-down re-sent every retry interval, forced off
    # after the timeout (the image property os_shutdown_timeout overrides it).
    shutdown_timeout: float = 60.0
    shutdown_retry_interval: float = 10.0
    resize_confirm_window: float = 0.0
    allow_resize_to_same_host: bool = False
    resume_guests_state_on_host_boot: bool = False
    # Per-host state (instances/, image cache); empty: <data_dir>/hosts/<host>.
    state_dir: str = ""
    # The guests' disks ("{host}" is the host's name); empty: <state_dir>/instances.
    # Hosts given one directory (NFS…) detect it with marker files and move no disks.
    instances_path: str = ""
    # The fake driver's host size and its failure/delay injection, e.g.
    # fake_failures = "c02:spawn" (spawn fails on c02), fake_delays = "spawn:0.5".
    fake_vcpus: int = 16
    fake_memory_mb: int = 32768
    fake_disk_gb: int = 500
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
    rpc_timeout: float = 60.0


@dataclass(frozen=True)
class ConductorSettings:
    # Failure injection for tests: stop a workflow right after a step, as if the
    # conductor process died there, e.g. "resize:power_off" or "*:transfer".
    crash_after: str = ""
    # The outbox (gureum/outbox.py): how often the conductor looks for work whose
    # hand-over message was lost, and how old such work must be to count as lost.
    outbox_sweep_interval: float = 1.0
    outbox_grace: float = 2.0
    # After a restart, how long a resumed workflow waits for the hosts it needs before
    # it rolls back as far as the hosts that answer allow (seconds).
    resume_host_wait: float = 60.0


@dataclass(frozen=True)
class QuotaSettings:
    """Default per-project compute quotas (os-quota-sets); -1 is unlimited."""

    instances: int = 10
    cores: int = 20
    ram: int = 51200
    key_pairs: int = 100
    metadata_items: int = 128
    server_groups: int = 10
    server_group_members: int = 10
    injected_files: int = 5
    injected_file_content_bytes: int = 10240
    injected_file_path_bytes: int = 255


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    image: ImageSettings = field(default_factory=ImageSettings)
    compute: ComputeSettings = field(default_factory=ComputeSettings)
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    conductor: ConductorSettings = field(default_factory=ConductorSettings)

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

    def host_state_dir(self, host: str) -> Path:
        base = self.compute.state_dir
        return Path(base) / host if base else self.data_dir / "hosts" / host

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


_SECTIONS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "data_dir"}


def _coerce(value: Any, current: Any, where: str) -> Any:
    """Convert a file or environment value to the type of the default."""
    try:
        if isinstance(current, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: expected {type(current).__name__}, got {value!r}"
        ) from None


def _apply(section_obj: Any, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(section_obj)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(known)})")
        changes[key] = _coerce(value, getattr(section_obj, key), f"{where}.{key}")
    return dataclasses.replace(section_obj, **changes)


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    environ: dict[str, str] | None = None,
    data_dir: str | Path | None = None,
) -> Settings:
    """Build the settings: defaults < file < environment < explicit overrides."""
    env = os.environ if environ is None else environ
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file:
        path = Path(config_file)
        try:
            with path.open("rb") as fh:
                layers.append((str(path), tomllib.load(fh)))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    env_layer: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith("GUREUM_"):
            continue
        rest = name[len("GUREUM_"):].lower()
        if rest == "data_dir":
            env_layer["data_dir"] = value
        elif "__" in rest:
            section, key = rest.split("__", 1)
            env_layer.setdefault(section, {})[key] = value
    layers.append(("environment", env_layer))
    if overrides:
        layers.append(("command line", dict(overrides)))
    if data_dir is not None:
        layers.append(("command line", {"data_dir": str(data_dir)}))

    settings = Settings()
    for where, layer in layers:
        for section, values in layer.items():
            if section == "data_dir":
                settings = dataclasses.replace(settings, data_dir=Path(values).expanduser())
                continue
            if section not in _SECTIONS:
                raise ConfigError(f"{where}: unknown section [{section}]")
            if not isinstance(values, dict):
                raise ConfigError(f"{where}: [{section}] must be a table")
            current = getattr(settings, section)
            settings = dataclasses.replace(
                settings, **{section: _apply(current, values, f"{where} [{section}]")}
            )
    return settings
