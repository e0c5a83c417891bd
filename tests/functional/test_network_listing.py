"""Listing as Neutron does it: filters, fields, sorting, paging links; tags; quotas; AZs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.functional.network_helpers import (
    N,
    create,
    error,
    listing,
    network_with_subnet,
    project_id,
    user_in_project,
)
from tests.harness import Api


@pytest.fixture(scope="module")
def lan(api: Api, demo_token: str) -> dict[str, str]:
    net, sn = network_with_subnet(api, demo_token, "listing-lan", "172.20.0.0/24")
    for i, name in enumerate(("alpha", "bravo", "charlie", "delta", "echo")):
        create(api, demo_token, "port", network_id=net["id"], name=name,
               fixed_ips=[{"ip_address": f"172.20.0.{10 + i}"}],
               device_id="vm-a" if i < 2 else "", admin_state_up=i != 4)
    return {"net": net["id"], "subnet": sn["id"]}


def names(rows: list[dict[str, object]]) -> list[object]:
    return [r["name"] for r in rows]


def test_filters(api: Api, demo_token: str, lan: dict[str, str]) -> None:
    def q(query: str) -> list[object]:
        return sorted(names(listing(api, demo_token, "port", f"network_id={lan['net']}&"
                                    + query)))

    assert q("name=bravo") == ["bravo"]
    assert q("name=bravo&name=delta") == ["bravo", "delta"]
    assert q("device_id=vm-a") == ["alpha", "bravo"]
    assert q("device_id=") == ["charlie", "delta", "echo"]  # empty-string filtering
    assert q("admin_state_up=false") == ["echo"]
    assert q("fixed_ips=ip_address%3D172.20.0.12") == ["charlie"]
    assert q(f"fixed_ips=subnet_id%3D{lan['subnet']}&fixed_ips=ip_address%3D172.20.0.13"
             ) == ["delta"]
    assert q("fixed_ips=ip_address_substr%3D0.1") == ["alpha", "bravo", "charlie", "delta",
                                                      "echo"]
    assert q("fixed_ips=ip_address_substr%3D.14") == ["echo"]
    assert q("security_groups=whatever") == []
    mac = listing(api, demo_token, "port", "name=alpha")[0]["mac_address"]
    assert q(f"mac_address={mac}") == ["alpha"]
    project = listing(api, demo_token, "port", "name=alpha")[0]["project_id"]
    assert len(q(f"tenant_id={project}")) == 5 and len(q(f"project_id={project}")) == 5
    error(api.request("GET", f"{N}/ports?colour=red", demo_token), 400)
    error(api.request("GET", f"{N}/ports?fixed_ips=nonsense", demo_token), 400)
    error(api.request("GET", f"{N}/networks?mtu=big", demo_token), 400)
    assert names(listing(api, demo_token, "subnet", "cidr=172.20.0.0/24")) == [
        "listing-lan-subnet"]
    assert listing(api, demo_token, "subnet", "ip_version=6&cidr=172.20.0.0/24") == []


def test_fields_selects_attributes(api: Api, demo_token: str, lan: dict[str, str]) -> None:
    rows = listing(api, demo_token, "port",
                   f"network_id={lan['net']}&fields=id&fields=name&fields=nonexistent")
    assert rows and all(set(r) == {"id", "name"} for r in rows)
    r = api.request("GET", f"{N}/networks/{lan['net']}?fields=mtu", demo_token)
    assert r.json()["network"] == {"mtu": 1450}


def test_sorting(api: Api, demo_token: str, lan: dict[str, str]) -> None:
    rows = listing(api, demo_token, "port",
                   f"network_id={lan['net']}&sort_key=name&sort_dir=desc")
    assert names(rows) == ["echo", "delta", "charlie", "bravo", "alpha"]
    rows = listing(api, demo_token, "port", f"network_id={lan['net']}&sort_key=admin_state_up"
                   "&sort_key=name&sort_dir=asc&sort_dir=desc")
    assert names(rows) == ["echo", "delta", "charlie", "bravo", "alpha"]
    error(api.request("GET", f"{N}/ports?sort_key=fixed_ips", demo_token), 400)
    error(api.request("GET", f"{N}/ports?sort_key=name&sort_key=id&sort_dir=asc",
                      demo_token), 400)
    error(api.request("GET", f"{N}/ports?sort_key=name&sort_dir=up", demo_token), 400)


def test_paging_follows_links(api: Api, demo_token: str, lan: dict[str, str]) -> None:
    base = f"{N}/ports?network_id={lan['net']}&sort_key=name&limit=2"
    r = api.request("GET", base, demo_token)
    body = r.json()
    assert names(body["ports"]) == ["alpha", "bravo"]
    links = {link["rel"]: link["href"] for link in body["ports_links"]}
    assert set(links) == {"next"}
    seen = names(body["ports"])
    pages = 1
    while "next" in links:
        url = urlsplit(links["next"])
        assert parse_qs(url.query)["limit"] == ["2"]
        r = api.request("GET", f"{url.path}?{url.query}", demo_token)
        body = r.json()
        seen += names(body["ports"])
        links = {link["rel"]: link["href"] for link in body.get("ports_links", [])}
        assert "previous" in links
        pages += 1
    assert seen == ["alpha", "bravo", "charlie", "delta", "echo"] and pages == 3
    # Back from the last page.
    url = urlsplit(links["previous"])
    assert parse_qs(url.query)["page_reverse"] == ["True"]
    back = api.request("GET", f"{url.path}?{url.query}", demo_token).json()
    assert names(back["ports"]) == ["charlie", "delta"]
    assert {link["rel"] for link in back["ports_links"]} == {"next", "previous"}
    error(api.request("GET", f"{base}&marker=no-such-port", demo_token), 400)
    error(api.request("GET", f"{N}/ports?limit=-1", demo_token), 400)
    everything = api.request("GET", f"{N}/ports?network_id={lan['net']}", demo_token).json()
    assert "ports_links" not in everything and len(everything["ports"]) == 5


def test_tags(api: Api, demo_token: str, lan: dict[str, str]) -> None:
    path = f"{N}/networks/{lan['net']}/tags"
    r = api.request("PUT", path, demo_token, json={"tags": ["red", "blue"]})
    assert r.status_code == 200 and r.json()["tags"] == ["blue", "red"]
    r = api.request("POST", path, demo_token, json={"tags": ["blue", "yellow"]})
    assert r.status_code == 201 and r.json()["tags"] == ["blue", "red", "yellow"]
    assert api.request("DELETE", f"{path}/yellow", demo_token).status_code == 204
    assert api.request("PUT", f"{path}/green", demo_token).status_code == 201
    assert api.request("GET", f"{path}/green", demo_token).status_code == 204
    error(api.request("GET", f"{path}/purple", demo_token), 404, "TagNotFound")
    assert api.request("GET", path, demo_token).json()["tags"] == ["blue", "green", "red"]
    other = create(api, demo_token, "network", name="untagged")

    def ids(query: str) -> set[object]:
        return {n["id"] for n in listing(api, demo_token, "network", query)}

    assert ids("tags=red,blue") == {lan["net"]}
    assert ids("tags=red,nothing") == set()
    assert ids("tags-any=nothing,green") == {lan["net"]}
    assert lan["net"] not in ids("not-tags=red") and other["id"] in ids("not-tags=red")
    assert api.request("DELETE", f"{path}/green", demo_token).status_code == 204
    error(api.request("DELETE", f"{path}/green", demo_token), 404)
    assert api.request("DELETE", path, demo_token).status_code == 204
    assert api.request("GET", path, demo_token).json()["tags"] == []
    r = api.request("PUT", path, demo_token, json={"tags": ["x" * 256]})
    error(r, 400)
    port = listing(api, demo_token, "port", "name=alpha")[0]
    r = api.request("PUT", f"{N}/ports/{port['id']}/tags/web", demo_token)
    assert r.status_code == 201
    assert listing(api, demo_token, "port", "tags=web")[0]["id"] == port["id"]


def test_quotas(api: Api, admin_token: str, demo_token: str) -> None:
    demo = project_id(api, admin_token, "demo")
    r = api.request("GET", f"{N}/quotas/{demo}", demo_token)
    assert r.json()["quota"]["network"] == 100 and r.json()["quota"]["port"] == 500
    details = api.request("GET", f"{N}/quotas/{demo}/details", demo_token).json()["quota"]
    assert details["network"]["used"] >= 1 and details["network"]["reserved"] == 0
    admin_project = project_id(api, admin_token, "admin")
    error(api.request("GET", f"{N}/quotas/{admin_project}", demo_token), 403)
    error(api.request("PUT", f"{N}/quotas/{demo}", demo_token,
                      json={"quota": {"network": 1}}), 403)
    token = user_in_project(api, admin_token, "quota-user", "quota-project")
    qp = project_id(api, admin_token, "quota-project")
    r = api.request("PUT", f"{N}/quotas/{qp}", admin_token, json={"quota": {"network": 1}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 1
    assert qp in {q["project_id"] for q in api.request("GET", f"{N}/quotas",
                                                       admin_token).json()["quotas"]}
    create(api, token, "network", name="only-one")
    r = api.request("POST", f"{N}/networks", token, json={"network": {"name": "two"}})
    body = error(r, 409, "OverQuota")
    assert body["message"] == "Quota exceeded for resources: ['network']."
    error(api.request("PUT", f"{N}/quotas/{qp}", admin_token,
                      json={"quota": {"networks": 1}}), 400)
    # `openstack quota set` checks the new limit against what is used; --force does not.
    error(api.request("PUT", f"{N}/quotas/{qp}", admin_token,
                      json={"quota": {"network": 0, "check_limit": True}}), 409,
          "InvalidQuotaValue")
    r = api.request("PUT", f"{N}/quotas/{qp}", admin_token,
                    json={"quota": {"network": 0, "force": True}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 0
    assert api.request("DELETE", f"{N}/quotas/{qp}", admin_token).status_code == 204
    create(api, token, "network", name="two")
    default = api.request("GET", f"{N}/quotas/{qp}/default", token).json()["quota"]
    assert default["subnet"] == 100


def test_availability_zones(api: Api, demo_token: str) -> None:
    r = api.request("GET", f"{N}/availability_zones", demo_token)
    zones = r.json()["availability_zones"]
    assert {"name": "nova", "resource": "network", "state": "available"} in zones
