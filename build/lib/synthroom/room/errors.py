"""Errors of the clean room's rules; the API maps each to an HTTP status."""

from ..errors import InputError, SynthroomError


class Forbidden(SynthroomError):
    """The caller is not allowed to do this (HTTP 403)."""


class NotFound(SynthroomError):
    """No such object (HTTP 404)."""


class Conflict(SynthroomError):
    """The request contradicts the current state (HTTP 409)."""


class BudgetExhausted(Conflict):
    """A table's privacy budget would go negative (HTTP 409); the message names what is left."""


__all__ = ["BudgetExhausted", "Conflict", "Forbidden", "InputError", "NotFound"]
