"""Errors a user can act on.

Every problem with the user's input (schema, table, parameters) raises :class:`InputError`
with one message that names the column or value at fault. The CLI turns it into exit code 2.
"""


def quoted(items: "list | tuple", limit: int = 8) -> str:
    """Items for a message: ``'a'``, ``'a' and 'b'``, ``'a', 'b' and 'c'``; past ``limit`` items
    the first ``limit`` and ``and N more``; ``none`` for no items."""
    if not items:
        return "none"
    shown = [repr(i) for i in items[:limit]]
    if len(items) > limit:
        return f"{', '.join(shown)} and {len(items) - limit} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def named_columns(names: "list[str]") -> str:
    """``column 'a'``, ``columns 'a' and 'b'``, ``columns 'a', 'b' and 'c'``: every one, so that a
    message can give the whole fix."""
    return f"{'column' if len(names) == 1 else 'columns'} {quoted(names, limit=len(names))}"


def absent_columns(missing: "list[str]", where: str) -> "InputError":
    """The error for schema columns an input lacks, every one named (``where``: the input, as
    "t.csv" or "the synthetic table")."""
    verb = "is" if len(missing) == 1 else "are"
    return InputError(f"{named_columns(missing)} {verb} in the schema but not in {where}")


class SynthroomError(Exception):
    """Base class for every error Synthroom raises on purpose."""


class InputError(SynthroomError, ValueError):
    """The user's input (schema, table, parameters) cannot be used as given."""


class SchemaError(InputError):
    """The schema (column classification) is malformed: one message naming the entry at fault."""


class JobFailure(SynthroomError):
    """A clean-room job failed after it was queued.

    Members see only the fixed ``category`` (a value of :data:`FAILURE_CATEGORIES`), never the
    message: a message may quote row values or server details and goes to the operator's log.
    """

    category = "internal_error"


class TemplateRuntimeError(JobFailure):
    """The template failed while running over the real rows."""

    category = "template_error"


class SourceChanged(JobFailure):
    """A configured table's source is not the one configured (swapped, replaced, gone)."""

    category = "source_changed"


class ResourceLimit(JobFailure):
    """The job ran past a time, memory, thread or temporary-disk limit."""

    category = "resource_limit"


class EngineFailure(JobFailure):
    """The counting engine failed while it ran, not on a fault found in the input: Spark could not
    start, ran out of memory, lost an executor or could not read a file the table lists.

    The message is one line: the engine's own cause and what to try. The CLI exits with code 4;
    in the clean room the job fails as ``internal_error`` (members never see the message)."""


class TargetClassesLost(InputError, JobFailure):
    """The predictive column would hold fewer than two classes: no classifier can be trained.

    Raised by the category selection (:mod:`synthroom.synthesis.selection`) before anything more
    is spent. An input error to the CLI (exit code 2); in the clean room a job failure of its own
    category. Its message depends only on DP outputs and the parameters."""

    category = "target_classes_lost"


# Every failure category a member may see on a failed job, with the fixed text shown for it.
FAILURE_CATEGORIES = {
    "template_error": "the template failed while running",
    "source_changed": "a table's data source is not the one configured",
    "resource_limit": "the job went over a resource limit",
    "refused_by_gate": "the release gate refused the synthetic data",
    "target_classes_lost": (
        "the predictive column kept fewer than two classes at this epsilon: declare its classes "
        "in the column classification or raise epsilon"
    ),
    "withdrawn": "an owner withdrew an approval or a table before the job ran",
    "interrupted": "interrupted by a server restart before it finished",
    "internal_error": "an internal error",
}
