"""The calls Compute makes into Block Storage (gureum/volume/service.py)."""

from __future__ import annotations

import pytest

from gureum.errors import InvalidState, NotFound
from gureum.volume import service
from tests.functional.volume_helpers import create_volume, show, wait_for
from tests.harness import Api, InProcessCloud


def test_reserve_attach_detach_as_compute(api: Api, demo_token: str, cloud: InProcessCloud
                                          ) -> None:
    vol = create_volume(api, demo_token, name="for-compute")
    wait_for(api, demo_token, "volume", vol["id"], "available")
    project = show(api, demo_token, vol["id"])["os-vol-tenant-attr:tenant_id"]
    assert cloud.cloud is not None
    db = cloud.cloud.db
    server = "5c2e8c7a-0000-4000-8000-00000000000a"
    with db.session() as s:
        with pytest.raises(NotFound):
            service.get_for_attach(s, "another-project", vol["id"])
        service.get_for_attach(s, project, vol["id"])
        service.reserve(s, vol["id"], server)
    with db.session() as s, pytest.raises(InvalidState):
        service.reserve(s, vol["id"], "5c2e8c7a-0000-4000-8000-00000000000b")
    with db.session() as s:
        info = service.connection_info(s, vol["id"], "c01")
        assert info["driver_volume_type"] == "file"
        assert info["data"]["volume_id"] == vol["id"]
        assert info["data"]["format"] in ("qcow2", "raw")
        attachment_id = service.attach(s, vol["id"], server, "c01", "/dev/vdb")
    shown = show(api, demo_token, vol["id"])
    assert shown["status"] == "in-use"
    assert shown["attachments"][0]["attachment_id"] == attachment_id
    with db.session() as s:
        assert [a.id for a in service.attachments_of(s, server)] == [attachment_id]
        service.begin_detaching(s, vol["id"])
        service.detach(s, vol["id"], attachment_id)
    assert show(api, demo_token, vol["id"])["status"] == "available"
    # unreserve puts a reserved volume back
    with db.session() as s:
        service.reserve(s, vol["id"], server)
        service.unreserve(s, vol["id"], server)
    assert show(api, demo_token, vol["id"])["status"] == "available"
