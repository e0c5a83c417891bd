"""Events other services send about servers (Nova's os-server-external-events).

Neutron sends four about ports: ``network-changed`` (a port's addresses or floating
IPs changed: the server's network_info is read again), ``network-vif-plugged`` and
``network-vif-unplugged`` (the data plane's answer; gureum's agents plug ports
themselves and nothing waits for these, so they are only accepted), and
``network-vif-deleted`` (the port ``tag`` names went: its NIC is unplugged from the
guest, compute/interfaces.py). gureum's own Networking API does the last one in
the transaction that deletes the port; the endpoint serves a Neutron (or an
operator) that calls it.

As Nova's: an event for a server that does not exist fails with code 404, one for
a server without a host (never scheduled, shelved offloaded) with 422; the others
are accepted (200). The answer is 200 when all were accepted, else 207 — also when
none was (Nova answered 404 then until its bug 1855752 was fixed; its api-ref says so).
Other services' events (volume-extended from 2.51, power-update 2.76,
accelerator-request-bound 2.82, volume-reimaged 2.93) are not taken: gureum's Block
Storage acts on its guests itself, and it has no Ironic or Cyborg.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.compute import interfaces
from gureum.compute.guests import refresh_network_info
from gureum.compute.models import Instance

NETWORK_EVENTS = ("network-changed", "network-vif-plugged", "network-vif-unplugged",
                  "network-vif-deleted")
STATUSES = ("failed", "completed", "in-progress")


def dispatch(s: Session, events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Each event as sent, with its ``status`` and ``code``; and the response code."""
    ids = {e["server_uuid"] for e in events}
    found = {i.id: i for i in s.scalars(select(Instance).where(
        Instance.id.in_(ids), Instance.deleted.is_(False)))}
    out: list[dict[str, Any]] = []
    result = 200
    for event in events:
        shown = dict(event)
        shown.setdefault("status", "completed")
        inst = found.get(event["server_uuid"])
        if inst is None:
            shown.update(status="failed", code=404)
            result = 207
        elif not inst.host:
            shown.update(status="failed", code=422)
            result = 207
        else:
            _handle(s, inst, event["name"], event.get("tag"))
            shown.update(status="completed", code=200)
        out.append(shown)
    return out, result


def _handle(s: Session, inst: Instance, name: str, tag: str | None) -> None:
    if name == "network-changed":
        refresh_network_info(s, inst.id)
    elif name == "network-vif-deleted" and tag:
        interfaces.vif_deleted_event(s, inst.id, tag)
