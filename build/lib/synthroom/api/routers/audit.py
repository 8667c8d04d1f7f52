"""A collaboration's ``audit`` chain (page, signed head, proof) and its ``metering``."""

from __future__ import annotations

from fastapi import APIRouter

from ...room import jobs
from ..deps import Caller, Id, Limit, Offset, RoomDep
from ..schemas import AuditOut, HeadIn, HeadOut, HeadProofOut, MeteringOut

router = APIRouter(tags=["audit"])


@router.get("/collaborations/{collaboration_id}/audit", response_model=AuditOut)
def audit_log(collaboration_id: Id, room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0) -> dict:
    """One page of entries; ``verified`` and ``problem`` are about the whole chain."""
    return jobs.audit_log(room, actor, collaboration_id, limit=limit, offset=offset)


@router.get("/collaborations/{collaboration_id}/audit/head", response_model=HeadOut)
def audit_head(collaboration_id: Id, room: RoomDep, actor: Caller) -> dict:
    """The chain's head signed by the server: keep it to check later that the chain was not rewritten."""
    return room.audit_head(actor, collaboration_id)


@router.post("/collaborations/{collaboration_id}/audit/verify", response_model=HeadProofOut)
def audit_verify(collaboration_id: Id, body: HeadIn, room: RoomDep, actor: Caller) -> dict:
    """Whether the current chain verifies and still holds a head you kept, where it was."""
    return room.prove_audit_head(actor, collaboration_id, body.model_dump())


@router.get("/collaborations/{collaboration_id}/metering", response_model=MeteringOut)
def metering(collaboration_id: Id, room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0) -> dict:
    return jobs.metering(room, actor, collaboration_id, limit=limit, offset=offset)
