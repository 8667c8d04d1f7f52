"""One router per resource; :func:`synthroom.api.create_app` includes them in :data:`ROUTERS`' order."""

from . import audit, collaborations, inference, jobs, members, models, server, tables, templates

ROUTERS = [
    server.router,
    members.router,
    collaborations.router,
    tables.router,
    templates.router,
    jobs.router,
    models.router,
    inference.router,
    audit.router,
]

__all__ = ["ROUTERS"]
