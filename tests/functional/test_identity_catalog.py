"""The catalog in tokens: endpoint URL variables are filled in, as Keystone does."""

from __future__ import annotations

from tests.harness import Api, InProcessCloud

ID = "/identity/v3"


def test_endpoint_url_variables_are_filled_per_token(api: Api, cloud: InProcessCloud,
                                                     admin_token: str) -> None:
    r = api.request("POST", f"{ID}/services", admin_token,
                    json={"service": {"type": "object-store", "name": "swift"}})
    service_id = r.json()["service"]["id"]
    for interface, url in (("public", "https://store.example.com/v1/AUTH_$(project_id)s"),
                           ("internal", "https://store.internal/v1/%(tenant_id)s/u/"
                                        "$(user_id)s")):
        r = api.request("POST", f"{ID}/endpoints", admin_token, json={"endpoint": {
            "service_id": service_id, "interface": interface, "url": url}})
        assert r.status_code == 201, r.text
    try:
        token = api.request("GET", f"{ID}/auth/tokens", admin_token,
                            headers={"X-Subject-Token": admin_token}).json()["token"]
        project_id, user_id = token["project"]["id"], token["user"]["id"]
        (store,) = [svc for svc in token["catalog"] if svc["id"] == service_id]
        urls = {e["interface"]: e["url"] for e in store["endpoints"]}
        assert urls == {"public": f"https://store.example.com/v1/AUTH_{project_id}",
                        "internal": f"https://store.internal/v1/{project_id}/u/{user_id}"}
        # The endpoint API shows the templates themselves.
        r = api.request("GET", f"{ID}/endpoints?service_id={service_id}", admin_token)
        assert all("(" in e["url"] for e in r.json()["endpoints"])
        # A domain-scoped token has no project to fill in: those endpoints are left out.
        r = api.request("POST", f"{ID}/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"},
                "password": cloud.admin_password}}},
            "scope": {"domain": {"id": "default"}}}})
        assert r.status_code == 201, r.text
        (store,) = [svc for svc in r.json()["token"]["catalog"] if svc["id"] == service_id]
        assert store["endpoints"] == []
    finally:
        api.request("DELETE", f"{ID}/services/{service_id}", admin_token)
