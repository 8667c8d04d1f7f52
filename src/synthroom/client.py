"""A Python client of the clean room's REST API (``synthroom serve``), for scripts and notebooks.

::

    from synthroom.client import RoomClient, NotFoundError

    room = RoomClient("https://room.example.org", key="...")   # or RoomClient.from_env()
    collab = room.create_collaboration("spring", [{"name": "publisher"}], payer="advertiser")
    job = room.wait(room.start_job(template_id=7)["id"])
    open("synthetic.csv", "wb").write(room.result(job["id"], "csv"))

One method per endpoint; each answers the server's JSON (a ``dict`` or a ``list`` of them, the
fields are those of the API's response models, see ``/docs`` on the server) or, for files, the
bytes. A refusal raises a :class:`ClientError` subclass chosen by the HTTP status
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
from typing import Any, Callable

import httpx

__all__ = [
    "DEFAULT_SERVER",
    "FINISHED",
    "ClientError",
    "ConflictError",
    "ForbiddenError",
    "InvalidInputError",
    "NotFoundError",
    "RoomClient",
    "ServerError",
    "TooLargeError",
    "Unreachable",
]

DEFAULT_SERVER = "http://127.0.0.1:8765"
FINISHED = ("succeeded", "failed", "finished")  # a job's or a model's final states

JSON = dict[str, Any]


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
    def health(self) -> JSON:
        """``{"status": "ok", "version": ...}``; needs no key."""
        return self._json("GET", "/health")

    def create_member(self, name: str, data_roots: list[str]) -> JSON:
        """Create a member (needs ``admin_key``); the answer holds its API key, shown only once."""
        return self._json("POST", "/members", {"name": name, "data_roots": data_roots})

    def me(self) -> JSON:
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
    ) -> JSON:
        """Create a collaboration; ``members``: ``[{"name", "can_run", "can_receive"}]`` (each is
        invited and accepts with :meth:`accept`; the payer with ``accept(pay=True)``)."""
        return self._json(
            "POST",
            "/collaborations",
            _given(name=name, members=members, payer=payer, retention_days=retention_days, model_policy=model_policy),
        )

    def collaborations(self, *, limit: int | None = None, offset: int | None = None) -> list[JSON]:
        """Your collaborations (active memberships), one page."""
        return self._json("GET", "/collaborations", params=_page(limit, offset))

    def invitations(self, *, limit: int | None = None, offset: int | None = None) -> list[JSON]:
        """Collaborations you are invited to and have not answered yet."""
        return self._json("GET", "/invitations", params=_page(limit, offset))

    def accept(self, cid: int, pay: bool = False) -> JSON:
        """Accept an invitation (the paying member also accepts paying with ``pay=True``)."""
        return self._json("POST", f"/collaborations/{cid}/accept", {"pay": pay})

    def decline(self, cid: int) -> JSON:
        """Decline an invitation, for good."""
        return self._json("POST", f"/collaborations/{cid}/decline")

    def collaboration(self, cid: int) -> JSON:
        """Members, abilities, tables and their remaining budgets."""
        return self._json("GET", f"/collaborations/{cid}")

    # -- tables ---------------------------------------------------------------------------
    def configure_table(
        self,
        *,
        name: str,
        source_kind: str,
        source_path: str,
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
    ) -> JSON:
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

    def tables(self, *, limit: int | None = None, offset: int | None = None) -> list[JSON]:
        """Your configured tables, one page."""
        return self._json("GET", "/tables", params=_page(limit, offset))

    def table(self, tid: int) -> JSON:
        """One table (its owner sees the source; collaborators the rule and budget)."""
        return self._json("GET", f"/tables/{tid}")

    def refresh_table(self, tid: int) -> JSON:
        """Re-read one of your tables' source into a new snapshot."""
        return self._json("POST", f"/tables/{tid}/refresh")

    def associate(self, cid: int, table_id: int, name: str) -> JSON:
        """Put one of your tables into a collaboration under ``name``."""
        return self._json("POST", f"/collaborations/{cid}/associations", {"table_id": table_id, "name": name})

    def dissociate(self, cid: int, name: str) -> JSON:
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
    ) -> JSON:
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

    def templates(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> list[JSON]:
        """A collaboration's templates, versions, hashes and approvals."""
        return self._json("GET", f"/collaborations/{cid}/templates", params=_page(limit, offset))

    def template(self, template_id: int) -> JSON:
        return self._json("GET", f"/templates/{template_id}")

    def approve(self, template_id: int, content_hash: str) -> JSON:
        """Approve the template whose content hash you reviewed."""
        return self._json("POST", f"/templates/{template_id}/approve", {"hash": content_hash})

    def revoke(self, template_id: int) -> JSON:
        """Withdraw your approval (queued jobs on it fail without running)."""
        return self._json("DELETE", f"/templates/{template_id}/approve")

    # -- jobs -----------------------------------------------------------------------------
    def start_job(self, template_id: int) -> JSON:
        """Queue a synthetic-data job on an approved template."""
        return self._json("POST", f"/templates/{template_id}/jobs")

    def jobs(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> list[JSON]:
        return self._json("GET", f"/collaborations/{cid}/jobs", params=_page(limit, offset))

    def job(self, job_id: int) -> JSON:
        """A job's state, reason, scores and metering."""
        return self._json("GET", f"/jobs/{job_id}")

    def wait(self, job_id: int, timeout: float = 3600, poll: float = 0.5) -> JSON:
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
    ) -> JSON:
        """Train a model on a job's synthetic data (queued in the server's worker); ``params``: a
        built-in trainer's hyperparameters."""
        return self._json("POST", f"/jobs/{job_id}/models", {"trainer": trainer, "script": script, "params": params})

    def wait_model(self, model_id: int, timeout: float = 3600, poll: float = 0.5) -> JSON:
        """The model once its state is final (or as it is after ``timeout`` seconds)."""
        return _poll(self.model, model_id, timeout, poll)

    def models(self, job_id: int, *, limit: int | None = None, offset: int | None = None) -> list[JSON]:
        return self._json("GET", f"/jobs/{job_id}/models", params=_page(limit, offset))

    def model(self, model_id: int) -> JSON:
        return self._json("GET", f"/models/{model_id}")

    def model_file(self, model_id: int) -> bytes:
        """The model's ``model.skops`` (when the collaboration's model policy allows export)."""
        return self._bytes(f"/models/{model_id}/file")

    # -- inference ------------------------------------------------------------------------
    def infer(self, model_id: int, table_id: int) -> JSON:
        """Score your own table ``table_id`` with model ``model_id`` (queued in the server's worker)."""
        return self._json("POST", f"/models/{model_id}/inference", {"table_id": table_id})

    def inference(self, inference_id: int) -> JSON:
        return self._json("GET", f"/inference/{inference_id}")

    def wait_inference(self, inference_id: int, timeout: float = 3600, poll: float = 0.5) -> JSON:
        """The inference job once its state is final (or as it is after ``timeout`` seconds)."""
        return _poll(self.inference, inference_id, timeout, poll)

    def inference_list(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> list[JSON]:
        return self._json("GET", f"/collaborations/{cid}/inference", params=_page(limit, offset))

    def inference_result(self, inference_id: int, fmt: str = "csv") -> bytes:
        """The predictions (inference receivers only), ``csv`` or ``parquet``."""
        return self._bytes(f"/inference/{inference_id}/result", {"format": fmt})

    # -- audit and metering ---------------------------------------------------------------
    def audit(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> JSON:
        """One page of the audit log; ``verified`` and ``problem`` are about the whole chain."""
        return self._json("GET", f"/collaborations/{cid}/audit", params=_page(limit, offset))

    def audit_head(self, cid: int) -> JSON:
        """The chain's head signed by the server: keep it to check later with :meth:`audit_verify`."""
        return self._json("GET", f"/collaborations/{cid}/audit/head")

    def audit_verify(self, cid: int, head: dict[str, Any]) -> JSON:
        """Whether the chain verifies and still holds ``head`` (from :meth:`audit_head`) where it was."""
        return self._json("POST", f"/collaborations/{cid}/audit/verify", head)

    def metering(self, cid: int, *, limit: int | None = None, offset: int | None = None) -> JSON:
        """Compute time and rows per job, charged to the paying member (one page, all totals)."""
        return self._json("GET", f"/collaborations/{cid}/metering", params=_page(limit, offset))


def _poll(fetch: Callable[[int], JSON], object_id: int, timeout: float, poll: float) -> JSON:
    """``fetch(object_id)`` until its state is final or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        current = fetch(object_id)
        if current["state"] in FINISHED or time.monotonic() > deadline:
            return current
        time.sleep(poll)
