"""docs/states.md, generated from the action table (python -m gureum.compute.statesdoc)."""

from __future__ import annotations

import sys

from gureum.compute import states


def _fmt(values: object) -> str:
    if values is None:
        return "any"
    items = sorted("none" if v is None else str(v) for v in values)  # type: ignore[attr-defined]
    return ", ".join(f"`{v}`" for v in items)


def render() -> str:
    lines = [
        "# Server states and actions",
        "",
        "Generated from `gureum/compute/states.py` by `python -m gureum.compute.statesdoc`;",
        "do not edit by hand (a test checks that this file matches the table).",
        "",
        "An action may start when the server's `vm_state` and `task_state` are in the",
        "lists below (and, where marked, the server has been launched once). Starting",
        "it sets the listed `task_state` with a compare-and-swap write, so of two",
        "racing requests one gets 202 and the other 409: `Cannot '<action>' instance",
        "<uuid> while it is in vm_state <state>`.",
        "",
        "| action | from vm_state | from task_state | launched | sets task_state | ends in |",
        "|---|---|---|---|---|---|",
    ]
    for a in sorted(states.ACTIONS.values(), key=lambda a: a.name):
        lines.append(
            f"| `{a.name}` | {_fmt(a.vm_states)} | {_fmt(a.task_states)} | "
            f"{'yes' if a.must_have_launched else 'no'} | "
            f"{f'`{a.task_state}`' if a.task_state else '-'} | "
            f"{f'`{a.ends_in}`' if a.ends_in else '-'} |")
    lines += ["", "## API status", "",
              "`status` as the API shows it, from `vm_state` and `task_state`:", "",
              "| vm_state | task_state | status |", "|---|---|---|"]
    for vm_state in states.VM_STATES:
        for task_state in (None, *states.own_status_tasks(vm_state)):
            shown = "(none or other)" if task_state is None else f"`{task_state}`"
            lines.append(f"| `{vm_state}` | {shown} | "
                         f"`{states.status_of(vm_state, task_state)}` |")
    lines += ["", "## Power states", "", "| value | name |", "|---|---|"]
    for value, name in sorted(states.POWER_STATE_NAMES.items()):
        lines.append(f"| {value} | {name} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
