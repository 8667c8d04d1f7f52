"""``models`` trained on a job's synthetic data: train, list, show, download."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ...room import training
from ..deps import Caller, Id, Limit, Offset, RoomDep, file_response
from ..schemas import ModelIn, ModelOut

router = APIRouter(tags=["models"])


@router.post("/jobs/{job_id}/models", status_code=202, response_model=ModelOut)
def train(job_id: Id, body: ModelIn, room: RoomDep, actor: Caller) -> dict:
    return training.train_model(room, actor, job_id, body.trainer, body.script, body.params)


@router.get("/jobs/{job_id}/models", response_model=list[ModelOut])
def list_models(job_id: Id, room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0) -> list[dict]:
    return training.list_models(room, actor, job_id, limit=limit, offset=offset)


@router.get("/models/{model_id}", response_model=ModelOut)
def get_model(model_id: Id, room: RoomDep, actor: Caller) -> dict:
    return training.get_model(room, actor, model_id)


@router.get("/models/{model_id}/file", response_class=FileResponse)
def model_file(model_id: Id, room: RoomDep, actor: Caller) -> FileResponse:
    return file_response(training.model_file(room, actor, model_id))
