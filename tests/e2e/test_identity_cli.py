"""The issue's identity commands, verbatim, through the real `openstack` CLI and openstacksdk."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.harness import BIN, GureumUp

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


def _as_user(gureum_up: GureumUp, user: str, password: str, project: str | None,
             *args: str) -> subprocess.CompletedProcess[str]:
    """The real `openstack` CLI, authenticated as ``user`` through OS_* variables
    (project None: a system-scoped token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update({"OS_AUTH_URL": gureum_up.url + "/identity", "OS_USERNAME": user,
                "OS_PASSWORD": password, "OS_USER_DOMAIN_NAME": "Default",
                "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne"})
    if project:
        env.update({"OS_PROJECT_NAME": project, "OS_PROJECT_DOMAIN_NAME": "Default"})
    else:
        env["OS_SYSTEM_SCOPE"] = "all"
    return subprocess.run([str(BIN / "openstack"), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_role_list_shows_keystones_five_default_roles(gureum_up: GureumUp) -> None:
    roles = json.loads(gureum_up.openstack("--os-cloud", "gureum", "role", "list",
                                           "-f", "json").stdout)
    assert {"admin", "manager", "member", "reader", "service"} <= {r["Name"] for r in roles}
    implied = json.loads(gureum_up.openstack("--os-cloud", "gureum", "implied", "role",
                                             "list", "-f", "json").stdout)
    pairs = {(row["Prior Role Name"], row["Implied Role Name"]) for row in implied}
    assert {("admin", "manager"), ("manager", "member"), ("member", "reader")} <= pairs


def test_member_project_list_is_forbidden_but_my_projects_works(gureum_up: GureumUp) -> None:
    os_ = gureum_up.openstack
    # A filtered list goes to GET /v3/projects, which is the admin's (Keystone's policy).
    proc = os_("--os-cloud", "gureum-demo", "project", "list", "--enabled", check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr and "identity:list_projects" in proc.stderr
    mine = json.loads(os_("--os-cloud", "gureum-demo", "project", "list", "--my-projects",
                          "-f", "json").stdout)
    assert [p["Name"] for p in mine] == ["demo"]
    # Without filters the CLI falls back to the user's own projects on the 403.
    plain = json.loads(os_("--os-cloud", "gureum-demo", "project", "list",
                           "-f", "json").stdout)
    assert [p["Name"] for p in plain] == ["demo"]


def test_user_password_set_is_the_users_own_right(gureum_up: GureumUp) -> None:
    os_ = gureum_up.openstack
    os_("--os-cloud", "gureum", "user", "create", "--project", "demo", "--password",
        "first-pw", "pw-changer")
    os_("--os-cloud", "gureum", "role", "add", "--project", "demo", "--user", "pw-changer",
        "member")
    proc = _as_user(gureum_up, "pw-changer", "first-pw", "demo", "user", "password", "set",
                    "--original-password", "first-pw", "--password", "second-pw")
    assert proc.returncode == 0, proc.stderr
    proc = _as_user(gureum_up, "pw-changer", "second-pw", "demo", "token", "issue")
    assert proc.returncode == 0, proc.stderr
    proc = _as_user(gureum_up, "pw-changer", "first-pw", "demo", "token", "issue")
    assert proc.returncode != 0
    proc = _as_user(gureum_up, "pw-changer", "second-pw", "demo", "user", "password", "set",
                    "--original-password", "wrong", "--password", "third-pw")
    assert proc.returncode != 0 and "401" in proc.stderr


def test_credential_create_and_list(gureum_up: GureumUp) -> None:
    os_ = gureum_up.openstack
    cred = json.loads(os_("--os-cloud", "gureum", "credential", "create", "--type", "totp",
                          "admin", "GEZDGNBVGY3TQOJQ", "-f", "json").stdout)
    assert cred["type"] == "totp" and cred["blob"] == "GEZDGNBVGY3TQOJQ"
    rows = json.loads(os_("--os-cloud", "gureum", "credential", "list", "-f",
                          "json").stdout)
    assert cred["id"] in {r["ID"] for r in rows}
    shown = json.loads(os_("--os-cloud", "gureum", "credential", "show", cred["id"],
                           "-f", "json").stdout)
    assert shown["blob"] == "GEZDGNBVGY3TQOJQ"
    # The demo user sees none of the admin's credentials.
    demo_rows = json.loads(os_("--os-cloud", "gureum-demo", "credential", "list", "-f",
                               "json").stdout)
    assert cred["id"] not in {r["ID"] for r in demo_rows}
    os_("--os-cloud", "gureum", "credential", "delete", cred["id"])


def test_ec2_credentials_create_list_show_delete(gureum_up: GureumUp) -> None:
    os_ = gureum_up.openstack
    made = json.loads(os_("--os-cloud", "gureum-demo", "ec2", "credentials", "create",
                          "-f", "json").stdout)
    assert made["access"] and made["secret"] and made["project_id"]
    rows = json.loads(os_("--os-cloud", "gureum-demo", "ec2", "credentials", "list",
                          "-f", "json").stdout)
    assert [r["Access"] for r in rows] == [made["access"]]
    shown = json.loads(os_("--os-cloud", "gureum-demo", "ec2", "credentials", "show",
                           made["access"], "-f", "json").stdout)
    assert shown["secret"] == made["secret"]
    os_("--os-cloud", "gureum-demo", "ec2", "credentials", "delete", made["access"])
    rows = json.loads(os_("--os-cloud", "gureum-demo", "ec2", "credentials", "list",
                          "-f", "json").stdout)
    assert rows == []


def test_system_reader_with_a_system_scoped_token(gureum_up: GureumUp) -> None:
    os_ = gureum_up.openstack
    os_("--os-cloud", "gureum", "user", "create", "--password", "sys-pw", "sys-reader")
    os_("--os-cloud", "gureum", "role", "add", "--system", "all", "--user", "sys-reader",
        "reader")
    rows = json.loads(os_("--os-cloud", "gureum", "role", "assignment", "list", "--system",
                          "all", "--names", "-f", "json").stdout)
    assert {"Role": "reader", "User": "sys-reader@Default", "System": "all"}.items() <= \
        next(r for r in rows if r["User"] == "sys-reader@Default").items()
    proc = _as_user(gureum_up, "sys-reader", "sys-pw", None, "token", "issue", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    proc = _as_user(gureum_up, "sys-reader", "sys-pw", None, "project", "list", "--enabled",
                    "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert {"admin", "demo", "service"} <= {p["Name"] for p in json.loads(proc.stdout)}
    proc = _as_user(gureum_up, "sys-reader", "sys-pw", None, "project", "create", "nope")
    assert proc.returncode != 0 and "403" in proc.stderr
