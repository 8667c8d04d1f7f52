"""The console's plumbing: rendering (Jinja2, autoescaped), security headers, the signed-in
session and CSRF checks, and the route class that turns the room's refusals into pages.

Every console response carries a Content-Security-Policy that allows only the server's own
scripts and styles (no inline script, no other origin), refuses framing by other sites and sends
no referrer elsewhere. A refusal of the room (403, 404, 409, 422) becomes the same one-line
message the API would answer: after a form, on the page the form was on (303 back to it, the
message shown once); else on an error page with its status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic import ValidationError

from ..errors import InputError
from ..room import Actor, Conflict, Forbidden, NotFound
from .sessions import COOKIE, Session, SessionStore, SignedOut

HERE = Path(__file__).parent
R = TypeVar("R", bound=Response)
LOGIN = "/console/login"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATUS = ((Forbidden, 403), (NotFound, 404), (Conflict, 409), (InputError, 422), (ValidationError, 422))
REFUSALS = tuple(error for error, _ in STATUS)

templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True))


def secured(response: R, headers: dict[str, str] = HEADERS) -> R:
    response.headers.update(headers)
    return response


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """The page ``name`` with ``context``, the session's CSRF token and its flashes."""
    session: Session | None = getattr(request.state, "session", None)
    context.update(
        request=request,
        session=session,
        csrf=session.csrf if session else "",
        flashes=session.take_flashes() if session else [],
    )
    return secured(templates.TemplateResponse(request, name, context, status_code=status))


def redirect(url: str) -> Response:
    return secured(RedirectResponse(url, status_code=303))


def sessions_of(request: Request) -> SessionStore:
    return request.app.state.console_sessions


def signed_in(request: Request) -> Session:
    """The request's live session (dependency), else :class:`SignedOut`."""
    session = sessions_of(request).get(request.cookies.get(COOKIE))
    request.state.session = session
    return session


def member(request: Request) -> Actor:
    """The signed-in member (dependency); the operator has no member pages."""
    session = signed_in(request)
    if session.actor is None:
        raise Forbidden("the operator's session has no member pages: sign in with a member's API key")
    return session.actor


def operator(request: Request) -> Session:
    session = signed_in(request)
    if not session.operator:
        raise Forbidden("only the server's operator (signed in with the admin key) may do this")
    return session


async def checked_form(request: Request) -> dict[str, Any]:
    """A POST's form after the CSRF check: the session's token in the form (``csrf``) or in the
    ``X-CSRF-Token`` header, and an Origin (when the browser sends one) of this server."""
    session = signed_in(request)
    form = await request.form()
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(request):
        raise Forbidden("the request comes from another site")
    token = form.get("csrf")
    session.check_csrf(token if isinstance(token, str) and token else request.headers.get("x-csrf-token"))
    if any(not isinstance(value, str) for _, value in form.multi_items()):
        raise InputError("the console's forms take no files")
    return {key: form.getlist(key) if len(form.getlist(key)) > 1 else value for key, value in form.items()}


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _back(request: Request) -> str | None:
    """The same-origin page a form was posted from (its Referer), or None."""
    referer = urlsplit(request.headers.get("referer", ""))
    if f"{referer.scheme}://{referer.netloc}" != _own_origin(request) or not referer.path.startswith("/"):
        return None
    if referer.path.startswith("//") or "\\" in referer.path:  # "//host/..." would leave this site
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors())
    return str(exc)


def refused(request: Request, exc: Exception, status: int) -> Response:
    """A refusal as a page: back to the form's page with the message, or an error page."""
    session: Session | None = getattr(request.state, "session", None)
    back = _back(request) if request.method == "POST" else None
    if session is not None and back is not None:
        session.flash(_message(exc), "error")
        return redirect(back)
    return render(request, "error.html", status=status, status_code=status, message=_message(exc))


class ConsoleRoute(APIRoute):
    """A console route: the room's refusals become pages, a missing session the sign-in page."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignedOut as exc:
                if request.headers.get("hx-request"):
                    return secured(Response(status_code=204, headers={"HX-Redirect": LOGIN}))
                target = LOGIN + ("?expired=1" if "expired" in str(exc) else "")
                return redirect(target)
            except REFUSALS as exc:
                status = next(code for error, code in STATUS if isinstance(exc, error))
                return refused(request, exc, status)

        return handle
