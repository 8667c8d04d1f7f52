"""The progress callback every long step takes, ``progress(phase, message)``, and the silent one.

The synthesizer, the gate and the evaluation report their phases through it (the CLI shows a
spinner, the room a job's phase); :func:`quiet` is the default when no one listens.
"""

from __future__ import annotations

from typing import Callable

Progress = Callable[[str, str], None]


def quiet(_phase: str, _message: str) -> None:
    """A progress callback that says nothing."""
    return None


__all__ = ["Progress", "quiet"]
