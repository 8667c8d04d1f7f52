"""The REST API (FastAPI): every endpoint authenticates the caller by API key (header
``X-API-Key``) and the domain layer checks membership and abilities.

Errors: 403 not allowed, 404 no such object (also one the caller may not see: the two are
answered alike), 409 conflicts with the state (budget, hashes, consent), 413 a body over the
server's limit, 422 bad input (ids outside 1..2^63-1, control characters, limits); the body is
``{"detail": "<one message>"}``. An unexpected error answers 500 with a fixed message (the
detail goes to the server's log only). List endpoints take ``limit`` and ``offset``.

Layout: this module builds the app (error handlers, the body limit, the worker's lifespan); the
endpoints live in :mod:`synthroom.api.routers`, one module per resource, and share the room, the
caller and the id/paging parameters through :mod:`synthroom.api.deps`.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__, web
from ..errors import InputError
from ..room import Conflict, Forbidden, NotFound, Room, Worker
from .routers import ROUTERS

_STATUS = ((Forbidden, 403), (NotFound, 404), (Conflict, 409), (InputError, 422))
INTERNAL = "internal error: the request could not be completed (the operator's log has the detail)"
log = logging.getLogger("synthroom.api")


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

    app = FastAPI(
        title="Synthroom clean room",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Multi-party clean room: approved SQL templates over members' tables, "
        "differentially private synthetic results, models trained on them.",
    )
    app.state.room, app.state.worker = room, worker

    for error, status in _STATUS:
        app.add_exception_handler(error, _handler(status))
    app.add_exception_handler(Exception, _internal)
    app.add_middleware(BodyLimit, limit=lambda: room.settings.max_body_bytes)

    for router in ROUTERS:
        app.include_router(router)
    web.install(app)  # the console at /, its assets, and the API docs at /docs and /redoc
    return app


def _handler(status: int):
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handle


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    """No traceback, path or server detail reaches a member: a fixed message; the log has the rest."""
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": INTERNAL}, status_code=500)
