"""Keystone's domain manager through the real `openstack` CLI: a user with the manager
role on dom1, in a clouds.yaml entry scoped to dom1, creates users and groups there
and grants them member, finding dom1, its projects and the roles by name; what lies
outside dom1, or above manager, is refused."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.harness import BIN, GureumUp

pytestmark = pytest.mark.e2e


def _clouds_yaml(path: Path, url: str) -> Path:
    path.write_text(
        "clouds:\n"
        "  dom1-manager:\n"
        "    auth:\n"
        f"      auth_url: {url}/identity\n"
        "      username: dom1-admin\n"
        "      password: dom1-pw\n"
        "      user_domain_name: dom1\n"
        "      domain_name: dom1\n"
        "    region_name: RegionOne\n"
        "    identity_api_version: 3\n")
    path.chmod(0o600)
    return path


def test_domain_manager_creates_users_and_grants_roles_in_its_domain_with_the_cli(
        gureum_up: GureumUp, tmp_path: Path) -> None:
    admin = gureum_up.openstack
    admin("--os-cloud", "gureum", "domain", "create", "dom1")
    admin("--os-cloud", "gureum", "project", "create", "--domain", "dom1", "web")
    admin("--os-cloud", "gureum", "user", "create", "--domain", "dom1", "--password",
          "dom1-pw", "dom1-admin")
    admin("--os-cloud", "gureum", "role", "add", "--domain", "dom1", "--user", "dom1-admin",
          "--user-domain", "dom1", "manager")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(_clouds_yaml(tmp_path / "clouds.yaml", gureum_up.url))

    def manager(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN / "openstack"), "--os-cloud", "dom1-manager", *args],
                              env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
        return proc

    user = json.loads(manager("user", "create", "--domain", "dom1", "--password", "pw",
                              "newuser", "-f", "json").stdout)
    domain = json.loads(admin("--os-cloud", "gureum", "domain", "show", "dom1",
                              "-f", "json").stdout)
    assert user["domain_id"] == domain["id"] and user["name"] == "newuser"
    manager("group", "create", "--domain", "dom1", "web-team")
    manager("group", "add", "user", "--group-domain", "dom1", "--user-domain", "dom1",
            "web-team", "newuser")
    manager("role", "add", "--project", "web", "--project-domain", "dom1", "--user",
            "newuser", "--user-domain", "dom1", "member")
    manager("role", "add", "--domain", "dom1", "--group", "web-team", "--group-domain",
            "dom1", "reader")
    rows = json.loads(manager("role", "assignment", "list", "--names", "-f",
                              "json").stdout)
    assert {"Role": "member", "User": "newuser@dom1", "Project": "web@dom1"}.items() <= \
        next(r for r in rows if r["User"] == "newuser@dom1").items()
    # Only dom1's assignments: on its project and on the domain itself.
    assert {r["Project"] for r in rows if r["Project"]} == {"web@dom1"}
    assert {r["Domain"] for r in rows if r["Domain"]} == {"dom1"}
    assert not any(r["System"] for r in rows)
    names = {u["Name"] for u in json.loads(manager("user", "list", "-f", "json").stdout)}
    assert names == {"dom1-admin", "newuser"}
    # Not admin (privilege escalation), and nothing outside dom1.
    # (openstacksdk's assign_project_role_to_user ignores the 403, so the CLI exits 0:
    # the request is looked at in --debug and the grant in the admin's list.)
    proc = manager("--debug", "role", "add", "--project", "web", "--project-domain", "dom1",
                   "--user", "newuser", "--user-domain", "dom1", "admin", check=False)
    assert "403" in proc.stderr and "identity:create_grant" in proc.stderr, proc.stderr
    granted = json.loads(admin("--os-cloud", "gureum", "role", "assignment", "list",
                               "--user", "newuser", "--user-domain", "dom1", "--names",
                               "-f", "json").stdout)
    assert [r["Role"] for r in granted] == ["member"]
    # Another domain is not even found by name (its domain list holds dom1 alone).
    proc = manager("user", "create", "--domain", "default", "--password", "pw", "intruder",
                   check=False)
    assert proc.returncode != 0 and "No Domain found for default" in proc.stderr
    proc = admin("--os-cloud", "gureum", "user", "show", "intruder", check=False)
    assert proc.returncode != 0
    # The new user logs in to web with the role it was given.
    env_user = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env_user.update({"OS_AUTH_URL": gureum_up.url + "/identity", "OS_USERNAME": "newuser",
                     "OS_PASSWORD": "pw", "OS_USER_DOMAIN_NAME": "dom1",
                     "OS_PROJECT_NAME": "web", "OS_PROJECT_DOMAIN_NAME": "dom1",
                     "OS_IDENTITY_API_VERSION": "3"})
    proc = subprocess.run([str(BIN / "openstack"), "token", "issue", "-f", "json"],
                          env=env_user, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    manager("user", "delete", "--domain", "dom1", "newuser")
