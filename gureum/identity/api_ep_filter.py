"""Endpoint groups and project-endpoint associations (/v3/OS-EP-FILTER/...)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gureum.api.web import Request, Response, Router, empty, json_response
from gureum.identity import endpoint_filter as ef
from gureum.identity import models as m
from gureum.identity import policy, schemas, service, views
from gureum.identity.api_admin import body_of, ident_of, one

router = Router()

EP = "/v3/OS-EP-FILTER"


# -- endpoint groups -------------------------------------------------------------------

@router.get(EP + "/endpoint_groups", tx=True)
def list_groups(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_endpoint_groups")
    stmt = select(m.EndpointGroup).order_by(m.EndpointGroup.name, m.EndpointGroup.id)
    name = req.arg("name")
    if name is not None:
        stmt = stmt.where(m.EndpointGroup.name == name)
    items = [views.endpoint_group(g, req.base_url) for g in s.scalars(stmt)]
    return json_response(views.collection(req.base_url, "OS-EP-FILTER/endpoint_groups",
                                          "endpoint_groups", items))


@router.post(EP + "/endpoint_groups", tx=True)
def create_group(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:create_endpoint_group")
    g = ef.create_group(ident_of(req), s,
                        body_of(req, schemas.endpoint_group_create, "endpoint_group"))
    return one("endpoint_group", views.endpoint_group(g, req.base_url), 201)


@router.get(EP + "/endpoint_groups/{group_id}", tx=True)
def get_group(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:get_endpoint_group")
    g = ef.get_group(s, req.path_params["group_id"])
    return one("endpoint_group", views.endpoint_group(g, req.base_url))


@router.patch(EP + "/endpoint_groups/{group_id}", tx=True)
def update_group(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:update_endpoint_group")
    g = ef.update_group(ident_of(req), s, req.path_params["group_id"],
                        body_of(req, schemas.endpoint_group_update, "endpoint_group"))
    return one("endpoint_group", views.endpoint_group(g, req.base_url))


@router.delete(EP + "/endpoint_groups/{group_id}", tx=True)
def delete_group(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:delete_endpoint_group")
    ef.delete_group(ident_of(req), s, req.path_params["group_id"])
    return empty()


@router.get(EP + "/endpoint_groups/{group_id}/endpoints", tx=True)
def list_group_endpoints(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_endpoints_associated_with_endpoint_group")
    group_id = req.path_params["group_id"]
    items = [views.endpoint(e, req.base_url)
             for e in ef.group_endpoints(s, ef.get_group(s, group_id))]
    return json_response(views.collection(
        req.base_url, f"OS-EP-FILTER/endpoint_groups/{group_id}/endpoints", "endpoints",
        items))


@router.get(EP + "/endpoint_groups/{group_id}/projects", tx=True)
def list_group_projects(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_projects_associated_with_endpoint_group")
    group_id = req.path_params["group_id"]
    items = [views.project(p, req.base_url) for p in ef.group_projects(s, group_id)]
    return json_response(views.collection(
        req.base_url, f"OS-EP-FILTER/endpoint_groups/{group_id}/projects", "projects", items))


GROUP_PROJECT = EP + "/endpoint_groups/{group_id}/projects/{project_id}"


@router.put(GROUP_PROJECT, tx=True)
def add_group_to_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:add_endpoint_group_to_project")
    ef.add_group_to_project(ident_of(req), s, req.path_params["group_id"],
                            req.path_params["project_id"])
    return empty()


@router.get(GROUP_PROJECT, tx=True)
def get_group_in_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:get_endpoint_group_in_project")
    group_id, project_id = req.path_params["group_id"], req.path_params["project_id"]
    ef.get_group_in_project(s, group_id, project_id)
    return one("project_endpoint_group", {
        "endpoint_group_id": group_id, "project_id": project_id,
        "links": {"self": f"{req.base_url}{GROUP_PROJECT.format(**req.path_params)}"}})


@router.delete(GROUP_PROJECT, tx=True)
def remove_group_from_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:remove_endpoint_group_from_project")
    ef.remove_group_from_project(ident_of(req), s, req.path_params["group_id"],
                                 req.path_params["project_id"])
    return empty()


@router.get(EP + "/projects/{project_id}/endpoint_groups", tx=True)
def list_project_groups(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_endpoint_groups_for_project")
    project_id = req.path_params["project_id"]
    service.get_or_404(s, m.Project, project_id, "project")
    items = [views.endpoint_group(g, req.base_url) for g in ef.project_groups(s, project_id)]
    return json_response(views.collection(
        req.base_url, f"OS-EP-FILTER/projects/{project_id}/endpoint_groups",
        "endpoint_groups", items))


# -- endpoints of a project -------------------------------------------------------------

@router.get(EP + "/projects/{project_id}/endpoints", tx=True)
def list_project_endpoints(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_endpoints_for_project")
    project_id = req.path_params["project_id"]
    service.get_or_404(s, m.Project, project_id, "project")
    items = [views.endpoint(e, req.base_url) for e in ef.project_endpoints(s, project_id)]
    return json_response(views.collection(
        req.base_url, f"OS-EP-FILTER/projects/{project_id}/endpoints", "endpoints", items))


PROJECT_ENDPOINT = EP + "/projects/{project_id}/endpoints/{endpoint_id}"


@router.put(PROJECT_ENDPOINT, tx=True)
def add_endpoint_to_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:add_endpoint_to_project")
    ef.add_endpoint_to_project(ident_of(req), s, req.path_params["endpoint_id"],
                               req.path_params["project_id"])
    return empty()


@router.get(PROJECT_ENDPOINT, tx=True)
def check_endpoint_in_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:check_endpoint_in_project")
    ef.get_project_endpoint(s, req.path_params["endpoint_id"], req.path_params["project_id"])
    return empty()


@router.delete(PROJECT_ENDPOINT, tx=True)
def remove_endpoint_from_project(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:remove_endpoint_from_project")
    ef.remove_endpoint_from_project(ident_of(req), s, req.path_params["endpoint_id"],
                                    req.path_params["project_id"])
    return empty()


@router.get(EP + "/endpoints/{endpoint_id}/projects", tx=True)
def list_endpoint_projects(req: Request, s: Session) -> Response:
    policy.admin(req.context, "identity:list_projects_for_endpoint")
    endpoint_id = req.path_params["endpoint_id"]
    items = [views.project(p, req.base_url) for p in ef.endpoint_projects(s, endpoint_id)]
    return json_response(views.collection(
        req.base_url, f"OS-EP-FILTER/endpoints/{endpoint_id}/projects", "projects", items))
