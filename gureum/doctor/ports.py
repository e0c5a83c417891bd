"""A server's ports against the server: bindings, their VIF, and the network_info cache.

For each port a server holds (``device_owner`` ``compute:*``):

* its server must exist: a port naming a deleted server is detached, as Neutron does
  when the VIF is unplugged (device and binding cleared, the port and its addresses
  kept for the project to reuse or delete);
* it has exactly one ACTIVE binding, on the server's host ("" while the server has no
  host, e.g. shelved offloaded);
* that binding's ``vif_type``/``vif_details`` are what the host's agent computes now
  (``bindings.vif_for_host``): S5's upgrade left ``vif_details`` empty, so
  ``port_filter`` was missing and security groups did not apply;
* no INACTIVE binding is left over from a live migration that is no longer running;
* the server's ``network_info`` (what its host plugs from at the next start) says
  what the ports say.

Each repair rebinds through ``bindings.set_host``, which computes the binding for the
host afresh and drops leftovers, then refreshes the server's network_info.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gureum.compute import states
from gureum.compute.guests import refresh_network_info
from gureum.compute.models import Instance, Migration
from gureum.db import Session
from gureum.doctor import Finding, Report
from gureum.network import bindings, ports, resources
from gureum.network import models as m
from gureum.network.service import network_info_for_instance


def _server_ports(s: Session, port_id: str | None = None) -> list[m.Port]:
    stmt = (select(m.Port).where(m.Port.device_owner.like("compute:%"), m.Port.device_id != "")
            .order_by(m.Port.device_id, m.Port.device_index, m.Port.id))
    if port_id is not None:
        stmt = stmt.where(m.Port.id == port_id)
    return list(s.scalars(stmt))


def _moving(s: Session, instance_ids: set[str]) -> set[str]:
    if not instance_ids:
        return set()
    rows = s.scalars(select(Migration.instance_id).where(
        Migration.instance_id.in_(sorted(instance_ids)),
        Migration.status.not_in(states.MIGRATION_TERMINAL)))
    return set(rows)


def _busy(inst: Instance, moving: set[str]) -> bool:
    return inst.task_state is not None or inst.id in moving


def _describe(b: m.PortBinding) -> str:
    return f"{b.host or '(unbound)'}"


def problems(port: m.Port, inst: Instance | None) -> list[tuple[str, str, str]]:
    """(kind, problem, action) for each thing wrong with ``port`` of server ``inst``
    (None: the server does not exist). The server is not busy."""
    if inst is None or inst.deleted:
        return [("port-orphaned", f"names server {port.device_id}, which no longer exists",
                 "detach it (clear device_id, device_owner and the binding; the port and "
                 "its addresses stay with its project)")]
    found: list[tuple[str, str, str]] = []
    host = inst.host or ""
    where = f"host {host}" if host else "no host (unbound)"
    rebind = (f"bind it to {host}, computed from {host}'s agent" if host
              else "unbind it")
    active = [b for b in port.bindings if b.status == m.BINDING_ACTIVE]
    if not active:
        found.append(("binding-missing", f"has no active binding; the server is on {where}",
                      rebind))
    elif len(active) > 1:
        found.append(("binding-several", "has several active bindings ("
                      + ", ".join(sorted(_describe(b) for b in active))
                      + f"); the server is on {where}", rebind))
    elif active[0].host != host:
        found.append(("binding-host", f"is bound to {_describe(active[0])}, but the server "
                      f"is on {where}", rebind))
    elif host:
        vif_type, details = bindings.vif_for_host(host, port.network, port)
        b = active[0]
        if b.vif_type != vif_type or dict(b.vif_details or {}) != details:
            missing = sorted(set(details) - set(b.vif_details or {}))
            detail = (f"vif_details lacks {', '.join(missing)}" if missing
                      else f"vif_type {b.vif_type!r} vif_details {b.vif_details!r}")
            found.append(("binding-vif", f"binding on {host} is not what {host}'s agent "
                          f"computes now ({detail}; expected vif_type {vif_type!r})",
                          f"compute the binding again from {host}'s agent"))
    stale = sorted(b.host for b in port.bindings if b.status == m.BINDING_INACTIVE)
    if stale:
        found.append(("binding-stale-inactive", "has INACTIVE binding(s) on "
                      + ", ".join(stale) + " left by a move that is no longer running",
                      "drop them"))
    return found


def _fix_port(port_id: str, instance_id: str) -> Any:
    def fix(s: Session) -> bool:
        # Lock the server row first: a workflow that starts now waits for this
        # transaction, and one that started before shows as busy and is left alone.
        inst = s.scalars(select(Instance).where(Instance.id == instance_id)
                         .with_for_update()).first()
        if inst is not None and _busy(inst, _moving(s, {instance_id})):
            return False
        found = _server_ports(s, port_id)
        if not found or found[0].device_id != instance_id:
            return False  # gone or moved to another server since the check
        port = found[0]
        wrong = problems(port, inst)
        if not wrong:
            return _refresh(s, inst)
        if inst is None or wrong[0][0] == "port-orphaned":
            ports.detach(port)
        else:
            bindings.set_host(port, inst.host or "")
        resources.touch(port)
        s.flush()
        _refresh(s, inst)
        return True
    return fix


def _refresh(s: Session, inst: Instance | None) -> bool:
    if inst is None or inst.deleted:
        return False
    before = inst.network_info
    refresh_network_info(s, inst.id)
    return inst.network_info != before


def _fix_cache(instance_id: str) -> Any:
    def fix(s: Session) -> bool:
        inst = s.scalars(select(Instance).where(Instance.id == instance_id)
                         .with_for_update()).first()
        if inst is None or _busy(inst, _moving(s, {instance_id})):
            return False
        return _refresh(s, inst)
    return fix


def check(s: Session, report: Report) -> None:
    server_ports = _server_ports(s)
    report.checked_ports += len(server_ports)
    ids = {p.device_id for p in server_ports}
    servers = {i.id: i for i in s.scalars(select(Instance).where(
        Instance.id.in_(sorted(ids))))} if ids else {}
    moving = _moving(s, ids)
    busy: set[str] = set()
    damaged: set[str] = set()
    for port in server_ports:
        inst = servers.get(port.device_id)
        if inst is not None and not inst.deleted and _busy(inst, moving):
            busy.add(inst.id)
            continue
        for kind, problem, action in problems(port, inst):
            damaged.add(port.device_id)
            report.findings.append(Finding(
                kind, f"port {port.id}", problem if kind == "port-orphaned" else
                f"of server {port.device_id} {problem}", action,
                fix=_fix_port(port.id, port.device_id), key=f"port {port.id}"))
    # The cache each host plugs from: only worth a look when the ports themselves are
    # right (a port's repair refreshes it anyway).
    for inst in sorted(servers.values(), key=lambda i: i.id):
        if inst.deleted or inst.id in busy or inst.id in damaged or not inst.network_info:
            continue
        if network_info_for_instance(s, inst.id) != inst.network_info:
            report.findings.append(Finding(
                "network-info-stale", f"server {inst.id}",
                "its network_info (what its host plugs from at the next start) differs "
                "from its ports", "rebuild it from the ports", fix=_fix_cache(inst.id)))
    report.busy.extend(sorted(busy))
