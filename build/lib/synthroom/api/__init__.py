"""The clean room's REST API (FastAPI) over :mod:`synthroom.room`."""

from .app import create_app

__all__ = ["create_app"]
