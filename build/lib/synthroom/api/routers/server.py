"""``/health``: whether the server answers, and its version (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter

from ... import __version__

router = APIRouter(tags=["server"])


@router.get("/health")
def health() -> dict:
    return {"status": "ok", "version": __version__}
