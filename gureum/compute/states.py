"""Instance states and the one action table.

vm_state is where an instance rests; task_state is what is happening to it
right now (None when nothing is); power_state is what the hypervisor last
said. The ACTIONS table says, for every server action, from which vm_states and
task_states it may start, which task_state it sets while it runs, and where it
ends. API guards, docs/states.md and the parametrised state test all read this
table; nothing else decides whether an action is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gureum.errors import InvalidState

# -- vm_state ----------------------------------------------------------------------
ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

VM_STATES = (ACTIVE, BUILDING, PAUSED, SUSPENDED, STOPPED, RESCUED, RESIZED, SOFT_DELETED,
             DELETED, ERROR, SHELVED, SHELVED_OFFLOADED)

# -- task_state --------------------------------------------------------------------
SCHEDULING = "scheduling"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
NETWORKING = "networking"
SPAWNING = "spawning"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
UPDATING_PASSWORD = "updating_password"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
REBOOTING = "rebooting"
REBOOT_PENDING = "reboot_pending"
REBOOT_STARTED = "reboot_started"
REBOOTING_HARD = "rebooting_hard"
REBOOT_PENDING_HARD = "reboot_pending_hard"
REBOOT_STARTED_HARD = "reboot_started_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
RESCUING = "rescuing"
UNRESCUING = "unrescuing"
REBUILDING = "rebuilding"
REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"
REBUILD_SPAWNING = "rebuild_spawning"
MIGRATING = "migrating"
DELETING = "deleting"
SOFT_DELETING = "soft-deleting"
RESTORING = "restoring"
SHELVING = "shelving"
SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"

# -- migrations --------------------------------------------------------------------
# Statuses in which a migration is over: it holds no claim and no copy any more.
MIGRATION_TERMINAL = frozenset({"confirmed", "reverted", "completed", "error", "failed",
                                "cancelled", "done"})

# -- power_state (the numbers Nova puts on the wire) --------------------------------
NOSTATE = 0
RUNNING = 1
POWER_PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
POWER_SUSPENDED = 7

POWER_STATE_NAMES = {NOSTATE: "NOSTATE", RUNNING: "Running", POWER_PAUSED: "Paused",
                     SHUTDOWN: "Shutdown", CRASHED: "Crashed",
                     POWER_SUSPENDED: "Suspended"}

# -- API status (nova/api/openstack/common.py's state map) -------------------------
_RESIZING = (RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH)
_REBUILDING = (REBUILDING, REBUILD_BLOCK_DEVICE_MAPPING, REBUILD_SPAWNING)
_STATUS: dict[str, dict[str | None, str]] = {
    ACTIVE: {None: "ACTIVE", REBOOTING: "REBOOT", REBOOT_PENDING: "REBOOT",
             REBOOT_STARTED: "REBOOT", REBOOTING_HARD: "HARD_REBOOT",
             REBOOT_PENDING_HARD: "HARD_REBOOT", REBOOT_STARTED_HARD: "HARD_REBOOT",
             UPDATING_PASSWORD: "PASSWORD", MIGRATING: "MIGRATING",
             **{t: "REBUILD" for t in _REBUILDING}, **{t: "RESIZE" for t in _RESIZING}},
    BUILDING: {None: "BUILD"},
    STOPPED: {None: "SHUTOFF", **{t: "RESIZE" for t in _RESIZING},
              **{t: "REBUILD" for t in _REBUILDING}},
    RESIZED: {None: "VERIFY_RESIZE", RESIZE_REVERTING: "REVERT_RESIZE"},
    PAUSED: {None: "PAUSED", MIGRATING: "MIGRATING"},
    SUSPENDED: {None: "SUSPENDED"},
    RESCUED: {None: "RESCUE"},
    ERROR: {None: "ERROR", **{t: "REBUILD" for t in _REBUILDING}},
    DELETED: {None: "DELETED"},
    SOFT_DELETED: {None: "SOFT_DELETED"},
    SHELVED: {None: "SHELVED"},
    SHELVED_OFFLOADED: {None: "SHELVED_OFFLOADED"},
}

def status_of(vm_state: str, task_state: str | None) -> str:
    """The API's status for a (vm_state, task_state) pair."""
    table = _STATUS.get(vm_state)
    if table is None:
        return "UNKNOWN"
    return table.get(task_state) or table[None]


@dataclass(frozen=True)
class StatusMatch:
    """A SQL-able description of one status: a vm_state and which task_states."""

    vm_state: str
    task_states: tuple[str, ...] = ()  # match these task_states …
    default: bool = False  # … or any task_state that has no status of its own


def status_matches(status: str) -> list[StatusMatch]:
    """What ?status=X means, as (vm_state, task_states) conditions."""
    out = []
    for vm_state, table in _STATUS.items():
        tasks = tuple(t for t, name in table.items() if t is not None and name == status)
        default = table[None] == status
        if tasks or default:
            out.append(StatusMatch(vm_state, tasks, default))
    return out


def own_status_tasks(vm_state: str) -> tuple[str, ...]:
    """The task_states that give vm_state a status other than its default."""
    return tuple(t for t in _STATUS.get(vm_state, {}) if t is not None)


# -- the action table --------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    """One server action: where it may start, what it sets, where it ends."""

    name: str  # the API's name for it, used in 409 messages: "Cannot 'stop' instance …"
    vm_states: frozenset[str] | None  # None: any vm_state
    task_states: frozenset[str | None] | None = frozenset({None})  # None: any task_state
    must_have_launched: bool = True
    task_state: str | None = None  # set (compare-and-swap) when the action is accepted
    ends_in: str = ""  # the vm_state on success, for docs ("" = unchanged)
    description: str = ""


def _vs(*states: str) -> frozenset[str]:
    return frozenset(states)


_ALLOW_HARD_REBOOT = _vs(ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR)
_ALLOW_REBOOT_TASKS = frozenset({None, REBOOTING, REBOOT_PENDING, REBOOT_STARTED, RESUMING,
                                 REBOOTING_HARD, UNPAUSING, PAUSING, SUSPENDING})

ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("delete", None, None, must_have_launched=False, task_state=DELETING,
           ends_in=DELETED, description="delete the server"),
    Action("forceDelete", None, frozenset({None}) | frozenset(_REBUILDING) | {DELETING},
           must_have_launched=False, task_state=DELETING, ends_in=DELETED,
           description="delete now, whatever it is doing"),
    Action("restore", _vs(SOFT_DELETED), task_state=RESTORING, ends_in=ACTIVE),
    Action("stop", _vs(ACTIVE, ERROR), task_state=POWERING_OFF, ends_in=STOPPED,
           description="clean shutdown, forced off after shutdown_timeout"),
    Action("start", _vs(STOPPED), task_state=POWERING_ON, ends_in=ACTIVE),
    Action("reboot", _vs(ACTIVE), task_state=REBOOTING, ends_in=ACTIVE,
           description="soft reboot"),
    Action("reboot_hard", _ALLOW_HARD_REBOOT, _ALLOW_REBOOT_TASKS, task_state=REBOOTING_HARD,
           ends_in=ACTIVE, description="rebuild the VM definition from the database"),
    Action("pause", _vs(ACTIVE), task_state=PAUSING, ends_in=PAUSED),
    Action("unpause", _vs(PAUSED), task_state=UNPAUSING, ends_in=ACTIVE),
    Action("suspend", _vs(ACTIVE), task_state=SUSPENDING, ends_in=SUSPENDED),
    Action("resume", _vs(SUSPENDED), task_state=RESUMING, ends_in=ACTIVE),
    Action("rebuild", _vs(ACTIVE, STOPPED, ERROR), task_state=REBUILDING, ends_in=ACTIVE),
    Action("resize", _vs(ACTIVE, STOPPED), task_state=RESIZE_PREP, ends_in=RESIZED),
    Action("migrate", _vs(ACTIVE, STOPPED), task_state=RESIZE_PREP, ends_in=RESIZED,
           description="cold migration"),
    Action("confirmResize", _vs(RESIZED), task_state=RESIZE_CONFIRMING, ends_in=ACTIVE),
    Action("revertResize", _vs(RESIZED), task_state=RESIZE_REVERTING, ends_in=ACTIVE),
    Action("os-migrateLive", _vs(ACTIVE, PAUSED), task_state=MIGRATING, ends_in=ACTIVE,
           description="live migration"),
    Action("force_complete", _vs(ACTIVE), frozenset({MIGRATING})),
    Action("abort_live_migration", None, frozenset({MIGRATING})),
    Action("evacuate", _vs(ACTIVE, STOPPED, ERROR), task_state=REBUILDING, ends_in=ACTIVE,
           description="rebuild on another host; the source must be down"),
    Action("shelve", _vs(ACTIVE, STOPPED, PAUSED, SUSPENDED), task_state=SHELVING,
           ends_in=SHELVED_OFFLOADED),
    Action("shelveOffload", _vs(SHELVED), task_state=SHELVING_OFFLOADING,
           ends_in=SHELVED_OFFLOADED),
    Action("unshelve", _vs(SHELVED, SHELVED_OFFLOADED), task_state=UNSHELVING,
           ends_in=ACTIVE),
    Action("rescue", _vs(ACTIVE, STOPPED, ERROR), task_state=RESCUING, ends_in=RESCUED),
    Action("unrescue", _vs(RESCUED), task_state=UNRESCUING, ends_in=ACTIVE),
    Action("createImage", _vs(ACTIVE, STOPPED, PAUSED, SUSPENDED),
           task_state=IMAGE_SNAPSHOT, description="snapshot into the image service"),
    Action("createBackup", _vs(ACTIVE, STOPPED, PAUSED, SUSPENDED),
           task_state=IMAGE_SNAPSHOT),
    Action("changePassword", _vs(ACTIVE), task_state=UPDATING_PASSWORD),
    Action("trigger_crash_dump", _vs(ACTIVE, PAUSED, RESCUED, RESIZED, ERROR)),
    Action("update_metadata", _vs(ACTIVE, PAUSED, SUSPENDED, STOPPED),
           must_have_launched=False),
    Action("attach_volume", _vs(ACTIVE, PAUSED, STOPPED, RESIZED, SOFT_DELETED, SHELVED,
                                SHELVED_OFFLOADED)),
    Action("detach_volume", _vs(ACTIVE, PAUSED, STOPPED, RESIZED, SOFT_DELETED, SHELVED,
                                SHELVED_OFFLOADED)),
    Action("swap_volume", _vs(ACTIVE, PAUSED, RESIZED),
           description="admin: replace an attached volume by another (its data copied)"),
    Action("attach_interface", _vs(ACTIVE, PAUSED, STOPPED)),
    Action("detach_interface", _vs(ACTIVE, PAUSED, STOPPED)),
    Action("os-resetState", None, None, must_have_launched=False,
           description="admin: set active or error, clear task_state"),
)}


class ActionNotAllowed(InvalidState):
    """The instance is not in a state the action may start from (a 409)."""

    def __init__(self, action: str, instance_id: str, attr: str, state: object) -> None:
        super().__init__(f"Cannot '{action}' instance {instance_id} while it is in "
                         f"{attr} {state}")
        self.action = action
        self.instance_id = instance_id
        self.attr = attr
        self.state = state


def check(action: str, instance_id: str, vm_state: str, task_state: str | None,
          launched: bool) -> Action:
    """The Action if it may start now; ActionNotAllowed (Nova's 409 wording) otherwise."""
    a = ACTIONS[action]
    api_name = "reboot" if action == "reboot_hard" else action
    if a.vm_states is not None and vm_state not in a.vm_states:
        raise ActionNotAllowed(api_name, instance_id, "vm_state", vm_state)
    if a.task_states is not None and task_state not in a.task_states:
        raise ActionNotAllowed(api_name, instance_id, "task_state", task_state)
    if a.must_have_launched and not launched:
        raise ActionNotAllowed(api_name, instance_id, "launched_at", None)
    return a


def allowed_pairs(action: str, task_states: Iterable[str | None]) -> list[tuple[str, str | None]]:
    """Every (vm_state, task_state) pair the action may start from (for docs and tests)."""
    a = ACTIONS[action]
    vms = a.vm_states if a.vm_states is not None else frozenset(VM_STATES)
    tss = a.task_states if a.task_states is not None else frozenset(task_states)
    return sorted(((v, t) for v in vms for t in tss), key=lambda p: (p[0], p[1] or ""))


ALL_TASK_STATES: tuple[str | None, ...] = (
    None, SCHEDULING, BLOCK_DEVICE_MAPPING, NETWORKING, SPAWNING, IMAGE_SNAPSHOT,
    IMAGE_SNAPSHOT_PENDING, IMAGE_PENDING_UPLOAD, IMAGE_UPLOADING, UPDATING_PASSWORD,
    RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH, RESIZE_REVERTING,
    RESIZE_CONFIRMING, REBOOTING, REBOOT_PENDING, REBOOT_STARTED, REBOOTING_HARD,
    REBOOT_PENDING_HARD, REBOOT_STARTED_HARD, PAUSING, UNPAUSING, SUSPENDING, RESUMING,
    POWERING_OFF, POWERING_ON, RESCUING, UNRESCUING, REBUILDING,
    REBUILD_BLOCK_DEVICE_MAPPING, REBUILD_SPAWNING, MIGRATING, DELETING, SOFT_DELETING,
    RESTORING, SHELVING, SHELVING_IMAGE_PENDING_UPLOAD, SHELVING_IMAGE_UPLOADING,
    SHELVING_OFFLOADING, UNSHELVING)
