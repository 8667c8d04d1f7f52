"""``/tables`` (a member's configured tables) and a collaboration's ``associations``."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import Caller, Id, Limit, Offset, RoomDep
from ..schemas import AssociationIn, AssociationOut, TableIn, TableOut

router = APIRouter(tags=["tables"])


@router.post("/tables", status_code=201, response_model=TableOut)
def configure_table(body: TableIn, room: RoomDep, actor: Caller) -> dict:
    return room.configure_table(actor, **body.model_dump())


@router.get("/tables", response_model=list[TableOut])
def list_tables(room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0) -> list[dict]:
    return room.list_tables(actor, limit=limit, offset=offset)


@router.get("/tables/{table_id}", response_model=TableOut)
def get_table(table_id: Id, room: RoomDep, actor: Caller) -> dict:
    return room.get_table(actor, table_id)


@router.post("/tables/{table_id}/refresh", response_model=TableOut)
def refresh_table(table_id: Id, room: RoomDep, actor: Caller) -> dict:
    return room.refresh_table(actor, table_id)


@router.post("/collaborations/{collaboration_id}/associations", status_code=201, response_model=AssociationOut)
def associate(collaboration_id: Id, body: AssociationIn, room: RoomDep, actor: Caller) -> dict:
    return room.associate(actor, collaboration_id, body.table_id, body.name)


@router.delete("/collaborations/{collaboration_id}/associations/{name}", response_model=AssociationOut)
def dissociate(collaboration_id: Id, name: str, room: RoomDep, actor: Caller) -> dict:
    return room.dissociate(actor, collaboration_id, name)
