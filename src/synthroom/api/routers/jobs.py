"""Synthetic-data ``jobs``: start one on an approved template, list, show, download the result
and the report."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ...room import jobs
from ..deps import Caller, Id, Limit, Offset, RoomDep, file_response
from ..schemas import JobOut

router = APIRouter(tags=["jobs"])


@router.post("/templates/{template_id}/jobs", status_code=202, response_model=JobOut)
def start_job(template_id: Id, room: RoomDep, actor: Caller) -> dict:
    return jobs.start_job(room, actor, template_id)


@router.get("/collaborations/{collaboration_id}/jobs", response_model=list[JobOut])
def list_jobs(
    collaboration_id: Id, room: RoomDep, actor: Caller, limit: Limit = None, offset: Offset = 0
) -> list[dict]:
    return jobs.list_jobs(room, actor, collaboration_id, limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: Id, room: RoomDep, actor: Caller) -> dict:
    return jobs.get_job(room, actor, job_id)


@router.get("/jobs/{job_id}/result", response_class=FileResponse)
def result(job_id: Id, room: RoomDep, actor: Caller, format: str = "csv") -> FileResponse:
    return file_response(jobs.result_path(room, actor, job_id, format))


@router.get("/jobs/{job_id}/report", response_class=FileResponse)
def report(job_id: Id, room: RoomDep, actor: Caller, kind: str = "html") -> FileResponse:
    return file_response(jobs.report_path(room, actor, job_id, kind))
