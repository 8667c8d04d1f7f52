"""Errors a user can act on.

Every problem with the user's input (schema, table, parameters) raises :class:`InputError`
with one message that names the column or value at fault. The CLI turns it into exit code 2.
"""


class SynthroomError(Exception):
    """Base class for every error Synthroom raises on purpose."""


class InputError(SynthroomError, ValueError):
    """The user's input (schema, table, parameters) cannot be used as given."""
