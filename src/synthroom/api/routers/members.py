"""``/members`` (the admin creates members) and ``/me``."""

from __future__ import annotations

from fastapi import APIRouter, Header

from ..deps import Caller, RoomDep
from ..schemas import MemberCreated, MemberIn, MemberOut

router = APIRouter(tags=["members"])


@router.post("/members", status_code=201, response_model=MemberCreated)
def create_member(
    body: MemberIn, room: RoomDep, x_admin_key: str = Header(..., description="The server's admin key.")
) -> dict:
    return room.create_member(x_admin_key, body.name, body.data_roots)


@router.get("/me", response_model=MemberOut)
def me(actor: Caller) -> dict:
    return {"id": actor.id, "name": actor.name}
