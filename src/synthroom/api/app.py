"""The REST API (FastAPI): every endpoint authenticates the caller by API key (header
``X-API-Key``) and the domain layer checks membership and abilities.

Errors: 401/403 not allowed, 404 no such object, 409 conflicts with the state (budget,
hashes), 422 bad input; the body is ``{"detail": "<one message>"}``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse

from .. import __version__
from ..errors import InputError
from ..room import Actor, Conflict, Forbidden, NotFound, Room, Worker, jobs, training
from .schemas import (ApprovalIn, AssociationIn, AssociationOut, AuditOut, CollaborationIn, CollaborationOut, JobOut,
                      MemberCreated, MemberIn, MemberOut, MeteringOut, ModelIn, ModelOut, TableIn, TableOut, TemplateIn,
                      TemplateOut)

_STATUS = ((Forbidden, 403), (NotFound, 404), (Conflict, 409), (InputError, 422))


def create_app(room: Room, worker: Worker | None = None) -> FastAPI:
    """The app over ``room``; ``worker`` (started with the app, stopped with it) runs jobs."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop(timeout=5)

    app = FastAPI(title="Synthroom clean room", version=__version__, lifespan=lifespan,
                  description="Multi-party clean room: approved SQL templates over members' tables, "
                              "differentially private synthetic results, models trained on them.")
    app.state.room, app.state.worker = room, worker

    for error, status in _STATUS:
        app.add_exception_handler(error, _handler(status))

    def caller(x_api_key: str | None = Header(None, description="Your member API key.")) -> Actor:
        return room.authenticate(x_api_key)

    @app.get("/health", tags=["server"])
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    @app.post("/members", tags=["members"], status_code=201, response_model=MemberCreated)
    def create_member(body: MemberIn, x_admin_key: str = Header(..., description="The server's admin key.")) -> dict:
        return room.create_member(x_admin_key, body.name, body.data_roots)

    @app.get("/me", tags=["members"], response_model=MemberOut)
    def me(actor: Actor = Depends(caller)) -> dict:
        return {"id": actor.id, "name": actor.name}

    @app.post("/collaborations", tags=["collaborations"], status_code=201, response_model=CollaborationOut)
    def create_collaboration(body: CollaborationIn, actor: Actor = Depends(caller)) -> dict:
        return room.create_collaboration(actor, body.name, [m.model_dump() for m in body.members], body.payer, body.retention_days)

    @app.get("/collaborations", tags=["collaborations"], response_model=list[CollaborationOut])
    def list_collaborations(actor: Actor = Depends(caller)) -> list[dict]:
        return room.list_collaborations(actor)

    @app.get("/collaborations/{collaboration_id}", tags=["collaborations"], response_model=CollaborationOut)
    def get_collaboration(collaboration_id: int, actor: Actor = Depends(caller)) -> dict:
        return room.get_collaboration(actor, collaboration_id)

    @app.post("/tables", tags=["tables"], status_code=201, response_model=TableOut)
    def configure_table(body: TableIn, actor: Actor = Depends(caller)) -> dict:
        return room.configure_table(actor, **body.model_dump())

    @app.get("/tables", tags=["tables"], response_model=list[TableOut])
    def list_tables(actor: Actor = Depends(caller)) -> list[dict]:
        return room.list_tables(actor)

    @app.get("/tables/{table_id}", tags=["tables"], response_model=TableOut)
    def get_table(table_id: int, actor: Actor = Depends(caller)) -> dict:
        return room.get_table(actor, table_id)

    @app.post("/collaborations/{collaboration_id}/associations", tags=["tables"], status_code=201, response_model=AssociationOut)
    def associate(collaboration_id: int, body: AssociationIn, actor: Actor = Depends(caller)) -> dict:
        return room.associate(actor, collaboration_id, body.table_id, body.name)

    @app.delete("/collaborations/{collaboration_id}/associations/{name}", tags=["tables"], response_model=AssociationOut)
    def dissociate(collaboration_id: int, name: str, actor: Actor = Depends(caller)) -> dict:
        return room.dissociate(actor, collaboration_id, name)

    @app.post("/collaborations/{collaboration_id}/templates", tags=["templates"], status_code=201, response_model=TemplateOut)
    def create_template(collaboration_id: int, body: TemplateIn, actor: Actor = Depends(caller)) -> dict:
        return room.create_template(actor, collaboration_id, **body.model_dump())

    @app.get("/collaborations/{collaboration_id}/templates", tags=["templates"], response_model=list[TemplateOut])
    def list_templates(collaboration_id: int, actor: Actor = Depends(caller)) -> list[dict]:
        return room.list_templates(actor, collaboration_id)

    @app.get("/templates/{template_id}", tags=["templates"], response_model=TemplateOut)
    def get_template(template_id: int, actor: Actor = Depends(caller)) -> dict:
        return room.get_template(actor, template_id)

    @app.post("/templates/{template_id}/approve", tags=["templates"], response_model=TemplateOut)
    def approve(template_id: int, body: ApprovalIn, actor: Actor = Depends(caller)) -> dict:
        return room.approve_template(actor, template_id, body.hash)

    @app.delete("/templates/{template_id}/approve", tags=["templates"], response_model=TemplateOut)
    def revoke(template_id: int, actor: Actor = Depends(caller)) -> dict:
        return room.revoke_approval(actor, template_id)

    @app.post("/templates/{template_id}/jobs", tags=["jobs"], status_code=202, response_model=JobOut)
    def start_job(template_id: int, actor: Actor = Depends(caller)) -> dict:
        return jobs.start_job(room, actor, template_id)

    @app.get("/collaborations/{collaboration_id}/jobs", tags=["jobs"], response_model=list[JobOut])
    def list_jobs(collaboration_id: int, actor: Actor = Depends(caller)) -> list[dict]:
        return jobs.list_jobs(room, actor, collaboration_id)

    @app.get("/jobs/{job_id}", tags=["jobs"], response_model=JobOut)
    def get_job(job_id: int, actor: Actor = Depends(caller)) -> dict:
        return jobs.get_job(room, actor, job_id)

    @app.get("/jobs/{job_id}/result", tags=["jobs"], response_class=FileResponse)
    def result(job_id: int, format: str = "csv", actor: Actor = Depends(caller)):
        return _file(jobs.result_path(room, actor, job_id, format))

    @app.get("/jobs/{job_id}/report", tags=["jobs"], response_class=FileResponse)
    def report(job_id: int, kind: str = "html", actor: Actor = Depends(caller)):
        return _file(jobs.report_path(room, actor, job_id, kind))

    @app.post("/jobs/{job_id}/models", tags=["models"], status_code=202, response_model=ModelOut)
    def train(job_id: int, body: ModelIn, actor: Actor = Depends(caller)) -> dict:
        return training.train_model(room, actor, job_id, body.trainer, body.script)

    @app.get("/jobs/{job_id}/models", tags=["models"], response_model=list[ModelOut])
    def list_models(job_id: int, actor: Actor = Depends(caller)) -> list[dict]:
        return training.list_models(room, actor, job_id)

    @app.get("/models/{model_id}", tags=["models"], response_model=ModelOut)
    def get_model(model_id: int, actor: Actor = Depends(caller)) -> dict:
        return training.get_model(room, actor, model_id)

    @app.get("/models/{model_id}/file", tags=["models"], response_class=FileResponse)
    def model_file(model_id: int, actor: Actor = Depends(caller)):
        return _file(training.model_file(room, actor, model_id))

    @app.get("/collaborations/{collaboration_id}/audit", tags=["audit"], response_model=AuditOut)
    def audit_log(collaboration_id: int, actor: Actor = Depends(caller)) -> dict:
        return jobs.audit_log(room, actor, collaboration_id)

    @app.get("/collaborations/{collaboration_id}/metering", tags=["audit"], response_model=MeteringOut)
    def metering(collaboration_id: int, actor: Actor = Depends(caller)) -> dict:
        return jobs.metering(room, actor, collaboration_id)

    return app


def _handler(status: int):
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handle


def _file(path: Path) -> FileResponse:
    if not path.exists():
        raise NotFound(f"{path.name} is missing from the job's artifacts")
    return FileResponse(path, filename=path.name)
