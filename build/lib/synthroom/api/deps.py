"""What every router shares: the room and the caller as FastAPI dependencies, the id and paging
parameters, and the answer for a file.

The room is the one :func:`synthroom.api.create_app` was given (kept in ``app.state.room``); the
caller is the member whose API key (header ``X-API-Key``) the room recognises.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse

from ..room import Actor, NotFound, Room
from ..room.service import MAX_ID


def get_room(request: Request) -> Room:
    """The room this app serves."""
    return request.app.state.room


RoomDep = Annotated[Room, Depends(get_room)]


def get_caller(room: RoomDep, x_api_key: str | None = Header(None, description="Your member API key.")) -> Actor:
    """The member whose key the request carries (403 without a valid one)."""
    return room.authenticate(x_api_key)


Caller = Annotated[Actor, Depends(get_caller)]
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="An id (1 to 2^63-1).")]
Limit = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Items per page (default: the server's page size).")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip.")]


def file_response(path: FilePath) -> FileResponse:
    """The file at ``path`` as a download; 404 when it is gone (e.g. purged by retention)."""
    if not path.exists():
        raise NotFound(f"{path.name} is missing from the job's artifacts")
    return FileResponse(path, filename=path.name)
