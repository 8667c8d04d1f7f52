"""What each console page shows a member: the same service calls the REST API makes, passed
through the API's own response models, so a member sees in the browser exactly what the API
would answer it (no field more, none computed differently). Each function returns the data of
one page; the routes (:mod:`.routes`) only render it. The only additions are presentation of
what the member already sees: the template's SQL formatted and highlighted, the tables and
columns that SQL names, and the phases of a job's state.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from pydantic import BaseModel
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import SqlLexer

from ..api.schemas import AuditOut, CollaborationOut, JobOut, MemberOut, MeteringOut, ModelOut, TableOut, TemplateOut
from ..room import Actor, Forbidden, Room, jobs, training
from ..sql.display import columns_read, pretty_sql

_FORMATTER = HtmlFormatter(nowrap=True, classprefix="sql-")
FINAL = ("succeeded", "failed", "finished")


def shown(model: type[BaseModel], value: Any) -> Any:
    """``value`` as the API answers it under ``model`` (a list: each item)."""
    if isinstance(value, list):
        return [shown(model, item) for item in value]
    return model.model_validate(value).model_dump(mode="json")


def page_size(room: Room) -> int:
    """Lists in the console show one page of the server's largest size."""
    return room.settings.max_page_size


def home(room: Room, actor: Actor) -> dict:
    """Who I am, my invitations, my collaborations and my tables."""
    limit = page_size(room)
    return {
        "me": shown(MemberOut, {"id": actor.id, "name": actor.name}),
        "invitations": shown(CollaborationOut, room.invitations(actor, limit=limit)),
        "collaborations": shown(CollaborationOut, room.list_collaborations(actor, limit=limit)),
        "tables": shown(TableOut, room.list_tables(actor, limit=limit)),
    }


def collaboration(room: Room, actor: Actor, collaboration_id: int) -> dict:
    """A collaboration: members, tables with their rules and budgets, templates, jobs, and my
    own tables (to associate one)."""
    limit = page_size(room)
    collab = shown(CollaborationOut, room.get_collaboration(actor, collaboration_id))
    me = next((m for m in collab["members"] if m["name"] == actor.name), None)
    return {
        "collaboration": collab,
        "me": me,
        "templates": shown(TemplateOut, room.list_templates(actor, collaboration_id, limit=limit)),
        "jobs": shown(JobOut, jobs.list_jobs(room, actor, collaboration_id, limit=limit)),
        "my_tables": shown(TableOut, room.list_tables(actor, limit=limit)),
    }


def highlighted(sql: str) -> Markup:
    """``sql`` as HTML spans (pygments escapes every character of the input)."""
    return Markup(highlight(sql, SqlLexer(), _FORMATTER))


def highlight_css() -> str:
    """The CSS rules of the highlighting's classes (the console's sql.css)."""
    return _FORMATTER.get_style_defs(".sql")


def template(room: Room, actor: Actor, template_id: int) -> dict:
    """A template for its approvers: SQL formatted and highlighted, the tables and columns it
    reads, its parameters, hash and approvals; whether I approve it."""
    shown_template = shown(TemplateOut, room.get_template(actor, template_id))
    collab = shown(CollaborationOut, room.get_collaboration(actor, shown_template["collaboration_id"]))
    me = next((m for m in collab["members"] if m["name"] == actor.name), None)
    pretty = pretty_sql(shown_template["sql"])
    return {
        "template": shown_template,
        "collaboration": collab,
        "me": me,
        "pretty_sql": pretty,
        "sql_html": highlighted(pretty),
        "columns_read": columns_read(shown_template["sql"]),
        "i_approve": actor.name in shown_template["approvers"],
        "i_approved": actor.name in shown_template["approved_by"],
    }


def phases(job: dict) -> list[dict]:
    """A job's state as steps (queued, running, finished), each done, current or to come, with
    its time: only what the job's view already says."""
    position = 2 if job["state"] in FINAL else 1 if job["state"] == "running" else 0
    steps = [
        ("queued", "Queued", job["created_at"]),
        ("running", "Running", job["started_at"]),
        ("finished", _outcome(job), job["finished_at"]),
    ]
    return [
        {"key": key, "label": label, "at": at, "done": i < position or position == 2, "current": i == position < 2}
        for i, (key, label, at) in enumerate(steps)
    ]


def _outcome(job: dict) -> str:
    if job["state"] == "succeeded":
        return "Released" if job["released"] else "Finished"
    if job["state"] == "failed":
        return "Refused by the gate" if job["category"] == "refused_by_gate" else "Failed"
    return "Finished"


def job(room: Room, actor: Actor, job_id: int) -> dict:
    """A job: its phases, scores (when I may see them), the models trained on it (None: I am
    not one of its result receivers, to whom the API shows them)."""
    shown_job = shown(JobOut, jobs.get_job(room, actor, job_id))
    collab = shown(CollaborationOut, room.get_collaboration(actor, shown_job["collaboration_id"]))
    try:  # the API answers 403 to anyone but the job's result receivers
        models = shown(ModelOut, training.list_models(room, actor, job_id, limit=page_size(room)))
    except Forbidden:
        models = None
    return {
        "job": shown_job,
        "collaboration": collab,
        "me": next((m for m in collab["members"] if m["name"] == actor.name), None),
        "phases": phases(shown_job),
        "models": models,
        "live": shown_job["state"] not in FINAL or any(m["state"] not in FINAL for m in models or []),
    }


def audit(room: Room, actor: Actor, collaboration_id: int, *, offset: int = 0) -> dict:
    """One page of the audit log, with the whole chain's check."""
    return {
        "collaboration": shown(CollaborationOut, room.get_collaboration(actor, collaboration_id)),
        "audit": shown(AuditOut, jobs.audit_log(room, actor, collaboration_id, limit=page_size(room), offset=offset)),
        "offset": offset,
        "limit": page_size(room),
    }


def metering(room: Room, actor: Actor, collaboration_id: int) -> dict:
    """Compute time and rows per job and the payer's totals."""
    return {
        "collaboration": shown(CollaborationOut, room.get_collaboration(actor, collaboration_id)),
        "metering": shown(MeteringOut, jobs.metering(room, actor, collaboration_id, limit=page_size(room))),
    }
