"""The issue's identity commands, verbatim, through the real `openstack` CLI and openstacksdk."""

from __future__ import annotations

import json
import os

import pytest

from tests.harness import GureumUp

pytestmark = pytest.mark.e2e


def test_token_issue(gureum_up: GureumUp) -> None:
    out = gureum_up.openstack("--os-cloud", "gureum", "token", "issue", "-f", "json").stdout
    token = json.loads(out)
    assert token["id"].startswith("gAAAAA")
    assert token["project_id"] and token["user_id"]


def test_project_user_role_assignment_flow(gureum_up: GureumUp) -> None:
    os_ = gureum_up.openstack
    project = json.loads(os_("--os-cloud", "gureum", "project", "create", "p1",
                             "-f", "json").stdout)
    assert project["name"] == "p1" and project["domain_id"] == "default"
    user = json.loads(os_("--os-cloud", "gureum", "user", "create", "--project", "p1",
                          "--password", "pw", "u1", "-f", "json").stdout)
    assert user["default_project_id"] == project["id"]
    os_("--os-cloud", "gureum", "role", "add", "--project", "p1", "--user", "u1", "member")
    rows = json.loads(os_("--os-cloud", "gureum", "role", "assignment", "list", "--user", "u1",
                          "--names", "-f", "json").stdout)
    assert rows == [{"Role": "member", "User": "u1@Default", "Group": "", "Project":
                     "p1@Default", "Domain": "", "System": "", "Inherited": False}]
    # u1 can now log in to p1 with the password it was given.
    env = {**os.environ, "OS_AUTH_URL": gureum_up.url + "/identity", "OS_USERNAME": "u1",
           "OS_PASSWORD": "pw", "OS_PROJECT_NAME": "p1", "OS_USER_DOMAIN_NAME": "Default",
           "OS_PROJECT_DOMAIN_NAME": "Default", "OS_IDENTITY_API_VERSION": "3"}
    import subprocess

    from tests.harness import BIN

    env.pop("OS_CLIENT_CONFIG_FILE", None)
    proc = subprocess.run([str(BIN / "openstack"), "token", "issue", "-f", "json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["project_id"] == project["id"]


def test_endpoint_and_catalog_list(gureum_up: GureumUp) -> None:
    endpoints = json.loads(gureum_up.openstack("--os-cloud", "gureum", "endpoint", "list",
                                               "-f", "json").stdout)
    types = {e["Service Type"] for e in endpoints}
    assert types >= {"identity", "compute", "image", "network", "block-storage"}
    assert all(e["URL"].startswith(gureum_up.url) for e in endpoints)
    catalog = json.loads(gureum_up.openstack("--os-cloud", "gureum", "catalog", "list",
                                             "-f", "json").stdout)
    assert {c["Type"] for c in catalog} == types


def test_application_credential_create_and_use(gureum_up: GureumUp) -> None:
    cred = json.loads(gureum_up.openstack("--os-cloud", "gureum", "application", "credential",
                                          "create", "ac1", "-f", "json").stdout)
    assert cred["Name"] == "ac1" and cred["Secret"]
    import openstack

    conn = openstack.connect(auth_type="v3applicationcredential", auth={
        "auth_url": gureum_up.url + "/identity",
        "application_credential_id": cred["ID"],
        "application_credential_secret": cred["Secret"]}, region_name="RegionOne")
    try:
        assert conn.identity.get_token()
        assert conn.current_project_id == cred["Project ID"]
    finally:
        conn.close()
    gureum_up.openstack("--os-cloud", "gureum", "application", "credential", "delete", "ac1")


def test_demo_cannot_create_projects(gureum_up: GureumUp) -> None:
    proc = gureum_up.openstack("--os-cloud", "gureum-demo", "project", "create", "nope",
                               check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr or "not authorized" in proc.stderr


def test_openstacksdk_lists_projects(gureum_up: GureumUp) -> None:
    import openstack

    os.environ["OS_CLIENT_CONFIG_FILE"] = str(gureum_up.clouds_yaml)
    conn = openstack.connect(cloud="gureum")
    try:
        names = {p.name for p in conn.identity.projects()}
        assert {"admin", "demo", "service"} <= names
    finally:
        conn.close()
