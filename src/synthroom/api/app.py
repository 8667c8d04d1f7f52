"""The REST API (FastAPI): every endpoint authenticates the caller by API key (header
``X-API-Key``) and the domain layer checks membership and abilities.

Errors: 403 not allowed, 404 no such object (also one the caller may not see: the two are
answered alike), 409 conflicts with the state (budget, hashes, consent), 413 a body over the
server's limit, 422 bad input (ids outside 1..2^63-1, control characters, limits); the body is
``{"detail": "<one message>"}``. An unexpected error answers 500 with a fixed message (the
detail goes to the server's log only). List endpoints take ``limit`` and ``offset``.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Callable

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import InputError
from ..room import Actor, Conflict, Forbidden, NotFound, Room, Worker, jobs, training
from ..room.service import MAX_ID
from .schemas import (AcceptIn, ApprovalIn, AssociationIn, AssociationOut, AuditOut, CollaborationIn,
                      CollaborationOut, DeclinedOut, HeadIn, HeadOut, HeadProofOut, JobOut, MemberCreated, MemberIn,
                      MemberOut, MeteringOut, ModelIn, ModelOut, TableIn, TableOut, TemplateIn, TemplateOut)

_STATUS = ((Forbidden, 403), (NotFound, 404), (Conflict, 409), (InputError, 422))
INTERNAL = "internal error: the request could not be completed (the operator's log has the detail)"
log = logging.getLogger("synthroom.api")

Id = Annotated[int, Path(ge=1, le=MAX_ID, description="An id (1 to 2^63-1).")]
Limit = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Items per page (default: the server's page size).")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip.")]


class BodyLimit:
    """Refuse a request body over ``limit()`` bytes with 413: at once when its Content-Length says
    so (nothing is read), else as soon as the bytes received pass the limit (a chunked body is
    never read whole)."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit()
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await JSONResponse({"detail": _too_large(limit)}, status_code=413)(scope, receive, send)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than this server's limit of {limit:,} bytes (max_body_bytes)"


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
    app.add_exception_handler(Exception, _internal)
    app.add_middleware(BodyLimit, limit=lambda: room.settings.max_body_bytes)

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
    def list_collaborations(limit: Limit = None, offset: Offset = 0, actor: Actor = Depends(caller)) -> list[dict]:
        return room.list_collaborations(actor, limit=limit, offset=offset)

    @app.get("/invitations", tags=["collaborations"], response_model=list[CollaborationOut])
    def invitations(limit: Limit = None, offset: Offset = 0, actor: Actor = Depends(caller)) -> list[dict]:
        """Collaborations you are invited to and have not answered yet."""
        return room.invitations(actor, limit=limit, offset=offset)

    @app.post("/collaborations/{collaboration_id}/accept", tags=["collaborations"], response_model=CollaborationOut)
    def accept(collaboration_id: Id, body: AcceptIn | None = None, actor: Actor = Depends(caller)) -> dict:
        """Accept your invitation; the paying member accepts paying with ``{"pay": true}``."""
        return room.accept_invitation(actor, collaboration_id, pay=bool(body and body.pay))

    @app.post("/collaborations/{collaboration_id}/decline", tags=["collaborations"], response_model=DeclinedOut)
    def decline(collaboration_id: Id, actor: Actor = Depends(caller)) -> dict:
        return room.decline_invitation(actor, collaboration_id)

    @app.get("/collaborations/{collaboration_id}", tags=["collaborations"], response_model=CollaborationOut)
    def get_collaboration(collaboration_id: Id, actor: Actor = Depends(caller)) -> dict:
        return room.get_collaboration(actor, collaboration_id)

    @app.post("/tables", tags=["tables"], status_code=201, response_model=TableOut)
    def configure_table(body: TableIn, actor: Actor = Depends(caller)) -> dict:
        return room.configure_table(actor, **body.model_dump())

    @app.get("/tables", tags=["tables"], response_model=list[TableOut])
    def list_tables(limit: Limit = None, offset: Offset = 0, actor: Actor = Depends(caller)) -> list[dict]:
        return room.list_tables(actor, limit=limit, offset=offset)

    @app.get("/tables/{table_id}", tags=["tables"], response_model=TableOut)
    def get_table(table_id: Id, actor: Actor = Depends(caller)) -> dict:
        return room.get_table(actor, table_id)

    @app.post("/tables/{table_id}/refresh", tags=["tables"], response_model=TableOut)
    def refresh_table(table_id: int, actor: Actor = Depends(caller)) -> dict:
        return room.refresh_table(actor, table_id)

    @app.post("/collaborations/{collaboration_id}/associations", tags=["tables"], status_code=201, response_model=AssociationOut)
    def associate(collaboration_id: Id, body: AssociationIn, actor: Actor = Depends(caller)) -> dict:
        return room.associate(actor, collaboration_id, body.table_id, body.name)

    @app.delete("/collaborations/{collaboration_id}/associations/{name}", tags=["tables"], response_model=AssociationOut)
    def dissociate(collaboration_id: Id, name: str, actor: Actor = Depends(caller)) -> dict:
        return room.dissociate(actor, collaboration_id, name)

    @app.post("/collaborations/{collaboration_id}/templates", tags=["templates"], status_code=201, response_model=TemplateOut)
    def create_template(collaboration_id: Id, body: TemplateIn, actor: Actor = Depends(caller)) -> dict:
        return room.create_template(actor, collaboration_id, **body.model_dump())

    @app.get("/collaborations/{collaboration_id}/templates", tags=["templates"], response_model=list[TemplateOut])
    def list_templates(collaboration_id: Id, limit: Limit = None, offset: Offset = 0,
                       actor: Actor = Depends(caller)) -> list[dict]:
        return room.list_templates(actor, collaboration_id, limit=limit, offset=offset)

    @app.get("/templates/{template_id}", tags=["templates"], response_model=TemplateOut)
    def get_template(template_id: Id, actor: Actor = Depends(caller)) -> dict:
        return room.get_template(actor, template_id)

    @app.post("/templates/{template_id}/approve", tags=["templates"], response_model=TemplateOut)
    def approve(template_id: Id, body: ApprovalIn, actor: Actor = Depends(caller)) -> dict:
        return room.approve_template(actor, template_id, body.hash)

    @app.delete("/templates/{template_id}/approve", tags=["templates"], response_model=TemplateOut)
    def revoke(template_id: Id, actor: Actor = Depends(caller)) -> dict:
        return room.revoke_approval(actor, template_id)

    @app.post("/templates/{template_id}/jobs", tags=["jobs"], status_code=202, response_model=JobOut)
    def start_job(template_id: Id, actor: Actor = Depends(caller)) -> dict:
        return jobs.start_job(room, actor, template_id)

    @app.get("/collaborations/{collaboration_id}/jobs", tags=["jobs"], response_model=list[JobOut])
    def list_jobs(collaboration_id: Id, limit: Limit = None, offset: Offset = 0,
                  actor: Actor = Depends(caller)) -> list[dict]:
        return jobs.list_jobs(room, actor, collaboration_id, limit=limit, offset=offset)

    @app.get("/jobs/{job_id}", tags=["jobs"], response_model=JobOut)
    def get_job(job_id: Id, actor: Actor = Depends(caller)) -> dict:
        return jobs.get_job(room, actor, job_id)

    @app.get("/jobs/{job_id}/result", tags=["jobs"], response_class=FileResponse)
    def result(job_id: Id, format: str = "csv", actor: Actor = Depends(caller)):
        return _file(jobs.result_path(room, actor, job_id, format))

    @app.get("/jobs/{job_id}/report", tags=["jobs"], response_class=FileResponse)
    def report(job_id: Id, kind: str = "html", actor: Actor = Depends(caller)):
        return _file(jobs.report_path(room, actor, job_id, kind))

    @app.post("/jobs/{job_id}/models", tags=["models"], status_code=202, response_model=ModelOut)
    def train(job_id: Id, body: ModelIn, actor: Actor = Depends(caller)) -> dict:
        return training.train_model(room, actor, job_id, body.trainer, body.script)

    @app.get("/jobs/{job_id}/models", tags=["models"], response_model=list[ModelOut])
    def list_models(job_id: Id, limit: Limit = None, offset: Offset = 0, actor: Actor = Depends(caller)) -> list[dict]:
        return training.list_models(room, actor, job_id, limit=limit, offset=offset)

    @app.get("/models/{model_id}", tags=["models"], response_model=ModelOut)
    def get_model(model_id: Id, actor: Actor = Depends(caller)) -> dict:
        return training.get_model(room, actor, model_id)

    @app.get("/models/{model_id}/file", tags=["models"], response_class=FileResponse)
    def model_file(model_id: Id, actor: Actor = Depends(caller)):
        return _file(training.model_file(room, actor, model_id))

    @app.get("/collaborations/{collaboration_id}/audit", tags=["audit"], response_model=AuditOut)
    def audit_log(collaboration_id: Id, limit: Limit = None, offset: Offset = 0, actor: Actor = Depends(caller)) -> dict:
        """One page of entries; ``verified`` and ``problem`` are about the whole chain."""
        return jobs.audit_log(room, actor, collaboration_id, limit=limit, offset=offset)

    @app.get("/collaborations/{collaboration_id}/audit/head", tags=["audit"], response_model=HeadOut)
    def audit_head(collaboration_id: Id, actor: Actor = Depends(caller)) -> dict:
        """The chain's head signed by the server: keep it to check later that the chain was not rewritten."""
        return room.audit_head(actor, collaboration_id)

    @app.post("/collaborations/{collaboration_id}/audit/verify", tags=["audit"], response_model=HeadProofOut)
    def audit_verify(collaboration_id: Id, body: HeadIn, actor: Actor = Depends(caller)) -> dict:
        """Whether the current chain verifies and still holds a head you kept, where it was."""
        return room.prove_audit_head(actor, collaboration_id, body.model_dump())

    @app.get("/collaborations/{collaboration_id}/metering", tags=["audit"], response_model=MeteringOut)
    def metering(collaboration_id: Id, limit: Limit = None, offset: Offset = 0, actor: Actor = Depends(caller)) -> dict:
        return jobs.metering(room, actor, collaboration_id, limit=limit, offset=offset)

    return app


def _handler(status: int):
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handle


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    """No traceback, path or server detail reaches a member: a fixed message; the log has the rest."""
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": INTERNAL}, status_code=500)


def _file(path: FilePath) -> FileResponse:
    if not path.exists():
        raise NotFound(f"{path.name} is missing from the job's artifacts")
    return FileResponse(path, filename=path.name)
