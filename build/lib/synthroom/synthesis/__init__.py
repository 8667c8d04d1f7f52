"""DP synthesis: discretisation, structure selection, estimation (mbi) and sampling."""

from .synthesizer import DEFAULT_DELTA, Synthesizer

__all__ = ["DEFAULT_DELTA", "Synthesizer"]
