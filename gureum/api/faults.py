"""One error → response mapper per API family.

Each function turns a domain error into the fault body that family's upstream
service sends, so clients parse our errors exactly as they parse OpenStack's.
"""

from __future__ import annotations

from gureum.api.web import Request, Response, json_response
from gureum.errors import GureumError, MethodNotAllowed, Unauthorized


def _common_headers(err: GureumError, req: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(err, MethodNotAllowed) and err.allowed:
        headers["allow"] = ", ".join(err.allowed)
    if isinstance(err, Unauthorized):
        identity = req.host_url + "/identity"
        headers["www-authenticate"] = f'Keystone uri="{identity}"'
    return headers


def identity_fault(err: GureumError, req: Request) -> Response:
    """Keystone: {"error": {"code", "title", "message"}}."""
    body = {"error": {"code": err.status, "title": err.title, "message": err.message}}
    return json_response(body, err.status, _common_headers(err, req))


# Nova's fault names by status (nova/api/openstack/wsgi.py: Fault._fault_names).
_NOVA_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def compute_fault(err: GureumError, req: Request) -> Response:
    """Nova and Cinder: {"itemNotFound": {"code", "message"}}."""
    if isinstance(err, Unauthorized):
        # keystonemiddleware answers before the service does.
        return identity_fault(err, req)
    name = _NOVA_NAMES.get(err.status, "computeFault")
    return json_response({name: {"code": err.status, "message": err.message}}, err.status,
                         _common_headers(err, req))


def image_fault(err: GureumError, req: Request) -> Response:
    """Glance (webob): {"code": "404 Not Found", "title", "message"}."""
    if isinstance(err, Unauthorized):
        return identity_fault(err, req)
    body = {"code": f"{err.status} {err.title}", "title": err.title, "message": err.message}
    return json_response(body, err.status, _common_headers(err, req))


def network_fault(err: GureumError, req: Request) -> Response:
    """Neutron: {"NeutronError": {"type", "message", "detail"}}."""
    if isinstance(err, Unauthorized):
        return identity_fault(err, req)
    kind = err.details.get("neutron_type") or {
        400: "HTTPBadRequest", 403: "HTTPForbidden", 404: "HTTPNotFound",
        405: "HTTPMethodNotAllowed", 409: "HTTPConflict", 413: "OverQuota",
    }.get(err.status, "HTTPInternalServerError")
    body = {"NeutronError": {"type": kind, "message": err.message, "detail": ""}}
    return json_response(body, err.status, _common_headers(err, req))
