"""The web console: server-rendered pages (Jinja2) at ``/`` for every member and the operator,
over the same room functions as the REST API, and every browser asset served by the server
itself (htmx, the console's CSS, and Swagger UI / ReDoc at ``/docs`` and ``/redoc``): no CDN,
no build step, nothing fetched at run time.

:func:`install` adds it to the API's app; the pages are in :mod:`.routes`, sign-in and sessions
in :mod:`.auth` and :mod:`.sessions`, what each page shows in :mod:`.views`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from .auth import router as auth_router
from .pages import HERE
from .routes import router as pages_router
from .sessions import SessionStore

STATIC = "/static"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'"
)

__all__ = ["install"]


def install(app: FastAPI, *, sessions: SessionStore | None = None) -> None:
    """Serve the console, its assets and the API docs from ``app`` (made with ``docs_url=None``
    and ``redoc_url=None``; ``app.state.room`` is the room)."""
    app.state.console_sessions = sessions or SessionStore()
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(auth_router)
    app.include_router(pages_router)
    _docs(app)


def _docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, from the vendored files."""
    favicon = f"{STATIC}/favicon.svg"

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def swagger() -> HTMLResponse:
        return _this_server_only(
            get_swagger_ui_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{app.title}: API",
                swagger_js_url=f"{STATIC}/vendor/swagger-ui-bundle.js",
                swagger_css_url=f"{STATIC}/vendor/swagger-ui.css",
                swagger_favicon_url=favicon,
            )
        )

    @app.get("/redoc", include_in_schema=False, response_class=HTMLResponse)
    def redoc() -> HTMLResponse:
        return _this_server_only(
            get_redoc_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{app.title}: API",
                redoc_js_url=f"{STATIC}/vendor/redoc.standalone.js",
                redoc_favicon_url=favicon,
                with_google_fonts=False,
            )
        )


def _this_server_only(page: HTMLResponse) -> HTMLResponse:
    """The docs page may load nothing from another server (ReDoc's footer logo would come from
    its CDN): its own inline start-up script and styles only, the rest from this server."""
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
