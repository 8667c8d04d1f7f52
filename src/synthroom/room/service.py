"""The clean room's rules: members, collaborations, configured tables, associations, templates.

Every function takes the acting member and checks, inside one transaction, that the member may
do what it asks; the state change and its audit entry commit together or not at all. Results
are plain JSON-ready dicts (the API returns them as they are). Jobs: :mod:`.jobs`; models:
:mod:`.training`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..engine import ENGINES
from ..engine.spark_sandbox import spark_sql
from ..engine.types import is_number, is_time
from ..errors import InputError
from ..privacy.accountant import DEFAULT_DELTA
from ..schema import check_epsilon, check_max_mia_score, parse_schema
from ..sql import (
    SOURCE_KINDS,
    SPARK_SOURCE_KINDS,
    Snapshot,
    Source,
    TableColumns,
    check_column_types,
    check_template,
    data_folder,
    open_below,
    output_types,
    snapshot_source,
)
from . import audit
from .db import Database
from .errors import Conflict, Forbidden, NotFound
from ..sql.template import UNIT_COLUMN
from .grants import (
    ClusterPath,
    check_apart,
    granted_cluster_path,
    granted_table,
    local_roots,
    no_symlinks_below,
    normalise_grant,
    parse_cluster_path,
)
from .ledger import DEFAULT_DELTA_BUDGET, delta_remaining, remaining
from .mlpolicy import parse_policy, policy_of
from .models import Approval, Association, Collaboration, ConfiguredTable, Member, Membership, Template
from .settings import Settings, server_secret

AUDIT_KEY_ENV = "SYNTHROOM_AUDIT_KEY"
MAX_ID = 2**63 - 1  # ids are 64-bit signed integers in every database
RETENTION_DAYS = (1, 30)
MAX_DELTA = 1e-5
MAX_DELTA_BUDGET = 1e-4  # a table's total delta across all jobs
GATED_RUNS = (1, 1000)  # the range of a table's max_gated_runs
MAX_MODEL_EVALUATIONS = 100  # a table's model_evaluations: models per job scored on its real holdout


@dataclass(frozen=True)
class Actor:
    """An authenticated member."""

    id: int
    name: str


def hash_key(key: str) -> str:
    """API keys are 256-bit random tokens, so one SHA-256 is enough (no password stretching)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _private_sqlite_file(url: str) -> None:
    """Create a SQLite database file with mode 0600 before SQLite does (its -wal and -shm files
    take the database file's mode)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        path.chmod(0o600)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Room:
    """The clean room's state: the metadata database and the artifacts folder.

    ``admin_key`` (kept only hashed) is needed to create members. ``settings`` holds every limit
    (any of its fields may also be given as a keyword). The audit
    chains are keyed with ``audit_key``: by default ``$SYNTHROOM_AUDIT_KEY``, else the key in
    ``audit.key`` beside the artifacts folder (the data folder), created on first start with mode
    0600. The process's umask becomes 0077 and the artifacts folder 0700: the database, artifacts,
    reports, results and keys are the server user's alone. ``seeded_jobs`` lets the operator's own
    reproducibility checks give a job an explicit seed (such a job is marked reproducible and never
    released); it is not a setting, so no serve flag reaches it. ``on_job_queued`` and
    ``on_model_queued`` are called with the new id after a job's or a model's creation commits
    (the server's background worker).
    """

    def __init__(
        self,
        url: str,
        artifacts: str | Path,
        admin_key: str | None = None,
        *,
        settings: Settings | None = None,
        audit_key: str | bytes | None = None,
        seeded_jobs: bool = False,
        **overrides: Any,
    ):
        os.umask(0o077)
        self.settings = Settings(**{**(settings or Settings()).model_dump(), **overrides})  # validated
        self.artifacts = Path(artifacts)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.artifacts.chmod(0o700)
        _private_sqlite_file(url)
        self.db = Database(url)
        audit.bind_key(self.db.engine, audit_key or server_secret(self.artifacts.parent / "audit.key", AUDIT_KEY_ENV))
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self.seeded_jobs = seeded_jobs
        self.on_job_queued: Callable[[int], None] | None = None
        self.on_model_queued: Callable[[int], None] | None = None

    def transaction(self):
        """A short write transaction (see :mod:`.db`)."""
        return self.db.transaction()

    def read(self):
        """A read-only snapshot: holds no write lock, so it never waits for another request."""
        return self.db.read()

    def window(self, limit: int | None, offset: int) -> slice:
        """The items of one page of a list: ``limit`` of them (the settings' page size when None,
        at most their max_page_size) after skipping ``offset``."""
        limit = self.settings.page_size if limit is None else limit
        if not _whole(limit, 1, self.settings.max_page_size):
            raise InputError(f"limit {limit!r} must be a whole number from 1 to {self.settings.max_page_size}")
        if not _whole(offset, 0, MAX_ID):
            raise InputError(f"offset {offset!r} must be a whole number from 0 to {MAX_ID}")
        return slice(offset, offset + limit)

    def page(self, statement: Select, limit: int | None, offset: int) -> Select:
        """One page (:meth:`window`) of an ordered ``statement``, cut by the database."""
        window = self.window(limit, offset)
        return statement.limit(window.stop - window.start).offset(window.start)

    # -- members --------------------------------------------------------------------------
    def create_member(self, admin_key: str, name: str, data_roots: list[str] | None = None) -> dict:
        """A new member and its API key (shown once; only its hash is stored). ``data_roots``:
        what the member may configure (:mod:`.grants`): local folders, cluster path prefixes
        (``hdfs://``, ``s3a://``, ``file://`` URIs) and ``spark-table:db.name`` or ``db.*``."""
        if not self.is_admin_key(admin_key):
            raise Forbidden("creating members needs the server's admin key")
        name = _check_name(name, "member name")
        roots = [normalise_grant(r) for r in (data_roots or [])]
        check_apart(
            roots,
            {
                "artifacts folder": ClusterPath("file", "", self.artifacts.resolve().parts[1:]),
                "Spark snapshot folder": self.spark_snapshot_root(),
            },
        )
        key = "sr_" + secrets.token_urlsafe(32)
        with self.transaction() as s:
            if s.scalar(select(Member).where(Member.name == name)) is not None:
                raise Conflict(f"a member named {name!r} already exists")
            member = Member(name=name, key_hash=hash_key(key), data_roots=_json(roots))
            s.add(member)
            s.flush()
            audit.append(s, audit.ROOM_SCOPE, "admin", "member.created", {"member": name, "data_roots": roots})
            return {"id": member.id, "name": name, "api_key": key, "data_roots": roots}

    def spark_snapshot_root(self) -> ClusterPath:
        """Where the room writes its snapshots of cluster sources (the ``spark_snapshot_root``
        setting; default ``spark-data`` in the artifacts folder, as a ``file://`` location)."""
        if self.settings.spark_snapshot_root:
            return parse_cluster_path(self.settings.spark_snapshot_root, "spark_snapshot_root")
        return ClusterPath("file", "", (self.artifacts.resolve() / "spark-data").parts[1:])

    def is_admin_key(self, key: str | None) -> bool:
        """Whether ``key`` is the server's admin key (no admin key set: never)."""
        return self._admin_hash is not None and hmac.compare_digest(hash_key(key or ""), self._admin_hash)

    def authenticate(self, api_key: str | None) -> Actor:
        if not api_key:
            raise Forbidden("an API key is required (header X-API-Key)")
        with self.read() as s:
            member = s.scalar(select(Member).where(Member.key_hash == hash_key(api_key)))
            if member is None:
                raise Forbidden("the API key is not valid")
            return Actor(member.id, member.name)

    # -- collaborations -------------------------------------------------------------------
    def create_collaboration(
        self,
        actor: Actor,
        name: str,
        members: list[dict],
        payer: str,
        retention_days: int = 7,
        model_policy: dict | None = None,
        engine: str | None = None,
    ) -> dict:
        """``members``: ``[{"name", "can_run", "can_receive"}]``; the creator is always a member.

        Consent: the creator is active; every other member is *invited* and neither acts in the
        collaboration nor is charged until it accepts (:meth:`accept_invitation`). A payer other
        than the creator must also accept paying for synthetic-data generation; a creator naming
        itself payer accepts by creating. ``model_policy``: :class:`.mlpolicy.ModelPolicy` (an
        inference payer other than the creator accepts like the payer). ``engine``: where its
        templates run (``duckdb`` or ``spark``; None: the room's ``engine`` setting)."""
        name = _check_name(name, "collaboration name")
        policy = parse_policy(model_policy)
        _check_collaboration_options(retention_days, engine)
        limit = self.settings.max_collaboration_members
        if len(members) > limit:
            raise InputError(f"a collaboration may list at most {limit} members ({len(members)} listed)")
        with self.transaction() as s:
            abilities, names = _listed_members(s, actor, members, limit)
            payer_member = _member_by_name(s, payer)
            if payer_member.id not in abilities:
                raise InputError(f"the paying member {payer!r} is not a member of the collaboration")
            if stray := sorted(policy.names() - set(names.values())):
                raise InputError(f"the model policy names {stray[0]!r}, who is not a member of the collaboration")
            collab = Collaboration(
                name=name,
                creator_id=actor.id,
                payer_id=payer_member.id,
                retention_days=retention_days,
                payer_accepted=payer_member.id == actor.id,
                model_policy=policy.model_dump_json(),
                inference_payer_accepted=policy.inference_payer in (None, actor.name),
                engine=engine,
            )
            s.add(collab)
            s.flush()
            status = {m: "active" if m == actor.id else "invited" for m in abilities}
            for member_id, (run, receive) in abilities.items():
                s.add(
                    Membership(
                        collaboration_id=collab.id,
                        member_id=member_id,
                        can_run=run,
                        can_receive=receive,
                        status=status[member_id],
                    )
                )
            audit.append(
                s,
                audit.collaboration_scope(collab.id),
                actor.name,
                "collaboration.created",
                {
                    "name": name,
                    "payer": payer_member.name,
                    "retention_days": retention_days,
                    "members": {
                        names[m]: {"can_run": r, "can_receive": c, "status": status[m]}
                        for m, (r, c) in abilities.items()
                    },
                    "model_policy": policy.model_dump(),
                    **({"engine": engine} if engine else {}),
                },
            )
            return _collaboration_view(s, collab)

    def get_collaboration(self, actor: Actor, collaboration_id: int) -> dict:
        """Active members, and members invited to it (to decide whether to accept), read it."""
        with self.read() as s:
            collab, _ = membership(s, actor, collaboration_id, invited=True)
            return _collaboration_view(s, collab)

    def list_collaborations(self, actor: Actor, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        """The collaborations ``actor`` is an active member of, oldest first, one page."""
        return self._my_collaborations(actor, "active", limit, offset)

    def invitations(self, actor: Actor, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        """The collaborations ``actor`` is invited to and has not answered yet, one page."""
        return self._my_collaborations(actor, "invited", limit, offset)

    def _my_collaborations(self, actor: Actor, status: str, limit: int | None, offset: int) -> list[dict]:
        with self.read() as s:
            ids = s.scalars(
                self.page(
                    select(Membership.collaboration_id)
                    .where(Membership.member_id == actor.id, Membership.status == status)
                    .order_by(Membership.collaboration_id),
                    limit,
                    offset,
                )
            ).all()
            return [_collaboration_view(s, s.get(Collaboration, i)) for i in ids]

    def accept_invitation(self, actor: Actor, collaboration_id: int, *, pay: bool = False) -> dict:
        """``actor`` accepts its invitation (its membership becomes active); with ``pay``, the
        paying member also accepts paying for synthetic-data generation (it may do so later, by
        accepting again with ``pay``). Accepting what was already accepted changes nothing."""
        with self.transaction() as s:
            collab, row = membership(s, actor, collaboration_id, invited=True)
            pays_inference = policy_of(collab).inference_payer == actor.name
            if pay and collab.payer_id != actor.id and not pays_inference:
                raise Conflict(
                    f"{actor.name!r} is not the paying member of collaboration {collab.id}: accept without pay"
                )
            scope = audit.collaboration_scope(collab.id)
            if row.status == "invited":
                row.status = "active"
                audit.append(
                    s,
                    scope,
                    actor.name,
                    "membership.accepted",
                    {"member": actor.name, "can_run": row.can_run, "can_receive": row.can_receive},
                )
            if pay and collab.payer_id == actor.id and not collab.payer_accepted:
                collab.payer_accepted = True
                audit.append(
                    s,
                    scope,
                    actor.name,
                    "payment.accepted",
                    {"payer": actor.name, "pays_for": "synthetic-data generation"},
                )
            if pay and pays_inference and not collab.inference_payer_accepted:
                collab.inference_payer_accepted = True
                audit.append(s, scope, actor.name, "payment.accepted", {"payer": actor.name, "pays_for": "inference"})
            s.flush()
            return _collaboration_view(s, collab)

    def decline_invitation(self, actor: Actor, collaboration_id: int) -> dict:
        """``actor`` declines its invitation: it never becomes active (a job that reads its tables
        or that it would pay for never runs)."""
        with self.transaction() as s:
            collab, row = membership(s, actor, collaboration_id, invited=True)
            if row.status != "invited":
                raise Conflict(
                    f"{actor.name!r} is already an active member of collaboration {collab.id}; "
                    "only an invitation not yet accepted can be declined"
                )
            row.status = "declined"
            audit.append(
                s, audit.collaboration_scope(collab.id), actor.name, "membership.declined", {"member": actor.name}
            )
            return {"collaboration_id": collab.id, "member": actor.name, "status": row.status}

    # -- configured tables ----------------------------------------------------------------
    def configure_table(
        self,
        actor: Actor,
        name: str,
        source_kind: str,
        source_path: str,
        allowed_columns: list[str],
        epsilon_budget: float,
        unit_column: str | None = None,
        unit_cap: int = 1,
        source_table: str | None = None,
        allowed_receivers: list[str] | None = None,
        share_full_report: bool = False,
        delta_budget: float = DEFAULT_DELTA_BUDGET,
        share_scores: bool = False,
        max_gated_runs: int = 5,
        column_types: dict[str, str] | None = None,
        model_evaluations: int = 0,
    ) -> dict:
        """Register one of the actor's data sources with its analysis rule.

        The allowed columns are copied into a snapshot in the room's own storage now (see
        :mod:`synthroom.sql.sandbox`); jobs read only that snapshot, never the member's file, so a
        file swapped or changed later changes nothing until the owner calls :meth:`refresh_table`.
        The copy is made outside any database transaction. ``column_types`` declares a CSV's
        column types (else DuckDB's sniffer guesses them from the rows, once, here)."""
        name = _check_name(name, "table name")
        _check_table_rule(
            source_kind,
            allowed_columns,
            epsilon_budget,
            unit_column=unit_column,
            unit_cap=unit_cap,
            delta_budget=delta_budget,
            max_gated_runs=max_gated_runs,
            model_evaluations=model_evaluations,
        )
        with self.transaction() as s:
            roots = json.loads(s.get(Member, actor.id).data_roots)
            for receiver in allowed_receivers or []:
                _member_by_name(s, receiver)
        declared = check_column_types(source_kind, column_types)
        path, source_table = self._granted_source(source_kind, source_path, source_table, roots, actor.name)
        snapshot = self._snapshot(source_kind, path, roots, list(allowed_columns), source_table, declared)
        try:
            with self.transaction() as s:
                table = ConfiguredTable(
                    owner_id=actor.id,
                    name=name,
                    source_kind=source_kind,
                    source_path=path,
                    source_table=source_table,
                    columns=_json(list(snapshot.columns)),
                    allowed_columns=_json(list(allowed_columns)),
                    allowed_receivers=None if allowed_receivers is None else _json(list(allowed_receivers)),
                    share_full_report=bool(share_full_report),
                    unit_column=unit_column,
                    unit_cap=unit_cap,
                    epsilon_budget=float(epsilon_budget),
                    delta_budget=float(delta_budget),
                    share_scores=bool(share_scores),
                    max_gated_runs=max_gated_runs,
                    snapshot_path=snapshot.path,
                    model_evaluations=model_evaluations,
                    snapshot_sha256=snapshot.sha256,
                    column_types=_json(declared) if declared else None,
                )
                s.add(table)
                s.flush()
                audit.append(s, audit.ROOM_SCOPE, actor.name, "table.configured", _configured_entry(table))
                return table_view(table, owner_view=True)
        except BaseException:
            self._discard(snapshot.path)
            raise

    def _granted_source(
        self, kind: str, source_path: Any, source_table: Any, roots: list[str], member: str
    ) -> tuple[str, str | None]:
        """The source's location as stored (``source_path``, ``source_table``), once the member's
        grant is found to cover it: a local file, a cluster path or a Spark table (:mod:`.grants`)."""
        if kind == "spark_table":
            if source_path:
                raise InputError("a spark_table source names its table in source_table (database.table), no path")
            return "", granted_table(source_table, roots, member)
        if source_table is not None and kind != "duckdb":
            raise InputError(f"source_table names a table of a duckdb or spark_table source, not of a {kind} source")
        if kind in SPARK_SOURCE_KINDS:
            return str(granted_cluster_path(source_path, roots, member)[0]), None
        return str(_inside_roots(source_path, local_roots(roots), member)), source_table

    def refresh_table(self, actor: Actor, table_id: int) -> dict:
        """The owner re-reads its source into a new snapshot (same checks as configuring it).

        The refreshed columns must have the same names and types as before (approved templates
        were checked against them); otherwise configure a new table. Jobs that start afterwards
        read the new snapshot; a job running meanwhile fails with ``source_changed``."""
        with self.transaction() as s:
            table = _visible_table(s, actor, table_id)
            if table.owner_id != actor.id:
                raise Forbidden(f"only the owner of table {table.name!r} can refresh it")
            roots = json.loads(s.get(Member, actor.id).data_roots)
            kind, source, source_table = table.source_kind, table.source_path, table.source_table
            allowed, old_path, old_sha = json.loads(table.allowed_columns), table.snapshot_path, table.snapshot_sha256
            declared = json.loads(table.column_types) if table.column_types else None
        source, source_table = self._granted_source(kind, source, source_table, roots, actor.name)
        snapshot = self._snapshot(kind, source, roots, allowed, source_table, declared)
        try:
            if old_path and not self._same_schema(kind, old_path, snapshot):
                raise InputError(
                    f"table {table_id}'s source now gives other column types "
                    f"({_types_text(snapshot)}); configure a new table instead"
                )
            with self.transaction() as s:
                table = s.get(ConfiguredTable, table_id)
                if table.snapshot_sha256 != old_sha:
                    raise Conflict(f"table {table_id} was refreshed meanwhile; try again")
                table.snapshot_path, table.snapshot_sha256 = snapshot.path, snapshot.sha256
                audit.append(
                    s,
                    audit.ROOM_SCOPE,
                    actor.name,
                    "table.refreshed",
                    {"table_id": table.id, "name": table.name, "snapshot_sha256": snapshot.sha256},
                )
                view = table_view(table, owner_view=True)
        except BaseException:
            self._discard(snapshot.path)
            raise
        if old_path and old_path != snapshot.path:
            self._discard(old_path)
        return view

    def _discard(self, snapshot_path: str) -> None:
        """Delete a snapshot the room wrote: a local file, or a cluster folder (through Hadoop)."""
        if not snapshot_path.startswith(str(self.spark_snapshot_root()) + "/"):
            Path(snapshot_path).unlink(missing_ok=True)
            return
        from ..engine.spark import spark_session
        from ..engine.spark_snapshots import delete_path

        delete_path(spark_session(self.settings.spark_master), snapshot_path)

    def _same_schema(self, kind: str, old_path: str, snapshot: Snapshot) -> bool:
        """Whether a refreshed snapshot has the column names and types of the old one (an old
        snapshot that is gone compares equal: nothing to compare with)."""
        if kind not in SPARK_SOURCE_KINDS:
            return not Path(old_path).exists() or _same_schema(old_path, snapshot.path)
        from ..engine.spark import spark_session
        from ..engine.spark_snapshots import snapshot_types

        old = snapshot_types(spark_session(self.settings.spark_master), old_path)
        return old is None or old == snapshot.types

    def _snapshot(
        self,
        kind: str,
        source: str,
        roots: list[str],
        keep: list[str],
        table: str | None,
        column_types: dict[str, str] | None = None,
    ) -> Snapshot:
        """Open the member's file without following symlinks and snapshot its ``keep`` columns
        (a cluster source: :meth:`_cluster_snapshot`)."""
        if kind in SPARK_SOURCE_KINDS:
            grant = None if kind == "spark_table" else granted_cluster_path(source, roots, "")[1]
            return self._cluster_snapshot(
                kind, (table or "") if kind == "spark_table" else source, grant, keep, column_types
            )
        path = Path(source)
        root = next(r for r in local_roots(roots) if path.is_relative_to(r))
        fd = open_below(root, path.relative_to(root).parts, str(path))
        try:
            return snapshot_source(
                kind, fd, str(path), keep, data_folder(self.artifacts), table=table, column_types=column_types
            )
        finally:
            os.close(fd)

    def _cluster_snapshot(
        self, kind: str, shown: str, grant: ClusterPath | None, keep: list[str], column_types: dict[str, str] | None
    ) -> Snapshot:
        """Copy the ``keep`` columns of a cluster source (``shown``: its checked URI, below
        ``grant``, or its table name), with Spark, into a new folder under the room's Spark
        snapshot root, and fingerprint the copy on the cluster (:mod:`synthroom.engine.spark_snapshots`)."""
        from ..engine.spark import spark_session
        from ..engine.spark_snapshots import read_source, snapshot_fingerprint, write_snapshot

        session = spark_session(self.settings.spark_master)
        if grant is not None:
            no_symlinks_below(grant, parse_cluster_path(shown), shown)
        frame = read_source(session, kind, shown, shown=shown, column_types=column_types)
        root = self.spark_snapshot_root()
        if (local := root.local_path()) is not None:  # the default: a private folder of the room's
            local.mkdir(mode=0o700, parents=True, exist_ok=True)
        path, columns, types = write_snapshot(frame, keep, str(root), shown=shown)
        try:
            if grant is not None:  # a symlink swapped in while Spark read: the copy is refused
                no_symlinks_below(grant, parse_cluster_path(shown), shown)
            return Snapshot(path, snapshot_fingerprint(session, path), columns, types)
        except BaseException:
            self._discard(path)
            raise

    def get_table(self, actor: Actor, table_id: int) -> dict:
        """The owner sees everything; members of a collaboration it is associated with see the
        rule and the remaining budget, never the source path."""
        with self.read() as s:
            table = _visible_table(s, actor, table_id)
            return table_view(table, owner_view=table.owner_id == actor.id)

    def list_tables(self, actor: Actor, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        """The actor's own tables, oldest first, one page."""
        with self.read() as s:
            return [
                table_view(t, owner_view=True)
                for t in s.scalars(
                    self.page(
                        select(ConfiguredTable)
                        .where(ConfiguredTable.owner_id == actor.id)
                        .order_by(ConfiguredTable.id),
                        limit,
                        offset,
                    )
                )
            ]

    def associate(self, actor: Actor, collaboration_id: int, table_id: int, name: str) -> dict:
        """Put one of the actor's tables into a collaboration under ``name``."""
        name = _check_identifier(name)
        with self.transaction() as s:
            collab, _ = membership(s, actor, collaboration_id)
            table = _visible_table(s, actor, table_id)
            if table.owner_id != actor.id:
                raise Forbidden(f"only the owner of table {table.name!r} can associate it with a collaboration")
            _check_engine_reads(engine_of(self, collab)["name"], collaboration_id, [table])
            assoc = Association(collaboration_id=collaboration_id, table_id=table.id, name=name)
            s.add(assoc)
            try:
                s.flush()
            except IntegrityError:
                raise Conflict(
                    f"collaboration {collaboration_id} already has a table named {name!r} or already holds table "
                    f"{table.id}"
                ) from None
            audit.append(
                s,
                audit.collaboration_scope(collaboration_id),
                actor.name,
                "table.associated",
                {"name": name, "table_id": table.id, "owner": actor.name},
            )
            return {"collaboration_id": collaboration_id, "name": name, "table_id": table.id}

    def dissociate(self, actor: Actor, collaboration_id: int, name: str) -> dict:
        """Take one of the actor's tables back out of a collaboration (templates reading it stop
        running, queued jobs included)."""
        with self.transaction() as s:
            membership(s, actor, collaboration_id)
            assoc = (
                s.scalar(
                    select(Association).where(
                        Association.collaboration_id == collaboration_id, Association.name == name
                    )
                )
                if _is_identifier(name)
                else None
            )
            if assoc is None:
                raise NotFound(f"collaboration {collaboration_id} has no table named {name!r}")
            if s.get(ConfiguredTable, assoc.table_id).owner_id != actor.id:
                raise Forbidden(f"only the owner of table {name!r} can take it out of the collaboration")
            s.delete(assoc)
            audit.append(
                s,
                audit.collaboration_scope(collaboration_id),
                actor.name,
                "table.dissociated",
                {"name": name, "table_id": assoc.table_id},
            )
            return {"collaboration_id": collaboration_id, "name": name, "table_id": assoc.table_id}

    # -- templates ------------------------------------------------------------------------
    def create_template(
        self,
        actor: Actor,
        collaboration_id: int,
        name: str,
        sql: str,
        epsilon: float,
        classification: Any,
        max_mia_score: float | None = None,
        delta: float = DEFAULT_DELTA,
        rows: int | None = None,
    ) -> dict:
        """Check and store a template; a name used before gets the next version (an edit)."""
        name = _check_name(name, "template name")
        _check_text(sql, "the template's SQL")
        params = _check_params(epsilon, classification, max_mia_score, delta, rows, self.settings.max_rows)
        with self.read() as s:  # the checks are CPU-heavy: they run on a snapshot, outside any write
            collab, _ = membership(s, actor, collaboration_id)
            tables = _associated_tables(s, collaboration_id)
            engine = engine_of(self, collab)
        checked = check_template(
            sql,
            {n: table_columns(t) for n, t in tables.items()},
            [c["name"] for c in params["classification"]["columns"]],
        )
        sources = [source_of(n, tables[n]) for n in checked.tables]
        _check_engine_reads(engine["name"], collaboration_id, [tables[n] for n in checked.tables])
        types: dict[str, str] = {}
        if engine["name"] == "spark":  # its Spark SQL too, checked and analysed by Spark, as a job runs it
            types = _check_on_spark(checked, sources, engine["master"])
        if not any(source.cluster for source in sources):  # a cluster snapshot: Spark's types only
            types = output_types(checked, sources)
        _check_output_kinds(types, params)
        read = {n: tables[n].id for n in checked.tables}
        with self.transaction() as s:  # short: re-validate what the checks relied on, then store
            membership(s, actor, collaboration_id)
            _check_unchanged(s, collaboration_id, {n: tables[n] for n in checked.tables})
            version = (
                s.scalar(
                    select(func.max(Template.version)).where(
                        Template.collaboration_id == collaboration_id, Template.name == name
                    )
                )
                or 0
            ) + 1
            template = Template(
                collaboration_id=collaboration_id,
                name=name,
                version=version,
                sql=checked.sql,
                params=_json(params),
                tables=_json(read),
                created_by=actor.id,
                content_hash="",
            )
            template.content_hash = content_hash(template)
            s.add(template)
            s.flush()
            audit.append(
                s,
                audit.collaboration_scope(collaboration_id),
                actor.name,
                "template.created",
                {
                    "template_id": template.id,
                    "name": name,
                    "version": version,
                    "hash": template.content_hash,
                    "tables": sorted(read),
                },
            )
            return template_view(s, template)

    def get_template(self, actor: Actor, template_id: int) -> dict:
        with self.read() as s:
            return template_view(s, visible(s, actor, Template, template_id, "template"))

    def list_templates(
        self, actor: Actor, collaboration_id: int, *, limit: int | None = None, offset: int = 0
    ) -> list[dict]:
        """A collaboration's templates, oldest first, one page."""
        with self.read() as s:
            membership(s, actor, collaboration_id)
            return [
                template_view(s, t)
                for t in s.scalars(
                    self.page(
                        select(Template).where(Template.collaboration_id == collaboration_id).order_by(Template.id),
                        limit,
                        offset,
                    )
                )
            ]

    def revoke_approval(self, actor: Actor, template_id: int) -> dict:
        """Withdraw the actor's approval: no new job runs the template, nor a queued one."""
        with self.transaction() as s:
            template = visible(s, actor, Template, template_id, "template")
            approval = s.get(Approval, (template.id, actor.id))
            if approval is None:
                raise NotFound(f"{actor.name!r} has not approved template {template.name!r} version {template.version}")
            s.delete(approval)
            s.flush()
            audit.append(
                s,
                audit.collaboration_scope(template.collaboration_id),
                actor.name,
                "template.revoked",
                {"template_id": template.id, "name": template.name, "version": template.version},
            )
            return template_view(s, template)

    def approve_template(self, actor: Actor, template_id: int, approved_hash: str) -> dict:
        """An owner of a table the template reads approves exactly the content it reviewed."""
        with self.transaction() as s:
            template = visible(s, actor, Template, template_id, "template")
            if actor.id not in required_approvers(s, template):
                raise Forbidden(
                    f"{actor.name!r} owns no table that template {template.name!r} reads, so it cannot approve it"
                )
            if (
                not isinstance(approved_hash, str)
                or approved_hash != template.content_hash
                or content_hash(template) != template.content_hash
            ):
                raise Conflict(
                    f"the hash {approved_hash!r} is not the content hash of template {template.name!r} "
                    f"version {template.version} ({template.content_hash})"
                )
            if s.get(Approval, (template.id, actor.id)) is None:
                s.add(Approval(template_id=template.id, member_id=actor.id, content_hash=approved_hash))
                s.flush()
                audit.append(
                    s,
                    audit.collaboration_scope(template.collaboration_id),
                    actor.name,
                    "template.approved",
                    {
                        "template_id": template.id,
                        "name": template.name,
                        "version": template.version,
                        "hash": approved_hash,
                    },
                )
            return template_view(s, template)

    # -- the audit chain's signed heads -----------------------------------------------------
    def audit_head(self, actor: Actor, collaboration_id: int) -> dict:
        """The collaboration's audit head, signed by the server: a member keeps it to check later
        (:meth:`prove_audit_head`) that the chain was not rewritten or cut short since."""
        with self.transaction() as s:
            membership(s, actor, collaboration_id)
            return audit.signed_head(s, audit.collaboration_scope(collaboration_id))

    def prove_audit_head(self, actor: Actor, collaboration_id: int, head: dict) -> dict:
        """Whether the collaboration's chain verifies and still holds ``head`` where it was."""
        with self.transaction() as s:
            membership(s, actor, collaboration_id)
            return audit.prove_extends(s, audit.collaboration_scope(collaboration_id), head)


# -- helpers shared with jobs/training ----------------------------------------------------------
def membership(
    s: Session, actor: Actor, collaboration_id: int, *, invited: bool = False
) -> tuple[Collaboration, Membership]:
    """The collaboration and the actor's active membership in it. ``invited``: an invitation not
    yet answered will do (to read the collaboration and answer). No such collaboration, not a
    member, or declined: one :class:`NotFound`, worded as for an id that does not exist."""
    collab = s.get(Collaboration, collaboration_id) if _whole(collaboration_id, 1, MAX_ID) else None
    row = _membership_row(s, actor.id, collaboration_id) if collab is not None else None
    if collab is None or row is None or row.status == "declined":
        raise not_found("collaboration", collaboration_id)
    if row.status != "active" and not invited:
        raise Forbidden(
            f"{actor.name!r} has not accepted the invitation to collaboration {collaboration_id} yet "
            f"(`synthroom room accept {collaboration_id}`)"
        )
    return collab, row


def _membership_row(s: Session, member_id: int, collaboration_id: int) -> Membership | None:
    return s.get(Membership, (collaboration_id, member_id))


def _active(s: Session, member_id: int, collaboration_id: int) -> bool:
    row = _membership_row(s, member_id, collaboration_id)
    return row is not None and row.status == "active"


def visible(s: Session, actor: Actor, model, object_id: int, what: str):
    """Object ``object_id`` of ``model`` (one with a ``collaboration_id``) if ``actor`` is an active
    member of its collaboration; otherwise :class:`NotFound` worded exactly as for an id that does
    not exist, so an outsider cannot tell which ids exist."""
    obj = get_row(s, model, object_id, what)
    if not _active(s, actor.id, obj.collaboration_id):
        raise not_found(what, object_id)
    return obj


def _visible_table(s: Session, actor: Actor, table_id: int) -> ConfiguredTable:
    """A table its owner, or an active member of a collaboration it is associated with, may see."""
    table = get_row(s, ConfiguredTable, table_id, "table")
    if table.owner_id != actor.id:
        shared = s.scalars(select(Association.collaboration_id).where(Association.table_id == table.id)).all()
        if not any(_active(s, actor.id, cid) for cid in shared):
            raise not_found("table", table_id)
    return table


def consent_missing(s: Session, collab: Collaboration, tables: Iterable[ConfiguredTable]) -> str | None:
    """Why no job of ``collab`` that reads ``tables`` may run yet (None: it may): every owner of a
    table it reads and the payer must be active members, and the payer must have accepted paying."""
    needed = {t.owner_id for t in tables} | {collab.payer_id}
    names = dict(s.execute(select(Member.id, Member.name).where(Member.id.in_(needed))).all())
    pending = sorted(names[m] for m in needed if not _active(s, m, collab.id))
    problems = []
    if pending:
        problems.append(f"{', '.join(pending)} {'has' if len(pending) == 1 else 'have'} not accepted the invitation")
    if not collab.payer_accepted:
        problems.append(
            f"the paying member {names[collab.payer_id]!r} has not accepted paying for synthetic-data "
            f"generation (`synthroom room accept {collab.id} --pay`)"
        )
    if not problems:
        return None
    return (
        f"no job runs in collaboration {collab.id} until the owners of the tables it reads and the paying member "
        f"have accepted: {'; '.join(problems)}"
    )


def _whole(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def not_found(what: str, object_id: Any) -> NotFound:
    """The one answer for an object that does not exist and for one the caller may not see."""
    return NotFound(f"no {what} with id {object_id}")


def get_row(s: Session, model, object_id: int, what: str):
    """The row ``object_id`` of ``model``; an id that is not a 64-bit positive integer is no row."""
    obj = s.get(model, object_id) if _whole(object_id, 1, MAX_ID) else None
    if obj is None:
        raise not_found(what, object_id)
    return obj


def _configured_entry(table: ConfiguredTable) -> dict:
    """The audit entry of a newly configured table: its analysis rule and its snapshot's hash."""
    return {
        "table_id": table.id,
        "name": table.name,
        "allowed_columns": json.loads(table.allowed_columns),
        "unit_column": table.unit_column,
        "unit_cap": table.unit_cap,
        "epsilon_budget": table.epsilon_budget,
        "allowed_receivers": None if table.allowed_receivers is None else json.loads(table.allowed_receivers),
        "delta_budget": table.delta_budget,
        "share_scores": table.share_scores,
        "max_gated_runs": table.max_gated_runs,
        "model_evaluations": table.model_evaluations,
        "snapshot_sha256": table.snapshot_sha256,
    }


def _check_table_rule(
    source_kind: str,
    allowed_columns: list[str],
    epsilon_budget: float,
    *,
    unit_column: str | None,
    unit_cap: int,
    delta_budget: float,
    max_gated_runs: int,
    model_evaluations: int,
) -> None:
    """Refuse (InputError, naming the fault) a configured table's unknown source kind or an
    analysis rule out of range: budgets, the cap on rows per unit, the allowed columns (the unit
    column among them)."""
    if source_kind not in SOURCE_KINDS:
        raise InputError(f"source kind {source_kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    if (
        not isinstance(epsilon_budget, (int, float))
        or isinstance(epsilon_budget, bool)
        or not 0 < epsilon_budget <= 100
    ):
        raise InputError(f"epsilon budget {epsilon_budget!r} must be a number in (0, 100]")
    if isinstance(unit_cap, bool) or not isinstance(unit_cap, int) or not 1 <= unit_cap <= 1000:
        raise InputError(f"the cap on rows per privacy unit {unit_cap!r} must be a whole number from 1 to 1000")
    _check_privacy_rule(delta_budget, max_gated_runs, model_evaluations)
    if not allowed_columns or not all(isinstance(c, str) and c for c in allowed_columns):
        raise InputError("list the columns templates may use (allowed_columns)")
    if unit_column and unit_column not in allowed_columns:
        raise InputError(
            f"the privacy-unit column {unit_column!r} must be among the allowed columns (templates join on it)"
        )


def _listed_members(
    s, actor: Actor, members: list[dict], limit: int
) -> tuple[dict[int, tuple[bool, bool]], dict[int, str]]:
    """A new collaboration's members (its creator first, with no ability unless listed): each
    one's ``(can_run, can_receive)`` and name, by member id; refused when a member is listed twice
    or there are more than ``limit``."""
    abilities: dict[int, tuple[bool, bool]] = {actor.id: (False, False)}
    names = {actor.id: actor.name}
    for entry in members:
        member = _member_by_name(s, entry.get("name"))
        if member.id in names and member.id != actor.id:
            raise InputError(f"member {member.name!r} is listed twice")
        abilities[member.id] = (bool(entry.get("can_run")), bool(entry.get("can_receive")))
        names[member.id] = member.name
    if len(abilities) > limit:
        raise InputError(f"a collaboration may have at most {limit} members, its creator included")
    return abilities, names


def _member_by_name(s: Session, name: Any) -> Member:
    usable = isinstance(name, str) and name.isprintable()
    member = s.scalar(select(Member).where(Member.name == name)) if usable else None
    if member is None:
        raise InputError(f"no member named {name!r}")
    return member


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or not name.isprintable():
        raise InputError(f"{what} {name!r} must be a non-empty text of at most 100 printable characters")
    return name.strip()


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character other than tab and line breaks (NUL included:
    PostgreSQL cannot store it, a path cannot hold it, and no honest text needs one)."""
    return any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text)


def _check_text(text: Any, what: str) -> str:
    """Free text (SQL) may hold line breaks and tabs but no other control character."""
    if not isinstance(text, str) or has_control(text):
        raise InputError(f"{what} must be text without control characters other than tabs and line breaks")
    return text


def _is_identifier(name: Any) -> bool:
    return (
        isinstance(name, str)
        and name.isidentifier()
        and not name.startswith("__")
        and len(name) <= 60
        and name == name.lower()
    )


def _check_identifier(name: Any) -> str:
    if not _is_identifier(name):
        raise InputError(f"association name {name!r} must be a plain lower-case SQL identifier (letters, digits, _)")
    if name.lower().startswith("synthroom"):
        raise InputError(f"association name {name!r} is reserved (names starting with 'synthroom' are the executor's)")
    return name


def _inside_roots(source_path: Any, roots: list[str], member: str) -> Path:
    """A member's sources must lie in a folder the admin granted it (so nobody points a table
    at another member's files). The check is on the absolute path as given, without resolving
    symlinks: opening the file (:func:`synthroom.sql.open_below`) refuses any symlink below the
    granted folder instead of following it."""
    if not isinstance(source_path, str) or not os.path.isabs(source_path) or "\x00" in source_path:
        raise InputError(f"data source {source_path!r} must be an absolute path to a file in one of your data folders")
    path = Path(os.path.normpath(source_path))
    if not any(path.is_relative_to(root) and path != Path(root) for root in roots):
        raise Forbidden(f"{source_path!r} is outside {member!r}'s data folders")
    return path


def _same_schema(old: str, new: str) -> bool:
    import pyarrow.parquet as pq

    return pq.read_schema(old).equals(pq.read_schema(new), check_metadata=False)


def _types_text(snapshot: Snapshot) -> str:
    return ", ".join(f"{c} {t}" for c, t in snapshot.types.items())


def _check_params(epsilon, classification, max_mia_score, delta, rows, max_rows: int) -> dict:
    schema = parse_schema(classification)
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 < delta <= MAX_DELTA:
        raise InputError(f"delta {delta!r} must be in (0, {MAX_DELTA:g}]")
    if rows is not None and not _whole(rows, 1, max_rows):
        raise InputError(f"rows {rows!r} must be a whole number from 1 to {max_rows:,} (the server's max_rows)")
    return {
        "epsilon": check_epsilon(epsilon),
        "delta": float(delta),
        "rows": rows,
        "max_mia_score": None if max_mia_score is None else check_max_mia_score(max_mia_score),
        "classification": schema.to_dict(),
    }


def _check_privacy_rule(delta_budget: Any, max_gated_runs: Any, model_evaluations: Any = 0) -> None:
    """A table's delta budget, its limit on gated runs per template version, and how many models
    per job may be scored on its real holdout rows."""
    if (
        isinstance(delta_budget, bool)
        or not isinstance(delta_budget, (int, float))
        or not 0 < delta_budget <= MAX_DELTA_BUDGET
    ):
        raise InputError(f"delta budget {delta_budget!r} must be a number in (0, {MAX_DELTA_BUDGET:g}]")
    lo, hi = GATED_RUNS
    if isinstance(max_gated_runs, bool) or not isinstance(max_gated_runs, int) or not lo <= max_gated_runs <= hi:
        raise InputError(f"max_gated_runs {max_gated_runs!r} must be a whole number from {lo} to {hi}")
    if not _whole(model_evaluations, 0, MAX_MODEL_EVALUATIONS):
        raise InputError(
            f"model_evaluations {model_evaluations!r} must be a whole number from 0 (no model is scored "
            f"on real rows) to {MAX_MODEL_EVALUATIONS}"
        )


def _check_output_kinds(types: dict[str, str], params: dict) -> None:
    for col in params["classification"]["columns"]:
        sql_type = types[col["name"]].upper()
        if col["type"] == "numerical" and not is_number(sql_type):
            raise InputError(
                f"template rejected: column {col['name']!r} is classified numerical but the template gives {sql_type}"
            )
        if col["type"] == "datetime" and not (is_time(sql_type) or sql_type == "VARCHAR"):
            raise InputError(
                f"template rejected: column {col['name']!r} is classified datetime but the template gives {sql_type}"
            )


def vouched_fields(template: Template) -> dict[str, Any]:
    """What an approval vouches for (SQL, parameters, which tables it reads), as members see it."""
    return {
        "collaboration_id": template.collaboration_id,
        "name": template.name,
        "version": template.version,
        "sql": template.sql,
        "params": json.loads(template.params),
        "tables": json.loads(template.tables),
    }


def content_hash(template: Template) -> str:
    """SHA-256 of :func:`vouched_fields`: the hash an approval names."""
    return hashlib.sha256(_json(vouched_fields(template)).encode()).hexdigest()


def required_approvers(s: Session, template: Template) -> set[int]:
    return {s.get_one(ConfiguredTable, tid).owner_id for tid in json.loads(template.tables).values()}


def _associated_tables(s: Session, collaboration_id: int) -> dict[str, ConfiguredTable]:
    """The collaboration's tables by association name."""
    assocs = s.scalars(select(Association).where(Association.collaboration_id == collaboration_id))
    return {a.name: s.get_one(ConfiguredTable, a.table_id) for a in assocs}  # tables are never deleted


def _check_unchanged(s: Session, collaboration_id: int, checked: dict[str, ConfiguredTable]) -> None:
    """The tables a template was checked against (on a snapshot) are still associated under the
    same names with the same columns: else the check is stale and the template is not stored."""
    now = _associated_tables(s, collaboration_id)
    for name, table in checked.items():
        if name not in now or now[name].id != table.id or table_columns(now[name]) != table_columns(table):
            raise Conflict(
                f"table {name!r} of collaboration {collaboration_id} changed while the template was "
                "being checked; send the template again"
            )


def _check_collaboration_options(retention_days: Any, engine: Any) -> None:
    lo, hi = RETENTION_DAYS
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or not lo <= retention_days <= hi:
        raise InputError(f"retention_days {retention_days!r} must be a whole number of days from {lo} to {hi}")
    if engine is not None and engine not in ENGINES:
        raise InputError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")


def _check_engine_reads(engine: str, collaboration_id: int, tables: list[ConfiguredTable]) -> None:
    """A collaboration on DuckDB cannot read a Spark source (a Spark table or cluster path): its
    snapshot lives on the cluster, and only a job on Spark reads it."""
    if engine == "spark":
        return
    for table in tables:
        if table.source_kind in SPARK_SOURCE_KINDS:
            raise InputError(
                f"table {table.name!r} is a Spark source ({table.source_kind}); collaboration {collaboration_id} "
                f"runs its templates on {engine}: only a collaboration on Spark can use it"
            )


def _check_on_spark(checked: Any, sources: list[Source], master: str | None) -> dict[str, str]:
    """The template's Spark SQL form passes the Spark-side checks (no session needed), then
    Spark's own analysis over the tables' empty views (a session: the room's): the output
    columns' types (the engine's names), the unit column left out."""
    from ..engine.spark import spark_session
    from ..engine.spark_sandbox import describe_template_spark

    spark_sql(checked)
    described = describe_template_spark(checked, sources, spark_session(master))
    return {name: sql_type for name, sql_type in described if name != UNIT_COLUMN}


def engine_of(room: Room, collab: Collaboration) -> dict:
    """Where a collaboration's templates run: its own engine, else the room's (``settings.engine``)."""
    return {"name": collab.engine or room.settings.engine, "master": room.settings.spark_master}


def table_columns(table: ConfiguredTable) -> TableColumns:
    return TableColumns(tuple(json.loads(table.columns)), tuple(json.loads(table.allowed_columns)), table.unit_column)


def source_of(name: str, table: ConfiguredTable) -> Source:
    """What the executor loads for ``table``: its snapshot, never the member's file."""
    return Source(
        name,
        table.snapshot_path or "",
        table.snapshot_sha256 or "",
        tuple(json.loads(table.allowed_columns)),
        table.unit_column,
        cluster=table.source_kind in SPARK_SOURCE_KINDS,
    )


def table_view(table: ConfiguredTable, owner_view: bool) -> dict:
    view = {
        "id": table.id,
        "name": table.name,
        "owner_id": table.owner_id,
        "allowed_columns": json.loads(table.allowed_columns),
        "unit_column": table.unit_column,
        "unit_cap": table.unit_cap,
        "epsilon_budget": table.epsilon_budget,
        "epsilon_spent": table.epsilon_spent,
        "epsilon_remaining": remaining(table),
        "delta_budget": table.delta_budget,
        "delta_spent": table.delta_spent,
        "delta_remaining": delta_remaining(table),
        "share_scores": table.share_scores,
        "max_gated_runs": table.max_gated_runs,
        "model_evaluations": table.model_evaluations,
        "allowed_receivers": None if table.allowed_receivers is None else json.loads(table.allowed_receivers),
        "share_full_report": table.share_full_report,
    }
    if owner_view:
        view.update(
            source_kind=table.source_kind,
            source_path=table.source_path,
            source_table=table.source_table,
            columns=json.loads(table.columns),
            snapshot_sha256=table.snapshot_sha256,
        )
    return view


def template_view(s: Session, template: Template) -> dict:
    approvers = required_approvers(s, template)
    approvals = {
        a.member_id: a.content_hash for a in s.scalars(select(Approval).where(Approval.template_id == template.id))
    }
    names = {m.id: m.name for m in s.scalars(select(Member).where(Member.id.in_(approvers | set(approvals))))}
    approved_by = sorted(names[m] for m, h in approvals.items() if h == template.content_hash)
    return {
        "id": template.id,
        **vouched_fields(template),
        "hash": template.content_hash,
        "approvers": sorted(names[m] for m in approvers),
        "approved_by": approved_by,
        "approved": set(approved_by) == {names[m] for m in approvers},
    }


def _collaboration_view(s: Session, collab: Collaboration) -> dict:
    rows = s.execute(
        select(Membership, Member)
        .join(Member, Member.id == Membership.member_id)
        .where(Membership.collaboration_id == collab.id)
    ).all()
    assocs = s.execute(
        select(Association, ConfiguredTable)
        .join(ConfiguredTable, ConfiguredTable.id == Association.table_id)
        .where(Association.collaboration_id == collab.id)
    ).all()
    owners = {m.id: m.name for _, m in rows}
    return {
        "id": collab.id,
        "name": collab.name,
        "payer": owners.get(collab.payer_id),
        "payer_accepted": collab.payer_accepted,
        "retention_days": collab.retention_days,
        "model_policy": policy_of(collab).model_dump(),
        "inference_payer_accepted": collab.inference_payer_accepted,
        "engine": collab.engine,
        "members": [
            {"name": m.name, "can_run": ms.can_run, "can_receive": ms.can_receive, "status": ms.status}
            for ms, m in rows
        ],
        "tables": [
            {
                "name": a.name,
                "table_id": t.id,
                "owner": owners.get(t.owner_id),
                **{k: v for k, v in table_view(t, owner_view=False).items() if k not in ("id", "name", "owner_id")},
            }
            for a, t in assocs
        ],
    }
