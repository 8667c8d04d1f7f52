"""The console's pages and forms (server-rendered; htmx refreshes a running job's part of its
page). Every page and every action calls the same room functions the REST API calls, with the
signed-in member as the actor, so every rule the API enforces holds here too; form fields go
through the API's own request models (the same checks, the same messages).
"""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from ..api.schemas import (
    AcceptIn,
    ApprovalIn,
    AssociationIn,
    CollaborationIn,
    MemberAbilities,
    MemberIn,
    ModelIn,
    TableIn,
    TemplateIn,
)
from ..errors import InputError
from ..privacy.accountant import DEFAULT_DELTA
from ..room import Actor, NotFound, Room, jobs, training
from . import views
from .sessions import Session
from .pages import REFUSALS, STATUS, ConsoleRoute, checked_form, member, operator, redirect, render, secured, signed_in

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Form = dict[str, Any]
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def room_of(request: Request) -> Room:
    return request.app.state.room


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    session = signed_in(request)
    if session.actor is None:  # the operator
        return render(request, "operator.html", created=None)
    return render(request, "home.html", **views.home(room_of(request), session.actor))


@router.post("/console/members", response_class=HTMLResponse)
def create_member(
    request: Request, form: Form = Depends(checked_form), session: Session = Depends(operator)
) -> Response:
    """The operator creates a member; its API key is shown on this page once."""
    body = MemberIn(name=form.get("name", ""), data_roots=_lines(form.get("data_roots", "")))
    created = room_of(request).create_member(session.admin_key or "", body.name, body.data_roots)
    return render(request, "operator.html", created=created)


@router.post("/console/invitations/{collaboration_id}/accept")
def accept(
    collaboration_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    body = AcceptIn(pay=bool(form.get("pay")))
    room_of(request).accept_invitation(actor, collaboration_id, pay=body.pay)
    request.state.session.flash("invitation accepted")
    return redirect(f"/console/collaborations/{collaboration_id}")


@router.post("/console/invitations/{collaboration_id}/decline")
def decline(
    collaboration_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    room_of(request).decline_invitation(actor, collaboration_id)
    request.state.session.flash("invitation declined")
    return redirect("/")


@router.post("/console/collaborations")
def create_collaboration(
    request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    """Members as lines ``NAME [run] [receive]``."""
    members = [
        MemberAbilities(name=words[0], can_run="run" in words[1:], can_receive="receive" in words[1:])
        for words in (line.split() for line in _lines(form.get("members", "")))
    ]
    body = CollaborationIn(
        name=form.get("name", ""),
        members=members,
        payer=form.get("payer", ""),
        retention_days=_number(form, "retention_days", int, 7),
    )
    created = room_of(request).create_collaboration(
        actor, body.name, [m.model_dump() for m in body.members], body.payer, body.retention_days
    )
    request.state.session.flash(f"collaboration {created['name']!r} created; the members listed are invited")
    return redirect(f"/console/collaborations/{created['id']}")


@router.get("/console/collaborations/{collaboration_id}", response_class=HTMLResponse)
def collaboration(collaboration_id: int, request: Request, actor: Actor = Depends(member)) -> Response:
    return render(request, "collaboration.html", **views.collaboration(room_of(request), actor, collaboration_id))


@router.post("/console/tables")
def configure_table(request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)) -> Response:
    """Configure one of my tables with its analysis rule (the API's TableIn)."""
    source = form.get("source_path", "").strip()
    kind = form.get("source_kind") or source.rsplit(".", 1)[-1].lower()
    body = TableIn(
        name=form.get("name", ""),
        source_kind=kind,
        source_path=source,
        source_table=form.get("source_table") or None,
        allowed_columns=_words(form.get("allowed_columns", "")),
        epsilon_budget=_number(form, "epsilon_budget", float, None),
        unit_column=form.get("unit_column") or None,
        unit_cap=_number(form, "unit_cap", int, 1),
        allowed_receivers=_words(form.get("allowed_receivers", "")) or None,
        share_full_report=bool(form.get("share_full_report")),
        delta_budget=_number(form, "delta_budget", float, 1e-6),
        share_scores=bool(form.get("share_scores")),
        max_gated_runs=_number(form, "max_gated_runs", int, 5),
    )
    table = room_of(request).configure_table(actor, **body.model_dump())
    request.state.session.flash(f"table {table['name']!r} configured (id {table['id']})")
    return redirect("/#tables")


@router.post("/console/tables/{table_id}/refresh")
def refresh_table(
    table_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    table = room_of(request).refresh_table(actor, table_id)
    request.state.session.flash(f"table {table['name']!r} re-read into a new snapshot")
    return redirect("/#tables")


@router.post("/console/collaborations/{collaboration_id}/associations")
def associate(
    collaboration_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    body = AssociationIn(table_id=_number(form, "table_id", int, None), name=form.get("name", ""))
    room_of(request).associate(actor, collaboration_id, body.table_id, body.name)
    request.state.session.flash(f"table added to the collaboration as {body.name!r}")
    return redirect(f"/console/collaborations/{collaboration_id}#tables")


@router.post("/console/collaborations/{collaboration_id}/associations/{name}/remove")
def dissociate(
    collaboration_id: int,
    name: str,
    request: Request,
    form: Form = Depends(checked_form),
    actor: Actor = Depends(member),
) -> Response:
    room_of(request).dissociate(actor, collaboration_id, name)
    request.state.session.flash(f"table {name!r} taken out of the collaboration")
    return redirect(f"/console/collaborations/{collaboration_id}#tables")


@router.post("/console/collaborations/{collaboration_id}/templates")
def create_template(
    collaboration_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    """Propose a template: SQL, classification (YAML or JSON), epsilon, MIA threshold, rows."""
    body = TemplateIn(
        name=form.get("name", ""),
        sql=form.get("sql", ""),
        epsilon=_number(form, "epsilon", float, None),
        classification=_classification(form.get("classification", "")),
        max_mia_score=_number(form, "max_mia_score", float, None),
        delta=_number(form, "delta", float, DEFAULT_DELTA),
        rows=_number(form, "rows", int, None),
    )
    created = room_of(request).create_template(actor, collaboration_id, **body.model_dump())
    request.state.session.flash(f"template {created['name']!r} version {created['version']} proposed")
    return redirect(f"/console/templates/{created['id']}")


@router.get("/console/templates/{template_id}", response_class=HTMLResponse)
def template(template_id: int, request: Request, actor: Actor = Depends(member)) -> Response:
    return render(request, "template.html", **views.template(room_of(request), actor, template_id))


@router.post("/console/templates/{template_id}/approve")
def approve(
    template_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    """Approve the content hash the page showed (a newer version has another hash: refused)."""
    body = ApprovalIn(hash=form.get("hash", ""))
    room_of(request).approve_template(actor, template_id, body.hash)
    request.state.session.flash(f"you approved content hash {body.hash[:12]}…")
    return redirect(f"/console/templates/{template_id}")


@router.post("/console/templates/{template_id}/revoke")
def revoke(
    template_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    room_of(request).revoke_approval(actor, template_id)
    request.state.session.flash("your approval is withdrawn")
    return redirect(f"/console/templates/{template_id}")


@router.post("/console/templates/{template_id}/jobs")
def start_job(
    template_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    job = jobs.start_job(room_of(request), actor, template_id)
    request.state.session.flash(f"job {job['id']} queued")
    return redirect(f"/console/jobs/{job['id']}")


@router.get("/console/jobs/{job_id}", response_class=HTMLResponse)
def job(job_id: int, request: Request, actor: Actor = Depends(member)) -> Response:
    return render(request, "job.html", **views.job(room_of(request), actor, job_id))


@router.get("/console/jobs/{job_id}/live", response_class=HTMLResponse)
def job_live(job_id: int, request: Request, actor: Actor = Depends(member)) -> Response:
    """The job's changing part (phases, scores, downloads, models), polled while it runs."""
    return render(request, "_job_live.html", **views.job(room_of(request), actor, job_id))


@router.get("/console/jobs/{job_id}/result")
def result(job_id: int, request: Request, format: str = "csv", actor: Actor = Depends(member)) -> Response:
    return _download(jobs.result_path(room_of(request), actor, job_id, format))


@router.get("/console/jobs/{job_id}/report")
def report(job_id: int, request: Request, kind: str = "html", actor: Actor = Depends(member)) -> Response:
    """The full report (receivers, when the tables share it): HTML shown in the page's frame
    (no script may run in it), JSON as a download."""
    try:
        path = _existing(jobs.report_path(room_of(request), actor, job_id, kind))
    except REFUSALS as exc:  # shown inside the page's frame
        status = next(code for error, code in STATUS if isinstance(exc, error))
        return secured(
            render(request, "error.html", status=status, status_code=status, message=str(exc)), REPORT_HEADERS
        )
    if kind == "json":
        return _download(path)
    return secured(HTMLResponse(path.read_text()), REPORT_HEADERS)


@router.post("/console/jobs/{job_id}/models")
def train(
    job_id: int, request: Request, form: Form = Depends(checked_form), actor: Actor = Depends(member)
) -> Response:
    body = ModelIn(trainer=form.get("trainer") or "auto")
    model = training.train_model(room_of(request), actor, job_id, body.trainer, None)
    request.state.session.flash(f"model {model['id']} queued ({model['trainer']})")
    return redirect(f"/console/jobs/{job_id}#models")


@router.get("/console/models/{model_id}/file")
def model_file(model_id: int, request: Request, actor: Actor = Depends(member)) -> Response:
    return _download(training.model_file(room_of(request), actor, model_id))


@router.get("/console/collaborations/{collaboration_id}/audit", response_class=HTMLResponse)
def audit(collaboration_id: int, request: Request, offset: int = 0, actor: Actor = Depends(member)) -> Response:
    return render(request, "audit.html", **views.audit(room_of(request), actor, collaboration_id, offset=offset))


@router.get("/console/collaborations/{collaboration_id}/metering", response_class=HTMLResponse)
def metering(collaboration_id: int, request: Request, actor: Actor = Depends(member)) -> Response:
    return render(request, "metering.html", **views.metering(room_of(request), actor, collaboration_id))


# -- form fields ---------------------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def _words(text: str) -> list[str]:
    """A list typed as words separated by commas, spaces or lines."""
    return [w for w in str(text).replace(",", " ").split() if w]


def _number(form: Form, field: str, kind: type, default: Any) -> Any:
    """The form's number ``field`` (``default`` when empty); InputError naming it otherwise."""
    text = str(form.get(field, "")).strip()
    if not text:
        if default is None and field in ("epsilon", "epsilon_budget", "table_id"):
            raise InputError(f"{field} is required")
        return default
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"{field} {text!r} is not a {'whole ' if kind is int else ''}number") from None


def _classification(text: str) -> Any:
    """The classification typed as YAML or JSON (JSON is YAML)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"the classification is not valid YAML or JSON: {exc.problem or exc}") from None
    if not isinstance(value, dict):
        raise InputError("the classification must be a mapping (target and columns)")
    return value


def _existing(path):
    if not path.exists():
        raise NotFound(f"{path.name} is missing from the job's artifacts")
    return path


def _download(path) -> Response:
    return secured(FileResponse(_existing(path), filename=path.name))
