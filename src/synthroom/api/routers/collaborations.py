"""``/collaborations`` and ``/invitations``: create, list, accept, decline, show."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import Caller, Id, Limit, Offset, RoomDep
from ..schemas import AcceptIn, CollaborationIn, CollaborationOut, DeclinedOut

router = APIRouter(tags=["collaborations"])


@router.post("/collaborations", status_code=201, response_model=CollaborationOut)
def create_collaboration(body: CollaborationIn, room: RoomDep, actor: Caller) -> dict:
    return room.create_collaboration(
        actor,
        body.name,
        [m.model_dump() for m in body.members],
        body.payer,
        body.retention_days,
        body.model_policy,
        engine=body.engine,
    )


@router.get("/collaborations", response_model=list[CollaborationOut])
def list_collaborations(room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0) -> list[dict]:
    return room.list_collaborations(actor, limit=limit, offset=offset)


@router.get("/invitations", response_model=list[CollaborationOut])
def invitations(room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0) -> list[dict]:
    """Collaborations you are invited to and have not answered yet."""
    return room.invitations(actor, limit=limit, offset=offset)


@router.post("/collaborations/{collaboration_id}/accept", response_model=CollaborationOut)
def accept(collaboration_id: Id, room: RoomDep, actor: Caller, body: AcceptIn | None = None) -> dict:
    """Accept your invitation; the paying member accepts paying with ``{"pay": true}``."""
    return room.accept_invitation(actor, collaboration_id, pay=bool(body and body.pay))


@router.post("/collaborations/{collaboration_id}/decline", response_model=DeclinedOut)
def decline(collaboration_id: Id, room: RoomDep, actor: Caller) -> dict:
    return room.decline_invitation(actor, collaboration_id)


@router.get("/collaborations/{collaboration_id}", response_model=CollaborationOut)
def get_collaboration(collaboration_id: Id, room: RoomDep, actor: Caller) -> dict:
    return room.get_collaboration(actor, collaboration_id)
