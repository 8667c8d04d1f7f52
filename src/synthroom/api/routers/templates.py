"""A collaboration's ``templates``: propose (a new version), list, show, approve, revoke."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import Caller, Id, Limit, Offset, RoomDep
from ..schemas import ApprovalIn, TemplateIn, TemplateOut

router = APIRouter(tags=["templates"])


@router.post("/collaborations/{collaboration_id}/templates", status_code=201, response_model=TemplateOut)
def create_template(collaboration_id: Id, body: TemplateIn, room: RoomDep, actor: Caller) -> dict:
    return room.create_template(actor, collaboration_id, **body.model_dump())


@router.get("/collaborations/{collaboration_id}/templates", response_model=list[TemplateOut])
def list_templates(
    collaboration_id: Id, room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0
) -> list[dict]:
    return room.list_templates(actor, collaboration_id, limit=limit, offset=offset)


@router.get("/templates/{template_id}", response_model=TemplateOut)
def get_template(template_id: Id, room: RoomDep, actor: Caller) -> dict:
    return room.get_template(actor, template_id)


@router.post("/templates/{template_id}/approve", response_model=TemplateOut)
def approve(template_id: Id, body: ApprovalIn, room: RoomDep, actor: Caller) -> dict:
    return room.approve_template(actor, template_id, body.hash)


@router.delete("/templates/{template_id}/approve", response_model=TemplateOut)
def revoke(template_id: Id, room: RoomDep, actor: Caller) -> dict:
    return room.revoke_approval(actor, template_id)
