"""Credentials over real HTTP: /v3/credentials, OS-EC2, encryption at rest, key rotation."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy import select

from gureum.cli.main import main as gureum_main
from gureum.db import Database
from gureum.identity import models as m
from gureum.identity.keys import KeyRepository
from tests.harness import Api, InProcessCloud

V3 = "/identity/v3"


def _id(api: Api, admin: str, collection: str, name: str) -> str:
    return str(api.request("GET", f"{V3}/{collection}?name={name}",
                           admin).json()[collection][0]["id"])


def _member(api: Api, admin: str, name: str) -> tuple[str, str]:
    """A new member of project demo: (user id, project-scoped token)."""
    r = api.request("POST", f"{V3}/users", admin,
                    json={"user": {"name": name, "password": f"{name}-pw"}})
    user_id = r.json()["user"]["id"]
    demo, member = _id(api, admin, "projects", "demo"), _id(api, admin, "roles", "member")
    api.request("PUT", f"{V3}/projects/{demo}/users/{user_id}/roles/{member}", admin)
    return user_id, api.token(name, f"{name}-pw", "demo")


def _create(api: Api, token: str, **cred: Any) -> Any:
    return api.request("POST", f"{V3}/credentials", token, json={"credential": cred})


def _raw_rows(cloud: InProcessCloud) -> list[m.Credential]:
    db = Database(cloud.settings.database_url)
    try:
        with db.session(write=False) as s:
            return list(s.scalars(select(m.Credential)))
    finally:
        db.dispose()


def test_owner_manages_own_credential_and_blob_is_encrypted_at_rest(
        api: Api, cloud: InProcessCloud, admin_token: str) -> None:
    user_id, token = _member(api, admin_token, "cred-owner")
    secret = "-----BEGIN CERTIFICATE----- very secret"
    r = _create(api, token, user_id=user_id, type="cert", blob=secret)
    assert r.status_code == 201, r.text
    cred = r.json()["credential"]
    assert cred["blob"] == secret and cred["type"] == "cert" and cred["project_id"] is None
    assert cred["links"]["self"].endswith(f"/v3/credentials/{cred['id']}")
    # At rest: ciphertext from the credential keys, not the token keys.
    (row,) = [c for c in _raw_rows(cloud) if c.id == cred["id"]]
    assert secret not in row.encrypted_blob and "very secret" not in row.encrypted_blob
    cred_keys = KeyRepository(cloud.settings.credential_key_repository)
    assert cred_keys.fernet().decrypt(row.encrypted_blob.encode()).decode() == secret
    assert row.key_hash == cred_keys.primary_key_hash()
    token_keys = KeyRepository(cloud.settings.key_repository)
    with pytest.raises(InvalidToken):
        token_keys.fernet().decrypt(row.encrypted_blob.encode())
    # Read, list, update, delete by the owner.
    url = f"{V3}/credentials/{cred['id']}"
    assert api.request("GET", url, token).json()["credential"]["blob"] == secret
    listed = api.request("GET", f"{V3}/credentials", token).json()["credentials"]
    assert [c["id"] for c in listed] == [cred["id"]]
    r = api.request("PATCH", url, token, json={"credential": {"blob": "renewed"}})
    assert r.status_code == 200 and r.json()["credential"]["blob"] == "renewed"
    assert api.request("DELETE", url, token).status_code == 204
    assert api.request("GET", url, admin_token).status_code == 404


def test_a_user_sees_only_their_own_credentials(api: Api, admin_token: str) -> None:
    alice, alice_token = _member(api, admin_token, "cred-alice")
    bob, bob_token = _member(api, admin_token, "cred-bob")
    cred = _create(api, alice_token, user_id=alice, type="totp", blob="JBSWY3DPEHPK3PXP")
    cred_id = cred.json()["credential"]["id"]
    url = f"{V3}/credentials/{cred_id}"
    assert api.request("GET", f"{V3}/credentials", bob_token).json()["credentials"] == []
    r = api.request("GET", f"{V3}/credentials?user_id={alice}", bob_token)
    assert r.status_code == 200 and r.json()["credentials"] == []
    assert api.request("GET", url, bob_token).status_code == 403
    assert api.request("PATCH", url, bob_token,
                       json={"credential": {"blob": "mine"}}).status_code == 403
    assert api.request("DELETE", url, bob_token).status_code == 403
    # No creating for someone else, and no handing one's own to someone else.
    assert _create(api, bob_token, user_id=alice, type="cert", blob="x").status_code == 403
    assert api.request("PATCH", url, alice_token,
                       json={"credential": {"user_id": bob}}).status_code == 403
    # The admin sees and filters everyone's.
    everyone = api.request("GET", f"{V3}/credentials?user_id={alice}", admin_token).json()
    assert [c["id"] for c in everyone["credentials"]] == [cred_id]
    by_type = api.request("GET", f"{V3}/credentials?type=totp", admin_token).json()
    assert cred_id in {c["id"] for c in by_type["credentials"]}
    # Deleting the user deletes their credentials.
    assert api.request("DELETE", f"{V3}/users/{alice}", admin_token).status_code == 204
    assert api.request("GET", url, admin_token).status_code == 404
    assert bob


def test_ec2_credential_id_is_the_hash_of_its_access_key_and_needs_a_project(
        api: Api, admin_token: str) -> None:
    user_id, token = _member(api, admin_token, "cred-ec2")
    demo = _id(api, admin_token, "projects", "demo")
    blob = json.dumps({"access": "AKIA-1", "secret": "s3cr3t"})
    r = _create(api, token, user_id=user_id, type="ec2", blob=blob)
    assert r.status_code == 400 and "project_id" in r.json()["error"]["message"]
    r = _create(api, token, user_id=user_id, type="ec2", blob="not json", project_id=demo)
    assert r.status_code == 400 and "blob" in r.json()["error"]["message"]
    r = _create(api, token, user_id=user_id, type="ec2", project_id=demo,
                blob=json.dumps({"secret": "no access"}))
    assert r.status_code == 400 and "access" in r.json()["error"]["message"]
    r = _create(api, token, user_id=user_id, type="ec2", blob=blob, project_id=demo)
    assert r.status_code == 201, r.text
    assert r.json()["credential"]["id"] == hashlib.sha256(b"AKIA-1").hexdigest()
    assert _create(api, token, user_id=user_id, type="ec2", blob=blob,
                   project_id=demo).status_code == 409
    # It shows up under OS-EC2 too.
    r = api.request("GET", f"{V3}/users/{user_id}/credentials/OS-EC2/AKIA-1", token)
    assert r.status_code == 200 and r.json()["credential"]["secret"] == "s3cr3t"


def test_bad_credential_bodies_are_400_naming_the_field(api: Api, admin_token: str) -> None:
    admin_id = _id(api, admin_token, "users", "admin")
    for body, field in (({"type": "cert", "blob": "x"}, "credential.user_id"),
                        ({"user_id": admin_id, "blob": "x"}, "credential.type"),
                        ({"user_id": admin_id, "type": "cert", "blob": 5}, "credential.blob"),
                        ({"user_id": "nobody", "type": "cert", "blob": "x"},
                         "credential.user_id")):
        r = _create(api, admin_token, **body)
        assert r.status_code == 400, (body, r.text)
        assert field in r.json()["error"]["message"], (body, r.text)


def test_os_ec2_crud_and_access_rules(api: Api, admin_token: str) -> None:
    user_id, token = _member(api, admin_token, "ec2-user")
    other, other_token = _member(api, admin_token, "ec2-other")
    demo = _id(api, admin_token, "projects", "demo")
    base = f"{V3}/users/{user_id}/credentials/OS-EC2"
    r = api.request("POST", base, token, json={"tenant_id": demo})
    assert r.status_code == 201, r.text
    cred = r.json()["credential"]
    assert cred["tenant_id"] == demo and cred["user_id"] == user_id
    assert len(cred["access"]) == 32 and len(cred["secret"]) == 32
    assert cred["links"]["self"].endswith(f"/OS-EC2/{cred['access']}")
    listed = api.request("GET", base, token).json()["credentials"]
    assert [c["access"] for c in listed] == [cred["access"]]
    got = api.request("GET", f"{base}/{cred['access']}", token).json()["credential"]
    assert got["secret"] == cred["secret"]
    # Someone else may neither list, read, create nor delete them.
    assert api.request("GET", base, other_token).status_code == 403
    assert api.request("GET", f"{base}/{cred['access']}", other_token).status_code == 403
    assert api.request("POST", base, other_token, json={"tenant_id": demo}).status_code == 403
    assert api.request("DELETE", f"{base}/{cred['access']}",
                       other_token).status_code == 403
    # Bad input and unknown things.
    assert api.request("POST", base, token, json={}).status_code == 400
    assert api.request("POST", base, token, json={"tenant_id": "nope"}).status_code == 404
    assert api.request("GET", f"{base}/unknown-access", token).status_code == 404
    # The admin reads them; the owner deletes.
    assert api.request("GET", f"{base}/{cred['access']}", admin_token).status_code == 200
    assert api.request("DELETE", f"{base}/{cred['access']}", token).status_code == 204
    assert api.request("GET", base, token).json()["credentials"] == []
    assert other


def test_restricted_application_credential_cannot_make_ec2_credentials(
        api: Api, admin_token: str) -> None:
    user_id, token = _member(api, admin_token, "ec2-appcred")
    demo = _id(api, admin_token, "projects", "demo")
    r = api.request("POST", f"{V3}/users/{user_id}/application_credentials", token,
                    json={"application_credential": {"name": "restricted"}})
    assert r.status_code == 201, r.text
    ac = r.json()["application_credential"]
    r = api.request("POST", f"{V3}/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": ac["id"], "secret": ac["secret"]}}}})
    ac_token = r.headers["x-subject-token"]
    r = api.request("POST", f"{V3}/users/{user_id}/credentials/OS-EC2", ac_token,
                    json={"tenant_id": demo})
    assert r.status_code == 403
    r = _create(api, ac_token, user_id=user_id, type="ec2", project_id=demo,
                blob=json.dumps({"access": "from-appcred", "secret": "x"}))
    assert r.status_code == 403


def test_credential_keys_rotate_only_after_migrate(api: Api, cloud: InProcessCloud,
                                                   admin_token: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    admin_id = _id(api, admin_token, "users", "admin")
    cred = _create(api, admin_token, user_id=admin_id, type="cert", blob="rotate me")
    cred_id = cred.json()["credential"]["id"]
    data_dir = str(cloud.settings.data_dir)

    def manage(action: str) -> int:
        return gureum_main(["manage", "credential", action, "--data-dir", data_dir])

    assert manage("rotate") == 0
    # The old primary key is now a secondary: still readable, but a second rotation
    # could drop the only key that decrypts it, so it is refused until migrated.
    assert api.request("GET", f"{V3}/credentials/{cred_id}",
                       admin_token).json()["credential"]["blob"] == "rotate me"
    assert manage("rotate") == 1
    assert "migrate" in capsys.readouterr().err
    assert manage("migrate") == 0
    assert "re-encrypted" in capsys.readouterr().out
    keys = KeyRepository(cloud.settings.credential_key_repository)
    assert {c.key_hash for c in _raw_rows(cloud)} == {keys.primary_key_hash()}
    assert manage("rotate") == 0
    assert api.request("GET", f"{V3}/credentials/{cred_id}",
                       admin_token).json()["credential"]["blob"] == "rotate me"
    assert manage("setup") == 0
    assert "already exists" in capsys.readouterr().out
