"""Security groups through the real `openstack` CLI, as users type it: groups and rules,
the default group, Neutron's errors, and Nova's server security-group commands."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def demo(up: GureumUp, *args: str, check: bool = True) -> Any:
    proc = up.openstack("--os-cloud", "gureum-demo", *args, check=check)
    if not check:
        return proc
    return json.loads(proc.stdout) if "-f" in args else proc.stdout


def test_security_group_and_rule_commands(gureum_up: GureumUp) -> None:
    up = gureum_up
    groups = demo(up, "security", "group", "list", "-f", "json")
    assert "default" in [g["Name"] for g in groups]
    sg = demo(up, "security", "group", "create", "--description", "ssh in", "cli-sg1",
              "-f", "json")
    assert sg["name"] == "cli-sg1" and sg["stateful"] is True
    assert len(sg["rules"]) == 2  # egress IPv4 and IPv6
    ssh = demo(up, "security", "group", "rule", "create", "--protocol", "tcp",
               "--dst-port", "22", "cli-sg1", "-f", "json")
    assert (ssh["port_range_min"], ssh["port_range_max"], ssh["protocol"]) == (22, 22, "tcp")
    assert ssh["direction"] == "ingress" and ssh["ether_type"] == "IPv4"
    dup = demo(up, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port",
               "22", "cli-sg1", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    bad = demo(up, "security", "group", "rule", "create", "--ethertype", "IPv6",
               "--remote-ip", "10.0.0.0/8", "cli-sg1", check=False)
    assert bad.returncode != 0 and "Conflicting value ethertype IPv6" in bad.stderr
    demo(up, "security", "group", "rule", "create", "--protocol", "icmp", "--ingress",
         "--remote-group", "cli-sg1", "cli-sg1")
    rules = demo(up, "security", "group", "rule", "list", "cli-sg1", "-f", "json")
    assert sorted(str(r["IP Protocol"]) for r in rules) == ["None", "None", "icmp", "tcp"]
    demo(up, "security", "group", "set", "--name", "cli-sg2", "--tag", "x", "cli-sg1")
    shown = demo(up, "security", "group", "show", "cli-sg2", "-f", "json")
    assert shown["tags"] == ["x"] and shown["description"] == "ssh in"
    other = up.openstack("--os-cloud", "gureum", "security", "group", "show", shown["id"],
                         "-f", "json")
    assert json.loads(other.stdout)["id"] == shown["id"]  # admin sees every project's
    default = demo(up, "security", "group", "delete", "default", check=False)
    assert default.returncode != 0
    demo(up, "security", "group", "rule", "delete", ssh["id"])
    demo(up, "security", "group", "delete", "cli-sg2")
    assert "cli-sg2" not in [g["Name"] for g in demo(up, "security", "group", "list",
                                                     "-f", "json")]


def test_server_security_group_commands(gureum_up: GureumUp) -> None:
    up = gureum_up
    demo(up, "security", "group", "create", "cli-web")
    demo(up, "security", "group", "create", "cli-db")
    server = demo(up, "server", "create", "--flavor", "m1.tiny", "--image", "cirros",
                  "--network", "private", "--security-group", "cli-web", "--wait", "sg-vm1",
                  "-f", "json")
    assert server["status"] == "ACTIVE"
    shown = demo(up, "server", "show", "sg-vm1", "-f", "json")
    assert "cli-web" in json.dumps(shown["security_groups"])
    demo(up, "server", "add", "security", "group", "sg-vm1", "cli-db")
    shown = demo(up, "server", "show", "sg-vm1", "-f", "json")
    assert "cli-db" in json.dumps(shown["security_groups"])
    ports = demo(up, "port", "list", "--server", "sg-vm1", "-f", "json", "--long")
    assert len(ports) == 1 and len(ports[0]["Security Groups"]) == 2
    in_use = demo(up, "security", "group", "delete", "cli-db", check=False)
    assert in_use.returncode != 0 and "in use" in in_use.stderr
    demo(up, "server", "remove", "security", "group", "sg-vm1", "cli-web")
    shown = demo(up, "server", "show", "sg-vm1", "-f", "json")
    assert "cli-web" not in json.dumps(shown["security_groups"])
    demo(up, "server", "delete", "--wait", "sg-vm1")
    demo(up, "security", "group", "delete", "cli-web", "cli-db")


def test_stateless_groups_never_mix_with_stateful_ones(gureum_up: GureumUp) -> None:
    up = gureum_up
    loose = demo(up, "security", "group", "create", "--stateless", "cli-loose", "-f", "json")
    assert loose["stateful"] is False
    mixed = demo(up, "port", "create", "--network", "private", "--security-group",
                 "cli-loose", "--security-group", "default", "cli-mixed", check=False)
    assert mixed.returncode != 0
    assert "Cannot apply both stateful and stateless security groups" in mixed.stderr
    port = demo(up, "port", "create", "--network", "private", "--security-group",
                "cli-loose", "cli-loose-port", "-f", "json")
    in_use = demo(up, "security", "group", "set", "--stateful", "cli-loose", check=False)
    assert in_use.returncode != 0 and "in use" in in_use.stderr
    demo(up, "port", "delete", port["id"])
    demo(up, "security", "group", "delete", "cli-loose")
