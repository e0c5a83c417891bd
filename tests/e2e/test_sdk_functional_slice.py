"""A fast slice of openstacksdk's own network and block-storage functional tests, unchanged.

The full run is `make sdk-functional` (docs/compat.md); this keeps in the regular
suite the modules that pass: networks, subnets, ports, security groups and their
rules, extensions, availability zones, quotas, routers and their interfaces,
floating IPs, subnet pools, IP availability; volumes, volume types, snapshots —
through scripts/sdk-functional against its own `gureum up` (about 30 seconds).
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.harness import ROOT

pytestmark = pytest.mark.e2e

NETWORK = ",".join(f"network.v2.{m}" for m in (
    "test_network", "test_subnet", "test_port", "test_security_group",
    "test_security_group_rule", "test_extension", "test_availability_zone", "test_quota",
    "test_router", "test_router_add_remove_interface", "test_floating_ip", "test_subnet_pool",
    "test_network_ip_availability"))
BLOCK_STORAGE = ",".join(f"block_storage.v3.{m}" for m in (
    "test_volume", "test_type", "test_snapshot"))
# At least this many tests of each area really run (the sdk skips what needs an
# extension gureum does not advertise: none of these today).
MINIMUM = {NETWORK: 80, BLOCK_STORAGE: 3}


def test_sdk_functional_slice(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sdk-functional"), "--strict", "--junit-dir",
         str(tmp_path), NETWORK, BLOCK_STORAGE], capture_output=True, text=True, timeout=400)
    summary = proc.stdout[proc.stdout.find("== summary"):]
    assert proc.returncode == 0, f"{summary}\n{proc.stderr[-3000:]}"
    ran: dict[str, int] = {}
    for junit in tmp_path.glob("*.xml"):
        for case in ET.parse(junit).getroot().iter("testcase"):
            if case.find("skipped") is None:
                # scripts/sdk-functional names each area's file after its first module
                kind = junit.name.split(".")[0]
                ran[kind] = ran.get(kind, 0) + 1
    assert ran.get("network", 0) >= MINIMUM[NETWORK], summary
    assert ran.get("block_storage", 0) >= MINIMUM[BLOCK_STORAGE], summary
