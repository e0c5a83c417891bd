"""gureum/roles.py: the reader/writer/admin checks the volume and network policies
are made of, each refusing in its own family's words."""

from __future__ import annotations

import pytest

from gureum.context import RequestContext
from gureum.errors import Forbidden
from gureum.network import policy as network_policy
from gureum.roles import owns
from gureum.volume import policy as volume_policy


def ctx(*roles: str, project: str | None = "p1") -> RequestContext:
    return RequestContext(user_id="u", project_id=project, roles=frozenset(roles))


@pytest.mark.parametrize("check, passes", [
    ("reader", {"reader", "member", "admin"}),
    ("writer", {"member", "admin"}),
    ("admin", {"admin"}),
])
def test_each_check_passes_its_roles_and_refuses_the_rest(check: str, passes: set[str]
                                                          ) -> None:
    for policy in (volume_policy, network_policy):
        for role in ("reader", "member", "admin", "other"):
            caller = ctx(role)
            if role in passes:
                assert getattr(policy, check)(caller, "rule") is caller
            else:
                with pytest.raises(Forbidden):
                    getattr(policy, check)(caller, "rule")
        with pytest.raises(Forbidden):
            getattr(policy, check)(None, "rule")


def test_a_refusal_is_in_the_family_s_words() -> None:
    with pytest.raises(Forbidden) as cinder:
        volume_policy.writer(ctx("reader"), "volume:create")
    assert str(cinder.value) == "Policy doesn't allow volume:create to be performed."
    with pytest.raises(Forbidden) as neutron:
        network_policy.writer(ctx("reader"), "create_network")
    assert str(neutron.value) == "rule:create_network is disallowed by policy"
    assert neutron.value.details["neutron_type"] == "PolicyNotAuthorized"


def test_owns_is_admin_or_the_same_project() -> None:
    assert owns(ctx("admin", project=None), "p2")
    assert owns(ctx("member"), "p1") and not owns(ctx("member"), "p2")
    assert not owns(ctx("member", project=None), "")
    assert volume_policy.owns is owns and network_policy.owns is owns
