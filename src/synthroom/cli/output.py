"""How ``synthroom room`` commands answer: exit codes, one JSON document or a readable table,
and the progress of ``--wait``.

Exit codes, the same for every command (and ``synthroom synthesize``):

====  =====================================================================================
0     success (also a job whose gate outcome you may not see: state ``finished``)
1     unexpected: the server cannot be reached, it failed (5xx), or ``--wait`` timed out
2     bad input: a wrong option or file, a value the server refused as invalid (422, 413),
      an object that does not exist or that you may not see (404), a hash prefix that
      matches nothing or more than one hash
3     refused by the release gate (the job ran; its scores were over a threshold)
4     the job or the training failed (another failure category, e.g. resource_limit)
5     not allowed: the key is wrong or lacks the right (403), or the state forbids it (409:
      budget spent, approval missing, consent missing)
6     ``audit-verify``: the audit chain does not extend the head you kept
====  =====================================================================================

Output: with ``--json``, or when stdout is not a terminal, exactly one JSON document on stdout
(the final one, after ``--wait``); on a terminal, a readable table (``$SYNTHROOM_OUTPUT=json``
or ``table`` overrides the guess). Messages and progress go to
stderr; progress only when stderr is a terminal.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import time
from typing import Any, Callable, Mapping, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..client import (
    FINISHED,
    ClientError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    TooLargeError,
    Unreachable,
)

OK, UNEXPECTED, BAD_INPUT, GATE_REFUSED, JOB_FAILED, NOT_ALLOWED, AUDIT_BROKEN = 0, 1, 2, 3, 4, 5, 6
_BY_ERROR = (
    (ForbiddenError, NOT_ALLOWED),
    (ConflictError, NOT_ALLOWED),
    (NotFoundError, BAD_INPUT),
    (InvalidInputError, BAD_INPUT),
    (TooLargeError, BAD_INPUT),
)
GATE_CATEGORY = "refused_by_gate"

out = Console()
err = Console(stderr=True)
_mode: dict[str, bool] = {"json": False}
_State = TypeVar("_State", bound=Mapping[str, Any])  # a job, model or inference (synthroom.client)


def exit_code_of(exc: ClientError) -> int:
    """The documented exit code of a refusal (5xx and anything else: 1)."""
    return next((code for kind, code in _BY_ERROR if isinstance(exc, kind)), UNEXPECTED)


def final_exit_code(thing: Mapping[str, Any]) -> int:
    """A finished job's or model's exit code: 3 refused by the gate, 4 failed, else 0."""
    if thing.get("state") == "failed":
        return GATE_REFUSED if thing.get("category") == GATE_CATEGORY else JOB_FAILED
    return OK


def fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def call(action: Callable[[], Any]) -> Any:
    """Run one client call; a refusal prints the server's one line and exits with its code."""
    try:
        return action()
    except ClientError as exc:
        err.print(f"[bold red]refused ({exc.status}):[/] {escape(exc.detail)}", highlight=False, soft_wrap=True)
        raise typer.Exit(exit_code_of(exc)) from None
    except Unreachable as exc:
        err.print(
            f"[bold red]cannot reach the server:[/] {escape(str(exc.__cause__ or exc))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(UNEXPECTED) from None


def as_json() -> bool:
    """``--json``; else ``$SYNTHROOM_OUTPUT`` (``json`` or ``table``); else JSON unless stdout
    is a terminal."""
    if _mode["json"]:
        return True
    forced = os.environ.get("SYNTHROOM_OUTPUT", "").lower()
    return forced == "json" if forced in ("json", "table") else not out.is_terminal


def emit(value: Any, *, title: str | None = None) -> None:
    """Print ``value``: one JSON document, or on a terminal a table (a list: one row each)."""
    if as_json():
        sys.stdout.write(json.dumps(value, indent=2) + "\n")
        sys.stdout.flush()
    elif isinstance(value, list):
        out.print(_rows(value, title))
    elif isinstance(value, dict):
        out.print(_fields(value, title))
    else:
        out.print(value)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return "" if value is None else str(value)


def _fields(value: dict, title: str | None) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2), title=title, title_justify="left")
    for key, item in value.items():
        table.add_row(f"[bold]{escape(str(key))}[/]", escape(_cell(item)))
    return table


def _short(values: list, key: str) -> bool:
    """A column that fits a table: no nested value, no text over 80 characters."""
    cells = [v.get(key) for v in values if isinstance(v, dict)]
    return not any(isinstance(c, (dict, list)) or (isinstance(c, str) and len(c) > 80) for c in cells)


def _rows(values: list, title: str | None) -> Table:
    """One row per item, the columns that fit (the rest: ``--json`` or the ``-show`` command)."""
    every = list(dict.fromkeys(k for v in values if isinstance(v, dict) for k in v))
    keys = [k for k in every if _short(values, k)]
    hidden = [k for k in every if k not in keys]
    caption = f"not shown: {', '.join(hidden)} (--json shows everything)" if hidden else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for key in keys:
        table.add_column(key, overflow="fold")
    for value in values:
        table.add_row(*(escape(_cell(value.get(k))) for k in keys))
    if not values:
        table.add_column("(none)")
    return table


def wait_for(fetch: Callable[[], _State], what: str, *, timeout: float, poll: float = 0.5) -> _State:
    """Poll ``fetch`` until the state is final; on a terminal, a line per state reached and a
    live line with the time waited. Past ``timeout`` seconds: exit 1, naming the state it was in."""
    start, seen = time.monotonic(), None
    status = err.status(f"{what}: waiting", spinner="dots") if err.is_terminal else None
    if status is not None:
        status.start()
    try:
        while True:
            current = call(fetch)
            waited = time.monotonic() - start
            if status is not None:
                if current["state"] != seen:  # one line per phase stays on the screen
                    err.print(f"{what}: [bold]{current['state']}[/] after {waited:.0f} s", highlight=False)
                    seen = current["state"]
                status.update(f"{what}: [bold]{current['state']}[/] ({waited:.0f} s)")
            if current["state"] in FINISHED:
                return current
            if waited > timeout:
                fail(
                    f"{what} is still {current['state']} after {timeout:g} s (--timeout); it keeps running", UNEXPECTED
                )
            time.sleep(poll)
    finally:
        if status is not None:
            status.stop()


def with_json_option(command: Callable) -> Callable:
    """``command`` with a ``--json`` option added (one JSON document instead of a table)."""
    signature = inspect.signature(command)
    if "json_output" in signature.parameters:
        return command

    @functools.wraps(command)
    def wrapper(*args: Any, json_output: bool = False, **kwargs: Any) -> Any:
        _mode["json"] = _mode["json"] or json_output
        return command(*args, **kwargs)

    option = inspect.Parameter(
        "json_output",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=bool,
        default=typer.Option(
            False, "--json", help="Print one JSON document (the default when stdout is not a terminal)."
        ),
    )
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]  # what typer reads
        parameters=[*signature.parameters.values(), option]
    )
    wrapper.__annotations__ = {**getattr(command, "__annotations__", {}), "json_output": bool}
    return wrapper


def add_json_option(app: typer.Typer) -> None:
    """Give every command registered on ``app`` the ``--json`` option."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = with_json_option(info.callback)


def set_json(enabled: bool) -> None:
    _mode["json"] = enabled
