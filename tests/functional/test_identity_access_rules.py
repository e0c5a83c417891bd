"""Access rules of application credentials (/v3/users/{id}/access_rules), after Keystone."""

from __future__ import annotations

from typing import Any

from tests.harness import Api

ID = "/identity/v3"
RULE = {"service": "monitoring", "path": "/v2.0/metrics", "method": "GET"}


def whoami(api: Api, token: str) -> str:
    r = api.request("GET", f"{ID}/auth/tokens", token, headers={"X-Subject-Token": token})
    return str(r.json()["token"]["user"]["id"])


def create_cred(api: Api, token: str, user_id: str, name: str,
                rules: list[dict[str, Any]]) -> Any:
    return api.request("POST", f"{ID}/users/{user_id}/application_credentials", token,
                       json={"application_credential": {"name": name, "access_rules": rules}})


def test_access_rules_get_ids_and_are_shared_between_credentials(api: Api,
                                                                 demo_token: str) -> None:
    user_id = whoami(api, demo_token)
    r = create_cred(api, demo_token, user_id, "rules-1", [RULE])
    assert r.status_code == 201, r.text
    first = r.json()["application_credential"]
    (rule,) = first["access_rules"]
    assert rule["id"] and {k: rule[k] for k in RULE} == RULE
    # The same rule again, by content and by id, is the same rule.
    second = create_cred(api, demo_token, user_id, "rules-2", [RULE]).json()
    assert second["application_credential"]["access_rules"][0]["id"] == rule["id"]
    third = create_cred(api, demo_token, user_id, "rules-3", [{"id": rule["id"]}]).json()
    assert third["application_credential"]["access_rules"] == [rule]

    r = api.request("GET", f"{ID}/users/{user_id}/access_rules", demo_token)
    assert [x["id"] for x in r.json()["access_rules"]] == [rule["id"]]
    r = api.request("GET", f"{ID}/users/{user_id}/access_rules/{rule['id']}", demo_token)
    assert r.status_code == 200 and r.json()["access_rule"]["path"] == RULE["path"]

    # In use: 403; once no credential uses it, it can go.
    url = f"{ID}/users/{user_id}/access_rules/{rule['id']}"
    assert api.request("DELETE", url, demo_token).status_code == 403
    for cred in (first, second["application_credential"], third["application_credential"]):
        assert api.request("DELETE", f"{ID}/users/{user_id}/application_credentials/"
                           f"{cred['id']}", demo_token).status_code == 204
    assert api.request("GET", url, demo_token).status_code == 200  # outlives credentials
    assert api.request("DELETE", url, demo_token).status_code == 204
    assert api.request("GET", url, demo_token).status_code == 404


def test_access_rule_of_another_user_is_not_reachable(api: Api, admin_token: str,
                                                      demo_token: str) -> None:
    demo_id = whoami(api, demo_token)
    rule = create_cred(api, demo_token, demo_id, "private-rule", [
        {"service": "compute", "path": "/servers", "method": "GET"}]
    ).json()["application_credential"]["access_rules"][0]
    admin_id = whoami(api, admin_token)
    assert api.request("GET", f"{ID}/users/{admin_id}/access_rules/{rule['id']}",
                       admin_token).status_code == 404
    r = create_cred(api, admin_token, admin_id, "steal", [{"id": rule["id"]}])
    assert r.status_code == 400
    assert api.request("GET", f"{ID}/users/{demo_id}/access_rules",
                       "x" + demo_token[1:]).status_code == 401


def test_malformed_access_rule_is_400(api: Api, demo_token: str) -> None:
    user_id = whoami(api, demo_token)
    for bad in ({"service": "compute"}, {**RULE, "method": "FETCH"},
                {**RULE, "path": "no-slash"}):
        r = create_cred(api, demo_token, user_id, "bad-rule", [bad])
        assert r.status_code == 400, (bad, r.text)
