"""``inference``: a trained model scores its runner's own table; the predictions go to the
collaboration's inference receivers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ...room import inference
from ..deps import Caller, Id, Limit, Offset, RoomDep, file_response
from ..schemas import InferenceIn, InferenceOut

router = APIRouter(tags=["inference"])


@router.post("/models/{model_id}/inference", status_code=202, response_model=InferenceOut)
def start(model_id: Id, body: InferenceIn, room: RoomDep, actor: Caller) -> dict:
    return inference.start_inference(room, actor, model_id, body.table_id)


@router.get("/collaborations/{collaboration_id}/inference", response_model=list[InferenceOut])
def list_inference(
    collaboration_id: Id, room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0
) -> list[dict]:
    return inference.list_inference(room, actor, collaboration_id, limit=limit, offset=offset)


@router.get("/inference/{inference_id}", response_model=InferenceOut)
def get_inference(inference_id: Id, room: RoomDep, actor: Caller) -> dict:
    return inference.get_inference(room, actor, inference_id)


@router.get("/inference/{inference_id}/result", response_class=FileResponse)
def result(inference_id: Id, room: RoomDep, actor: Caller, format: str = "csv") -> FileResponse:
    return file_response(inference.inference_result(room, actor, inference_id, format))
