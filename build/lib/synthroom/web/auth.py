"""Signing in and out of the console.

Sign-in takes an API key (a member's, or the server's admin key for the operator's page) in a
POST body, checks it with the room, and sets the session cookie: HttpOnly (no script reads it),
SameSite=Strict (no other site's page sends it), Secure when the server is reached over HTTPS,
Path=/. The sign-in form itself is protected against login CSRF (another site signing the
browser in as someone else) by a double-submit token: a random value in a SameSite=Strict
cookie that the form must repeat.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ..room import Forbidden
from .pages import LOGIN, ConsoleRoute, redirect, render, sessions_of
from .sessions import COOKIE

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
LOGIN_COOKIE = "synthroom_login"


def _cookie(request: Request, response: Response, name: str, value: str, path: str = "/") -> None:
    response.set_cookie(name, value, httponly=True, samesite="strict", secure=request.url.scheme == "https", path=path)


@router.get(LOGIN, response_class=HTMLResponse)
def login_page(request: Request, expired: int = 0) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", login_token=token, expired=bool(expired), error=None)
    _cookie(request, response, LOGIN_COOKIE, token, path=LOGIN)
    return response


@router.post(LOGIN, response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the form's token against the cookie, then the key; a wrong key re-shows the form
    with the API's message (403)."""
    form = await request.form()
    cookie, token = request.cookies.get(LOGIN_COOKIE, ""), str(form.get("login_token", ""))
    if not cookie or not hmac.compare_digest(cookie.encode(), token.encode()):
        raise Forbidden("the sign-in form expired or came from another site: reload the sign-in page")
    key = str(form.get("api_key", "")).strip()
    room = request.app.state.room
    try:
        actor = None if room.is_admin_key(key) else room.authenticate(key)
    except Forbidden as exc:
        fresh = secrets.token_urlsafe(32)
        response = render(request, "login.html", status=403, login_token=fresh, expired=False, error=str(exc))
        _cookie(request, response, LOGIN_COOKIE, fresh, path=LOGIN)
        return response
    cookie_token, _ = sessions_of(request).create(actor, admin_key=key if actor is None else None)
    response = redirect("/")
    _cookie(request, response, COOKIE, cookie_token)
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN)
    return response


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    """End the session (its CSRF token required: no other site may sign a member out)."""
    form = await request.form()
    store = sessions_of(request)
    token = request.cookies.get(COOKIE)
    store.get(token).check_csrf(str(form.get("csrf", "")))
    store.drop(token)
    response = redirect(LOGIN)
    response.delete_cookie(COOKIE, path="/")
    return response
