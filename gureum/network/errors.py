"""Neutron's error types as domain errors.

Each helper returns a gureum domain error carrying Neutron's exception name in
``details["neutron_type"]``; ``gureum.api.faults.network_fault`` puts it in the
``NeutronError`` body, so clients see the same type and message Neutron sends.
"""

from __future__ import annotations

from gureum.errors import Conflict, Forbidden, InvalidInput, NotFound


def not_found(kind: str, ident: str) -> NotFound:
    """NetworkNotFound, SubnetNotFound, PortNotFound… ("Network X could not be found.")."""
    label = {"network": "Network", "subnet": "Subnet", "port": "Port",
             "subnetpool": "Subnet pool", "qos_policy": "QoS policy"}.get(kind, kind)
    neutron = {"network": "NetworkNotFound", "subnet": "SubnetNotFound",
               "port": "PortNotFound", "subnetpool": "SubnetPoolNotFound",
               "qos_policy": "QosPolicyNotFound"}.get(kind, "HTTPNotFound")
    return NotFound(f"{label} {ident} could not be found.", kind=kind, neutron_type=neutron)


def bad_request(message: str, field: str | None = None) -> InvalidInput:
    """HTTPBadRequest: attribute validation ("Invalid input for name. Reason: …")."""
    return InvalidInput(message, field=field, neutron_type="HTTPBadRequest")


def invalid_attribute(field: str, reason: str) -> InvalidInput:
    return bad_request(f"Invalid input for {field}. Reason: {reason}.", field)


def invalid_input(message: str, field: str | None = None) -> InvalidInput:
    """InvalidInput: "Invalid input for operation: <message>."."""
    return InvalidInput(f"Invalid input for operation: {message}.", field=field,
                        neutron_type="InvalidInput")


def typed_bad_request(neutron_type: str, message: str, field: str | None = None
                      ) -> InvalidInput:
    return InvalidInput(message, field=field, neutron_type=neutron_type)


def conflict(neutron_type: str, message: str) -> Conflict:
    return Conflict(message, neutron_type=neutron_type)


def policy(rule: str) -> Forbidden:
    return Forbidden(f"rule:{rule} is disallowed by policy", neutron_type="PolicyNotAuthorized")


def read_only(field: str) -> InvalidInput:
    return bad_request(f"Cannot update read-only attribute {field}", field)


def ip_already_allocated(ip: str, subnet_id: str) -> Conflict:
    return conflict("IpAddressAlreadyAllocated",
                    f"IP address {ip} already allocated in subnet {subnet_id}")


def ip_generation_failure(network_id: str) -> Conflict:
    return conflict("IpAddressGenerationFailure",
                    f"No more IP addresses available on network {network_id}.")


def mac_in_use(network_id: str, mac: str) -> Conflict:
    return conflict("MacAddressInUse", f"Unable to complete operation for network "
                    f"{network_id}. The mac address {mac} is in use.")


def network_in_use(network_id: str) -> Conflict:
    return conflict("NetworkInUse", f"Unable to complete operation on network {network_id}. "
                    "There are one or more ports still in use on the network.")


def subnet_in_use(subnet_id: str) -> Conflict:
    return conflict("SubnetInUse", f"Unable to complete operation on subnet {subnet_id}: "
                    "One or more ports have an IP allocation from this subnet.")


def over_quota(resource: str) -> Conflict:
    return conflict("OverQuota", f"Quota exceeded for resources: ['{resource}'].")


def typed_not_found(neutron_type: str, message: str) -> NotFound:
    return NotFound(message, neutron_type=neutron_type)
