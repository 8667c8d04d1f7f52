"""A Python client of the clean room's REST API (``synthroom serve``), for scripts and notebooks.

::

    from synthroom.client import RoomClient, NotFoundError

    room = RoomClient("https://room.example.org", key="...")   # or RoomClient.from_env()
    collab = room.create_collaboration("spring", [{"name": "publisher"}], payer="advertiser")
    job = room.wait(room.start_job(template_id=7)["id"])
    if job["released"]:
        open("synthetic.csv", "wb").write(room.result(job["id"], "csv"))

One method per endpoint; each answers the server's JSON as a typed dictionary (or a ``list`` of
them) defined here: :class:`Job`, :class:`Template`, :class:`Collaboration`, ... whose fields are
the API's response models' (``/docs`` on the server; a test checks the two agree), so a type
checker and an editor know every field; or, for files, the bytes. The values are the plain
``dict`` the server sent (``json.dumps`` prints them as they came), typed with ``TypedDict``.
A refusal raises a :class:`ClientError` subclass chosen by the HTTP status
(:class:`ForbiddenError` 403, :class:`NotFoundError` 404 — also for an object you may not see —,
:class:`ConflictError` 409, :class:`TooLargeError` 413, :class:`InvalidInputError` 422,
:class:`ServerError` 5xx) carrying ``status`` and the server's one-line ``detail``; a server that
cannot be reached raises :class:`Unreachable`. Optional arguments left at ``None`` are not sent, so
the server's documented defaults apply (one fact in one place).

The client needs only httpx: it imports nothing else of Synthroom, so a member's machine needs no
server-side dependency to use it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Literal, Mapping, TypedDict, TypeVar

import httpx

__all__ = [
    "DEFAULT_SERVER",
    "FINISHED",
    "AssociatedTable",
    "Association",
    "Audit",
    "AuditHead",
    "AuditProof",
    "ClientError",
    "Collaboration",
    "ConflictError",
    "Declined",
    "ForbiddenError",
    "Health",
    "Inference",
    "InvalidInputError",
    "Job",
    "Member",
    "Membership",
    "Metering",
    "Model",
    "NewMember",
    "NotFoundError",
    "RoomClient",
    "ServerError",
    "Table",
    "TableRule",
    "Template",
    "TooLargeError",
    "Unreachable",
]

DEFAULT_SERVER = "http://127.0.0.1:8765"
FINISHED = ("succeeded", "failed", "finished")  # a job's or a model's final states

JSON = dict[str, Any]


# -- what the server answers (its response models; tests/test_client.py checks they agree) -------
class Health(TypedDict):
    """``GET /health``."""

    status: str  # "ok"
    version: str  # the server's Synthroom version


class Member(TypedDict):
    """A member: who an API key belongs to."""

    id: int
    name: str


class NewMember(Member):
    """A member just created (:meth:`RoomClient.create_member`)."""

    api_key: str  # shown this once; the server keeps only its hash
    data_roots: list[str]  # server folders the member's table sources may be in


class Membership(TypedDict):
    """One member of a collaboration and its abilities."""

    name: str
    can_run: bool  # may start jobs
    can_receive: bool  # receives the synthetic data
    status: Literal["invited", "active", "declined"]


class TableRule(TypedDict):
    """A table's analysis rule and its budget (what every collaborator may see)."""

    allowed_columns: list[str]  # the columns templates may read
    unit_column: str | None  # the privacy-unit column (e.g. user id); None: each row is a unit
    unit_cap: int  # the most rows one unit may contribute
    epsilon_budget: float  # total epsilon across all jobs
    epsilon_spent: float
    epsilon_remaining: float
    delta_budget: float
    delta_spent: float
    delta_remaining: float
    allowed_receivers: list[str] | None  # who may receive results (None: every receiver)
    share_full_report: bool  # receivers get the full evaluation report
    share_scores: bool  # every member sees a job's (non-DP, rounded) scores
    max_gated_runs: int  # charged jobs per template version that reads the table
    model_evaluations: int  # models that may be scored on the real holdout rows


class Table(TableRule):
    """A configured table; the source fields are its owner's only (None to others)."""

    id: int
    name: str
    owner_id: int
    source_kind: str | None  # csv, parquet or duckdb
    source_path: str | None  # on the server, inside the owner's data folders
    source_table: str | None  # the table inside a DuckDB database
    columns: list[str] | None  # every column of the source
    snapshot_sha256: str | None  # SHA-256 of the room's copy of the source, which jobs read


class AssociatedTable(TableRule):
    """A table in a collaboration, under the name templates use for it."""

    name: str
    table_id: int
    owner: str | None  # the owning member's name


class Collaboration(TypedDict):
    """A collaboration: members, abilities, tables and their remaining budgets."""

    id: int
    name: str
    payer: str | None  # the member charged for synthetic-data generation
    payer_accepted: bool  # the payer accepted paying
    retention_days: int  # days a job's artifacts are kept
    model_policy: dict[str, Any]  # export, artifact size, providers, inference runners/receivers/payer
    inference_payer_accepted: bool
    engine: str | None  # where its templates run (duckdb or spark); None: the room's engine setting
    members: list[Membership]
    tables: list[AssociatedTable]


class Declined(TypedDict):
    """An invitation declined (:meth:`RoomClient.decline`)."""

    collaboration_id: int
    member: str
    status: Literal["declined"]


class Association(TypedDict):
    """A table put into (or taken out of) a collaboration under ``name``."""

    collaboration_id: int
    name: str
    table_id: int


class Template(TypedDict):
    """One version of an analysis template, its content hash and approvals."""

    id: int
    collaboration_id: int
    name: str
    version: int
    sql: str
    params: dict[str, Any]  # epsilon, delta, rows, max_mia_score, classification
    tables: dict[str, int]  # association name -> table id
    hash: str  # the content hash owners approve
    approvers: list[str]  # the owners whose approval it needs
    approved_by: list[str]
    approved: bool  # every approver approved this hash


class Job(TypedDict):
    """A synthetic-data job: its state, outcome, cost and metering."""

    id: int
    collaboration_id: int
    template_id: int
    hash: str  # the template content it ran
    state: str  # queued, running, succeeded, failed; "finished" to a member who may not see scores
    category: str | None  # a failed job's fixed failure category
    reason: str | None  # that category's fixed text
    epsilon: float  # charged to each table read
    delta: float
    unit_cap: int
    synth_epsilon: float | None  # the part the synthesizer spent
    released: bool | None  # whether the gate released the rows (None: not decided yet, or not shown)
    reproducible: bool  # a seeded run: not for release
    budget_released: bool  # the charge came back (a job that failed before reading rows)
    summary: dict[str, Any] | None  # non-DP rounded scores and gates, for those allowed to see them
    rows_synthetic: int | None
    compute_seconds: int | None
    created_at: str | None  # ISO 8601 times
    started_at: str | None
    finished_at: str | None
    expires_at: str | None  # when the artifacts are deleted
    artifacts_deleted_at: str | None


class Model(TypedDict):
    """A model trained on a job's synthetic rows."""

    id: int
    job_id: int
    trainer: str  # auto, logistic, linear, gbm or script
    task: str  # classification or regression
    target: str
    state: str  # queued, running, succeeded or failed
    reason: str | None
    params: dict[str, Any]  # the hyperparameters asked for
    chosen: str | None  # the trainer ``auto`` chose
    chosen_params: dict[str, Any] | None
    candidates: dict[str, float] | None  # ``auto``'s validation score per trainer
    metrics: dict[str, Any]  # on a validation split of the synthetic rows
    real_metrics: dict[str, Any] | None  # on the real holdout rows when every owner allows it (rounded; not DP)
    created_at: str


class Inference(TypedDict):
    """A member's own table scored with a model inside the room."""

    id: int
    collaboration_id: int
    model_id: int
    table_id: int
    state: str  # queued, running, succeeded or failed
    category: str | None
    reason: str | None
    rows_scored: int | None  # shown to the runner and the receivers only
    compute_seconds: int | None
    created_at: str | None
    finished_at: str | None
    expires_at: str | None
    artifacts_deleted_at: str | None


class Audit(TypedDict):
    """One page of the audit log; ``verified``/``problem`` are about the whole chain."""

    entries: list[dict[str, Any]]  # seq, time, actor, action, details, hash
    verified: bool
    problem: str | None
    head: str  # the chain's last hash


class AuditHead(TypedDict):
    """The chain's head, signed by the server: keep it, check it later (:meth:`RoomClient.audit_verify`)."""

    scope: str
    seq: int
    hash: str
    signature: str  # the server's HMAC-SHA256 over scope, seq and hash


class AuditProof(TypedDict):
    """Whether the chain verifies and still holds a kept head where it was."""

    extends: bool
    problem: str | None
    head: AuditHead  # the current head


class Metering(TypedDict):
    """Compute time and rows per job (one page) and the totals, charged to the payers."""

    entries: list[dict[str, Any]]
    totals: dict[str, dict[str, int | float]]
    inference: list[dict[str, Any]]  # inference jobs, metered to the inference payer


_State = TypeVar("_State", bound=Mapping[str, Any])


class ClientError(Exception):
    """The server refused a request: ``status`` (HTTP) and its one-line ``detail``."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


class ForbiddenError(ClientError):
    """403: no or a wrong API key, or the caller may not do this (not a member, lacks the ability)."""


class NotFoundError(ClientError):
    """404: no such object, or one the caller may not see (the server answers the two alike)."""


class ConflictError(ClientError):
    """409: the request conflicts with the state (budget spent, stale hash, consent missing)."""


class TooLargeError(ClientError):
    """413: the request body is over the server's ``max_body_bytes``."""


class InvalidInputError(ClientError):
    """422: bad input (ids out of range, control characters, limits, unknown fields)."""


class ServerError(ClientError):
    """5xx: the server failed; its operator's log has the detail."""


class Unreachable(Exception):
    """The server could not be reached (connection refused, timeout, bad URL)."""


_ERRORS: dict[int, type[ClientError]] = {
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: InvalidInputError,
}


def error_for(status: int, detail: str) -> ClientError:
    """The typed error for an HTTP ``status`` (:class:`ClientError` itself for one not listed)."""
    kind = _ERRORS.get(status) or (ServerError if status >= 500 else ClientError)
    return kind(status, detail)


def _page(limit: int | None, offset: int | None) -> dict[str, int]:
    """``limit``/``offset`` query parameters, leaving out those not given (the server's defaults)."""
    return {k: v for k, v in (("limit", limit), ("offset", offset)) if v is not None}


def _given(**fields: Any) -> JSON:
    """The fields that are not ``None``: the server's defaults apply to the others."""
    return {k: v for k, v in fields.items() if v is not None}


class RoomClient:
    """A client of one server, acting as the member whose API ``key`` it holds.

    ``server``: the server's URL; ``http``: any ``httpx.Client`` to use instead of a new one (e.g.
    FastAPI's ``TestClient``); ``admin_key``: the server's admin key, needed only by
    :meth:`create_member`; ``timeout``: seconds per request.
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        key: str | None = None,
        *,
        admin_key: str | None = None,
        http: httpx.Client | None = None,
        timeout: float = 600,
    ):
        self.server = server
        self.http = http or httpx.Client(base_url=server, timeout=timeout)
        self.key, self.admin_key = key, admin_key

    @classmethod
    def from_env(cls, **options: Any) -> RoomClient:
        """A client configured like the CLI: ``$SYNTHROOM_SERVER`` (default :data:`DEFAULT_SERVER`),
        ``$SYNTHROOM_API_KEY`` and ``$SYNTHROOM_ADMIN_KEY``; ``options`` override them."""
        settings: dict[str, Any] = {
            "server": os.environ.get("SYNTHROOM_SERVER", DEFAULT_SERVER),
            "key": os.environ.get("SYNTHROOM_API_KEY"),
            "admin_key": os.environ.get("SYNTHROOM_ADMIN_KEY"),
        }
        return cls(**{**settings, **options})

    def as_member(self, key: str) -> RoomClient:
        """A client over the same connection acting as the member holding ``key``."""
        return RoomClient(self.server, key, http=self.http, admin_key=self.admin_key)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RoomClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"X-API-Key": self.key} if self.key else {}
        if self.admin_key:
            headers["X-Admin-Key"] = self.admin_key
        try:
            response = self.http.request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach the server: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            raise error_for(response.status_code, detail if isinstance(detail, str) else json.dumps(detail))
        return response

    def _json(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        return self._send(method, path, body, params).json()

    def _bytes(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        return self._send("GET", path, params=params).content

    # -- server and members ---------------------------------------------------------------
    def health(self) -> Health:
        """``{"status": "ok", "version": ...}``; needs no key."""
        return self._json("GET", "/health")

    def create_member(self, name: str, data_roots: list[str]) -> NewMember:
        """Create a member (needs ``admin_key``); the answer holds its API key, shown only once."""
        return self._json("POST", "/members", {"name": name, "data_roots": data_roots})

    def me(self) -> Member:
        """Who the key belongs to: ``{"id", "name"}``."""
        return self._json("GET", "/me")

    # -- collaborations -------------------------------------------------------------------
    def create_collaboration(
        self,
        name: str,
        members: list[dict[str, Any]],
        payer: str,
        retention_days: int | None = None,
        model_policy: dict[str, Any] | None = None,
        engine: str | None = None,
    ) -> Collaboration:
        """Create a collaboration; ``members``: ``[{"name", "can_run", "can_receive"}]`` (each is
        invited and accepts with :meth:`accept`; the payer with ``accept(pay=True)``); ``engine``:
        where its templates run (``duckdb`` or ``spark``; default: the room's setting)."""
        return self._json(
            "POST",
            "/collaborations",
            _given(
                name=name,
                members=members,
                payer=payer,
                retention_days=retention_days,
                model_policy=model_policy,
                engine=engine,
            ),
        )

    def collaborations(self, *, limit: int | None = None, offset: int | None = None) -> list[Collaboration]:
        """Your collaborations (active memberships), one page."""
        return self._json("GET", "/collaborations", params=_page(limit, offset))

    def invitations(self, *, limit: int | None = None, offset: int | None = None) -> list[Collaboration]:
        """Collaborations you are invited to and have not answered yet."""
        return self._json("GET", "/invitations", params=_page(limit, offset))

    def accept(self, cid: int, pay: bool = False) -> Collaboration:
        """Accept an invitation (the paying member also accepts paying with ``pay=True``)."""
        return self._json("POST", f"/collaborations/{cid}/accept", {"pay": pay})

    def decline(self, cid: int) -> Declined:
        """Decline an invitation, for good."""
        return self._json("POST", f"/collaborations/{cid}/decline")

    def collaboration(self, cid: int) -> Collaboration:
        """Members, abilities, tables and their remaining budgets."""
        return self._json("GET", f"/collaborations/{cid}")

    # -- tables ---------------------------------------------------------------------------
    def configure_table(
        self,
        *,
        name: str,
        source_kind: str,
        source_path: str = "",
        allowed_columns: list[str],
        epsilon_budget: float,
        source_table: str | None = None,
        unit_column: str | None = None,
        unit_cap: int | None = None,
        allowed_receivers: list[str] | None = None,
        share_full_report: bool | None = None,
        delta_budget: float | None = None,
        share_scores: bool | None = None,
        max_gated_runs: int | None = None,
        column_types: dict[str, str] | None = None,
        model_evaluations: int | None = None,
    ) -> Table:
        """Configure one of your tables (a file on the server inside your data folders) with its
        analysis rule; the fields are those of ``POST /tables``."""
        body = _given(
            name=name,
            source_kind=source_kind,
            source_path=source_path,
            source_table=source_table,
            allowed_columns=allowed_columns,
            epsilon_budget=epsilon_budget,
            unit_column=unit_column,
            unit_cap=unit_cap,
            allowed_receivers=allowed_receivers,
            share_full_report=share_full_report,
            delta_budget=delta_budget,
            share_scores=share_scores,
            max_gated_runs=max_gated_runs,
            column_types=column_types,
            model_evaluations=model_evaluations,
        )
        return self._json("POST", "/tables", body)

    def tables(self, *, limit: int | None = None, offset: int | None = None) -> list[Table]:
        """Your configured tables, one page."""
        return self._json("GET", "/tables", params=_page(limit, offset))

    def table(self, tid: int) -> Table:
        """One table (its owner sees the source; collaborators the rule and budget)."""
        return self._json("GET", f"/tables/{tid}")

    def refresh_table(self, tid: int) -> Table:
        """Re-read one of your tables' source into a new snapshot."""
        return self._json("POST", f"/tables/{tid}/refresh")

    def associate(self, cid: int, table_id: int, name: str) -> Association:
        """Put one of your tables into a collaboration under ``name``."""
        return self._json("POST", f"/collaborations/{cid}/associations", {"table_id": table_id, "name": name})

    def dissociate(self, cid: int, name: str) -> Association:
        """Take one of your tables back out of a collaboration."""
        return self._json("DELETE", f"/collaborations/{cid}/associations/{name}")

    # -- templates ------------------------------------------------------------------------
    def create_template(
        self,
        cid: int,
        *,
        name: str,
        sql: str,
        epsilon: float,
        classification: dict[str, Any],
        max_mia_score: float | None = None,
        delta: float | None = None,
        rows: int | None = None,
    ) -> Template:
        """Propose a template (a name used before makes a new version)."""
        body = _given(
            name=name,
            sql=sql,
            epsilon=epsilon,
            classification=classification,
            max_mia_score=max_mia_score,
            delta=delta,
            rows=rows,
        )
        return self._json("POST", f"/collaborations/{cid}/templates", body)

    def templates(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> list[Template]:
        """A collaboration's templates, versions, hashes and approvals."""
        return self._json("GET", f"/collaborations/{cid}/templates", params=_page(limit, offset))

    def template(self, template_id: int) -> Template:
        return self._json("GET", f"/templates/{template_id}")

    def approve(self, template_id: int, content_hash: str) -> Template:
        """Approve the template whose content hash you reviewed."""
        return self._json("POST", f"/templates/{template_id}/approve", {"hash": content_hash})

    def revoke(self, template_id: int) -> Template:
        """Withdraw your approval (queued jobs on it fail without running)."""
        return self._json("DELETE", f"/templates/{template_id}/approve")

    # -- jobs -----------------------------------------------------------------------------
    def start_job(self, template_id: int) -> Job:
        """Queue a synthetic-data job on an approved template."""
        return self._json("POST", f"/templates/{template_id}/jobs")

    def jobs(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> list[Job]:
        return self._json("GET", f"/collaborations/{cid}/jobs", params=_page(limit, offset))

    def job(self, job_id: int) -> Job:
        """A job's state, reason, scores and metering."""
        return self._json("GET", f"/jobs/{job_id}")

    def wait(self, job_id: int, timeout: float = 3600, poll: float = 0.5) -> Job:
        """The job once its state is final (or as it is after ``timeout`` seconds)."""
        return _poll(self.job, job_id, timeout, poll)

    def result(self, job_id: int, fmt: str = "csv") -> bytes:
        """A job's released synthetic data (result receivers only), ``csv`` or ``parquet``."""
        return self._bytes(f"/jobs/{job_id}/result", {"format": fmt})

    def report(self, job_id: int, kind: str = "html") -> bytes:
        """A job's full evaluation report (when the tables' rules share it), ``html`` or ``json``."""
        return self._bytes(f"/jobs/{job_id}/report", {"kind": kind})

    # -- models ---------------------------------------------------------------------------
    def train(
        self, job_id: int, trainer: str = "auto", script: str | None = None, params: dict[str, float] | None = None
    ) -> Model:
        """Train a model on a job's synthetic data (queued in the server's worker); ``params``: a
        built-in trainer's hyperparameters."""
        return self._json("POST", f"/jobs/{job_id}/models", {"trainer": trainer, "script": script, "params": params})

    def wait_model(self, model_id: int, timeout: float = 3600, poll: float = 0.5) -> Model:
        """The model once its state is final (or as it is after ``timeout`` seconds)."""
        return _poll(self.model, model_id, timeout, poll)

    def models(self, job_id: int, *, limit: int | None = None, offset: int | None = None) -> list[Model]:
        return self._json("GET", f"/jobs/{job_id}/models", params=_page(limit, offset))

    def model(self, model_id: int) -> Model:
        return self._json("GET", f"/models/{model_id}")

    def model_file(self, model_id: int) -> bytes:
        """The model's ``model.skops`` (when the collaboration's model policy allows export)."""
        return self._bytes(f"/models/{model_id}/file")

    # -- inference ------------------------------------------------------------------------
    def infer(self, model_id: int, table_id: int) -> Inference:
        """Score your own table ``table_id`` with model ``model_id`` (queued in the server's worker)."""
        return self._json("POST", f"/models/{model_id}/inference", {"table_id": table_id})

    def inference(self, inference_id: int) -> Inference:
        return self._json("GET", f"/inference/{inference_id}")

    def wait_inference(self, inference_id: int, timeout: float = 3600, poll: float = 0.5) -> Inference:
        """The inference job once its state is final (or as it is after ``timeout`` seconds)."""
        return _poll(self.inference, inference_id, timeout, poll)

    def inference_list(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> list[Inference]:
        return self._json("GET", f"/collaborations/{cid}/inference", params=_page(limit, offset))

    def inference_result(self, inference_id: int, fmt: str = "csv") -> bytes:
        """The predictions (inference receivers only), ``csv`` or ``parquet``."""
        return self._bytes(f"/inference/{inference_id}/result", {"format": fmt})

    # -- audit and metering ---------------------------------------------------------------
    def audit(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> Audit:
        """One page of the audit log; ``verified`` and ``problem`` are about the whole chain."""
        return self._json("GET", f"/collaborations/{cid}/audit", params=_page(limit, offset))

    def audit_head(self, cid: int) -> AuditHead:
        """The chain's head signed by the server: keep it to check later with :meth:`audit_verify`."""
        return self._json("GET", f"/collaborations/{cid}/audit/head")

    def audit_verify(self, cid: int, head: Mapping[str, Any]) -> AuditProof:
        """Whether the chain verifies and still holds ``head`` (from :meth:`audit_head`) where it was."""
        return self._json("POST", f"/collaborations/{cid}/audit/verify", dict(head))

    def metering(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> Metering:
        """Compute time and rows per job, charged to the paying member (one page, all totals)."""
        return self._json("GET", f"/collaborations/{cid}/metering", params=_page(limit, offset))


def _poll(fetch: Callable[[int], _State], object_id: int, timeout: float, poll: float) -> _State:
    """``fetch(object_id)`` until its state is final or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        current = fetch(object_id)
        if current["state"] in FINISHED or time.monotonic() > deadline:
            return current
        time.sleep(poll)
