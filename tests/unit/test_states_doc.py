"""docs/states.md is the action table, rendered; it must not drift from the code."""

from __future__ import annotations

from pathlib import Path

from gureum.compute import states
from gureum.compute.statesdoc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "states.md"


def test_states_doc_matches_the_table() -> None:
    assert DOC.read_text() == render(), (
        "docs/states.md is stale: run `python -m gureum.compute.statesdoc > docs/states.md`")


def test_every_in_progress_task_state_belongs_to_an_action_or_workflow() -> None:
    set_by_actions = {a.task_state for a in states.ACTIONS.values() if a.task_state}
    assert set_by_actions <= set(states.ALL_TASK_STATES)


def test_nova_wording_for_refusals() -> None:
    try:
        states.check("stop", "abc", states.STOPPED, None, True)
    except states.ActionNotAllowed as exc:
        assert str(exc) == "Cannot 'stop' instance abc while it is in vm_state stopped"
        assert exc.status == 409
    else:
        raise AssertionError("stop from stopped must be refused")
