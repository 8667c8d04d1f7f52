"""``synthroom room ...``: the clean room's client commands (over :class:`synthroom.client.RoomClient`), and ``serve``.

Every command talks to a running server (``--server``, ``$SYNTHROOM_SERVER``, or the one
``synthroom room login`` stored; default http://127.0.0.1:8765) with the member's key (``--key``,
``$SYNTHROOM_API_KEY``, or the stored one: :mod:`.config`). Answers: one JSON document with
``--json`` or when stdout is not a terminal, else a readable table; a refusal prints the server's
one-line reason. Exit codes, the same for every command: :mod:`.output`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from ..client import DEFAULT_SERVER, RoomClient
from ..errors import InputError
from . import workers as w
from .config import config_path, forget_key, load_config, save_config
from .output import AUDIT_BROKEN, BAD_INPUT, as_json, call, emit, fail, final_exit_code, set_json, wait_for

room_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Clean-room client: talks to `synthroom serve`."
)
out = Console()
err = Console(stderr=True)


# -- the commands ----------------------------------------------------------------------------
_state: dict[str, Any] = {}


@room_app.callback()
def _options(
    server: Optional[str] = typer.Option(
        None, help=f"Server URL (default $SYNTHROOM_SERVER, else the one `login` stored, else {DEFAULT_SERVER})."
    ),
    key: Optional[str] = typer.Option(
        None, help="Your API key (default $SYNTHROOM_API_KEY, else the one `login` stored)."
    ),
    admin_key: Optional[str] = typer.Option(
        None, help="The server's admin key, for member-create (default $SYNTHROOM_ADMIN_KEY)."
    ),
    json_output: bool = typer.Option(
        False,
        "--json",
        help="Print one JSON document (the default when stdout is not a terminal); every command also takes --json.",
    ),
) -> None:
    set_json(json_output)
    _state.clear()
    _state.update(server=server, key=key, admin_key=admin_key)


def _settings() -> tuple[str, str | None]:
    """The server and key: the options, else the environment, else the config file."""
    try:
        stored = load_config()
    except InputError as exc:
        fail(str(exc), BAD_INPUT)
    server = _state.get("server") or os.environ.get("SYNTHROOM_SERVER") or stored.get("server") or DEFAULT_SERVER
    key = _state.get("key") or os.environ.get("SYNTHROOM_API_KEY") or stored.get("key")
    return server, key


def _client() -> RoomClient:
    if "client" not in _state:
        server, key = _settings()
        _state["client"] = RoomClient(
            server, key, admin_key=_state.get("admin_key") or os.environ.get("SYNTHROOM_ADMIN_KEY")
        )
    return _state["client"]


def _show(action, title: str | None = None) -> Any:
    """Run one client call and print its answer (a refusal: its message and exit code)."""
    value = call(action)
    emit(value, title=title)
    return value


def _load(path: Path) -> Any:
    try:
        text = path.read_text()
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", BAD_INPUT)
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        fail(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {why}{where}", BAD_INPUT)


@room_app.command("member-create")
def member_create(
    name: str,
    data_root: list[str] = typer.Option(
        [],
        help="What this member may configure (repeat): a server folder, a cluster path prefix "
        "(hdfs://, s3a://, file:// URI) or spark-table:db.name (or db.*).",
    ),
):
    """Create a member (needs the admin key); prints its API key once."""
    _show(lambda: _client().create_member(name, list(data_root)))


@room_app.command()
def me():
    """Who the API key belongs to."""
    _show(_client().me)


@room_app.command("collab-create")
def collab_create(
    name: str,
    payer: str = typer.Option(..., help="The member who pays for generation."),
    member: list[str] = typer.Option([], help="NAME[:run][:receive], repeat per member."),
    retention_days: int = typer.Option(7, help="Days job artifacts are kept (1-30)."),
    allow_export: bool = typer.Option(False, help="Model policy: receivers may download models."),
    max_artifact_mib: int = typer.Option(10, help="Model policy: largest model file that may leave, MiB."),
    model_provider: Optional[list[str]] = typer.Option(
        None, help="Model policy: a member who may run training scripts (repeat; none: every receiver)."
    ),
    inference_runner: list[str] = typer.Option(
        [], help="Model policy: a member who may score its own tables (repeat)."
    ),
    inference_receiver: list[str] = typer.Option([], help="Model policy: a member who receives predictions (repeat)."),
    inference_payer: Optional[str] = typer.Option(
        None, help="Model policy: who pays for inference (default: the payer)."
    ),
    engine: Optional[str] = typer.Option(
        None, help="Where its templates run: duckdb or spark (default: the server's engine setting)."
    ),
):
    """Create a collaboration: the members listed are invited (each accepts with `accept`; the
    payer, and an inference payer, with `accept --pay`)."""
    members = []
    for spec in member:
        name_, *abilities = spec.split(":")
        members.append({"name": name_, "can_run": "run" in abilities, "can_receive": "receive" in abilities})
    policy = {
        "allow_export": allow_export,
        "max_artifact_mib": max_artifact_mib,
        "model_providers": model_provider,
        "inference_runners": inference_runner,
        "inference_receivers": inference_receiver,
        "inference_payer": inference_payer,
    }
    _show(lambda: _client().create_collaboration(name, members, payer, retention_days, policy, engine))


LIMIT = typer.Option(None, help="Items per page (default: the server's page size).")
OFFSET = typer.Option(0, help="Items to skip (the next page: offset + limit).")


@room_app.command("collab-list")
def collab_list(limit: Optional[int] = LIMIT, offset: int = OFFSET):
    """Your collaborations (active memberships)."""
    _show(lambda: _client().collaborations(limit=limit, offset=offset))


@room_app.command()
def invitations(limit: Optional[int] = LIMIT, offset: int = OFFSET):
    """Collaborations you are invited to and have not answered yet."""
    _show(lambda: _client().invitations(limit=limit, offset=offset))


@room_app.command()
def accept(
    collaboration_id: int,
    pay: bool = typer.Option(False, help="As the paying member, also accept paying for synthetic-data generation."),
):
    """Accept an invitation: you become an active member (and, with --pay, the paying one)."""
    _show(lambda: _client().accept(collaboration_id, pay))


@room_app.command()
def decline(collaboration_id: int):
    """Decline an invitation (for good)."""
    _show(lambda: _client().decline(collaboration_id))


@room_app.command("collab-show")
def collab_show(collaboration_id: int):
    """Members, abilities, tables and their remaining budgets."""
    _show(lambda: _client().collaboration(collaboration_id))


def _source_kind(source: str | None, duckdb_table: str | None, spark_table: str | None) -> str:
    """The kind of a source from how it is named: a Spark table, a cluster URI (CSV if its name
    ends in .csv, else Parquet), a DuckDB table, or a local file by its extension."""
    if spark_table:
        return "spark_table"
    if not source:
        raise typer.BadParameter("give --source (or --spark-table)", param_hint="--source")
    if "://" in source:
        return "spark_csv" if source.lower().rstrip("/").endswith(".csv") else "spark_parquet"
    return "duckdb" if duckdb_table else Path(source).suffix.lower().lstrip(".")


@room_app.command("table-create")
def table_create(
    name: str,
    source: Optional[str] = typer.Option(
        None, help="CSV/Parquet/DuckDB file on the server, or a cluster path (hdfs://, s3a://, file:// URI)."
    ),
    allow: list[str] = typer.Option(..., help="A column templates may use (repeat)."),
    budget: float = typer.Option(..., help="Total epsilon across all jobs."),
    unit: Optional[str] = typer.Option(None, help="Privacy-unit column (e.g. user_id)."),
    cap: int = typer.Option(1, help="Rows per privacy unit kept in a result."),
    duckdb_table: Optional[str] = typer.Option(None, help="Table inside a DuckDB database."),
    spark_table: Optional[str] = typer.Option(
        None, help="A Spark table by name (database.table), instead of --source."
    ),
    kind: Optional[str] = typer.Option(
        None, help="Source kind, when not clear from --source: spark_parquet or spark_csv for a cluster folder."
    ),
    receiver: Optional[list[str]] = typer.Option(None, help="Member allowed to receive results (repeat)."),
    share_report: bool = typer.Option(False, help="Receivers may read the full evaluation report."),
    delta_budget: float = typer.Option(1e-6, help="Total delta across all jobs."),
    share_scores: bool = typer.Option(False, help="Every member sees non-DP scores, not only receivers."),
    max_gated_runs: int = typer.Option(5, help="Charged jobs per template version reading this table."),
    model_evaluations: int = typer.Option(
        0, help="Models per job scored on this table's real holdout rows (non-DP, rounded metrics); 0: none."
    ),
    column_type: Optional[list[str]] = typer.Option(
        None,
        "--type",
        help="CSV only: COLUMN=TYPE (BIGINT, DOUBLE, VARCHAR, BOOLEAN, DATE, TIMESTAMP) "
        "instead of the type guessed from the rows (repeat).",
    ),
):
    """Configure one of your tables with its analysis rule."""
    kind = kind or _source_kind(source, duckdb_table, spark_table)
    types = dict(t.split("=", 1) for t in column_type or [] if "=" in t)
    if len(types) != len(column_type or []):
        raise typer.BadParameter("--type takes COLUMN=TYPE", param_hint="--type")
    _show(
        lambda: _client().configure_table(
            name=name,
            source_kind=kind,
            source_path=source or "",
            source_table=spark_table or duckdb_table,
            allowed_columns=allow,
            epsilon_budget=budget,
            unit_column=unit,
            unit_cap=cap,
            allowed_receivers=receiver or None,
            share_full_report=share_report,
            delta_budget=delta_budget,
            share_scores=share_scores,
            max_gated_runs=max_gated_runs,
            column_types=types or None,
            model_evaluations=model_evaluations,
        )
    )


@room_app.command("table-list")
def table_list(limit: Optional[int] = LIMIT, offset: int = OFFSET):
    """Your configured tables."""
    _show(lambda: _client().tables(limit=limit, offset=offset))


@room_app.command("table-show")
def table_show(table_id: int):
    """One table (its owner sees the source; collaborators the rule and budget)."""
    _show(lambda: _client().table(table_id))


@room_app.command("table-refresh")
def table_refresh(table_id: int):
    """Re-read one of your tables' source into a new snapshot (same columns and types required)."""
    _show(lambda: _client().refresh_table(table_id))


@room_app.command()
def associate(collaboration_id: int, table_id: int, name: str = typer.Option(..., help="Name templates use.")):
    """Put one of your tables into a collaboration."""
    _show(lambda: _client().associate(collaboration_id, table_id, name))


@room_app.command()
def dissociate(collaboration_id: int, name: str):
    """Take one of your tables back out of a collaboration."""
    _show(lambda: _client().dissociate(collaboration_id, name))


@room_app.command("template-create")
def template_create(
    collaboration_id: int,
    name: str,
    sql: Path = typer.Option(..., help="File with the SELECT."),
    classification: Path = typer.Option(..., help="Column classification (YAML/JSON)."),
    epsilon: float = typer.Option(...),
    max_mia_score: Optional[float] = typer.Option(None),
    rows: Optional[int] = typer.Option(None, help="Synthetic rows (default: DP estimate)."),
):
    """Propose a template (a name used before makes a new version)."""
    _show(
        lambda: _client().create_template(
            collaboration_id,
            name=name,
            sql=sql.read_text(),
            epsilon=epsilon,
            classification=_load(classification),
            max_mia_score=max_mia_score,
            rows=rows,
        )
    )


@room_app.command("template-list")
def template_list(collaboration_id: int, limit: Optional[int] = LIMIT, offset: int = OFFSET):
    """A collaboration's templates, versions, hashes and approvals."""
    _show(lambda: _client().templates(collaboration_id, limit=limit, offset=offset))


@room_app.command("template-show")
def template_show(template_id: int):
    """A template for review: its SQL formatted, the tables and columns it reads, its parameters,
    hash and approvals (JSON: the API's answer plus ``formatted_sql`` and ``columns_read``)."""
    from ..sql.display import columns_read, pretty_sql

    template = call(lambda: _client().template(template_id))
    shown = {**template, "formatted_sql": pretty_sql(template["sql"]), "columns_read": columns_read(template["sql"])}
    if as_json():
        emit(shown)
        return
    from rich.syntax import Syntax

    emit(
        {k: shown[k] for k in ("id", "name", "version", "hash", "approvers", "approved_by", "approved")},
        title=f"template {template['name']} v{template['version']}",
    )
    params = dict(shown["params"])
    classification = params.pop("classification", {})
    emit(params, title="parameters")
    emit(
        [
            {"column": c["name"], "type": c["type"], "predicted": c["name"] == classification.get("target")}
            for c in classification.get("columns", [])
        ],
        title="classification",
    )
    emit(
        {table: ", ".join(columns) for table, columns in shown["columns_read"].items()}, title="tables and columns read"
    )
    out.print(Syntax(shown["formatted_sql"], "sql", word_wrap=True))


def _full_hash(template: dict, given: str) -> str:
    """The template's hash when ``given`` is it or a prefix of it of at least 8 characters."""
    given = given.strip().lower()
    if len(given) < 8:
        fail(f"the hash {given!r} is too short: give at least its first 8 characters", BAD_INPUT)
    if not template["hash"].startswith(given):
        fail(
            f"{given!r} is not (a prefix of) template {template['id']}'s content hash {template['hash'][:12]}…: "
            f"review `template-show {template['id']}` again",
            BAD_INPUT,
        )
    return template["hash"]


@room_app.command()
def approve(
    template_id: int,
    hash: str = typer.Option(..., help="The content hash you reviewed (at least its first 8 characters)."),
):
    """Approve a template that reads one of your tables (its content hash, or a prefix of it)."""
    template = call(lambda: _client().template(template_id))
    full = _full_hash(template, hash)
    _show(lambda: _client().approve(template_id, full))


@room_app.command()
def revoke(template_id: int):
    """Withdraw your approval of a template (queued jobs on it fail without running)."""
    _show(lambda: _client().revoke(template_id))


WAIT = typer.Option(
    False,
    help="Wait until it finishes (progress on a terminal), print the final state, and exit "
    "3 when the gate refused it, 4 when it failed.",
)
TIMEOUT = typer.Option(3600.0, help="With --wait: give up waiting after this many seconds (exit 1; it keeps running).")


def _finish(thing: Mapping[str, Any], what: str) -> None:
    """Print the final state; exit with its code (3 refused by the gate, 4 failed)."""
    emit(thing, title=what)
    code = final_exit_code(thing)
    if code:
        err.print(
            f"[bold red]{what} {thing['state']}:[/] {escape(thing.get('reason') or '')}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code)


@room_app.command("job-start")
def job_start(template_id: int, wait: bool = WAIT, timeout: float = TIMEOUT):
    """Start a synthetic-data job on an approved template."""
    if not wait:
        _show(lambda: _client().start_job(template_id))
        return
    job = call(lambda: _client().start_job(template_id))
    _finish(wait_for(lambda: _client().job(job["id"]), f"job {job['id']}", timeout=timeout), f"job {job['id']}")


@room_app.command("job-list")
def job_list(collaboration_id: int, limit: Optional[int] = LIMIT, offset: int = OFFSET):
    _show(lambda: _client().jobs(collaboration_id, limit=limit, offset=offset))


@room_app.command("job-show")
def job_show(job_id: int):
    """A job's state, reason, scores and metering."""
    _show(lambda: _client().job(job_id))


def _save(data: bytes, output: Path) -> None:
    output.write_bytes(data)
    emit({"written": str(output), "bytes": len(data)})


@room_app.command()
def infer(
    model_id: int,
    table: int = typer.Option(..., help="Your own configured table to score."),
    wait: bool = WAIT,
    timeout: float = TIMEOUT,
):
    """Score one of your own tables with a trained model; the predictions go to the inference receivers."""
    job = call(lambda: _client().infer(model_id, table))
    if not wait:
        emit(job)
        return
    _finish(
        wait_for(lambda: _client().inference(job["id"]), f"inference {job['id']}", timeout=timeout),
        f"inference {job['id']}",
    )


@room_app.command("inference-list")
def inference_list(collaboration_id: int, limit: Optional[int] = LIMIT, offset: int = OFFSET):
    """A collaboration's inference jobs."""
    _show(lambda: _client().inference_list(collaboration_id, limit=limit, offset=offset))


@room_app.command("inference-show")
def inference_show(inference_id: int):
    _show(lambda: _client().inference(inference_id))


@room_app.command("inference-result")
def inference_result(inference_id: int, output: Path = typer.Option(..., "--output", "-o", help=".csv or .parquet")):
    """Download an inference job's predictions (inference receivers only)."""
    _save(call(lambda: _client().inference_result(inference_id, output.suffix.lower().lstrip("."))), output)


@room_app.command()
def result(job_id: int, output: Path = typer.Option(..., "--output", "-o", help=".csv or .parquet")):
    """Download a job's released synthetic data (result receivers only)."""
    fmt = output.suffix.lower().lstrip(".")
    _save(call(lambda: _client().result(job_id, fmt)), output)


@room_app.command()
def report(job_id: int, output: Path = typer.Option(..., "--output", "-o", help=".html or .json")):
    """Download a job's full evaluation report (when the tables' rules share it)."""
    _save(call(lambda: _client().report(job_id, output.suffix.lower().lstrip("."))), output)


@room_app.command()
def train(
    job_id: int,
    trainer: str = typer.Option("auto", help="auto, logistic, linear, gbm or script."),
    script: Optional[Path] = typer.Option(None, help="Training script (trainer 'script')."),
    param: list[str] = typer.Option([], help="A built-in trainer's hyperparameter, NAME=VALUE (repeat)."),
    wait: bool = WAIT,
    timeout: float = TIMEOUT,
):
    """Train a model on a job's synthetic data (in the server's background worker)."""
    text = script.read_text() if script else None
    params = _params(param)
    model = call(
        lambda: _client().train(job_id, "script" if script and trainer == "auto" else trainer, text, params or None)
    )
    if not wait:
        emit(model)
        return
    _finish(
        wait_for(lambda: _client().model(model["id"]), f"model {model['id']}", timeout=timeout), f"model {model['id']}"
    )


def _params(pairs: list[str]) -> dict[str, float]:
    """``NAME=VALUE`` pairs as numbers; a malformed one exits 2 naming it."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            fail(f"--param {pair!r} must be NAME=NUMBER", BAD_INPUT)
    return out


@room_app.command("model-list")
def model_list(job_id: int, limit: Optional[int] = LIMIT, offset: int = OFFSET):
    """The models trained on a job's synthetic data."""
    _show(lambda: _client().models(job_id, limit=limit, offset=offset))


@room_app.command("model-show")
def model_show(model_id: int):
    _show(lambda: _client().model(model_id))


@room_app.command("model-download")
def model_download(model_id: int, output: Path = typer.Option(..., "--output", "-o")):
    _save(call(lambda: _client().model_file(model_id)), output)


@room_app.command()
def audit(collaboration_id: int, limit: Optional[int] = LIMIT, offset: int = OFFSET):
    """One page of the collaboration's audit log, with the whole chain verified."""
    _show(lambda: _client().audit(collaboration_id, limit=limit, offset=offset))


@room_app.command("audit-head")
def audit_head(
    collaboration_id: int, output: Path = typer.Option(..., "--output", "-o", help="Where to keep it (.json).")
):
    """Export the audit chain's head, signed by the server; keep it to check later with audit-verify."""
    head = call(lambda: _client().audit_head(collaboration_id))
    output.write_text(json.dumps(head, indent=2) + "\n")
    emit(head)
    err.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)


@room_app.command("audit-verify")
def audit_verify(collaboration_id: int, head: Path = typer.Argument(..., help="A head exported by audit-head.")):
    """Ask the server to prove the chain still holds a head you kept; exit 6 when it does not."""
    proof = _show(lambda: _client().audit_verify(collaboration_id, _load(head)))
    if not proof["extends"]:
        err.print(
            f"[bold red]the audit chain does not extend your head:[/] {proof['problem']}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(AUDIT_BROKEN)


@room_app.command()
def metering(collaboration_id: int, limit: Optional[int] = LIMIT, offset: int = OFFSET):
    """Compute time and rows per job, charged to the paying member (one page of entries, all totals)."""
    _show(lambda: _client().metering(collaboration_id, limit=limit, offset=offset))


@room_app.command()
def login(key_stdin: bool = typer.Option(False, help="Read the API key from stdin (scripts) instead of a prompt.")):
    """Store the server URL (--server) and your API key in the config file (mode 0600), after the
    server confirmed the key; later commands need neither."""
    server, _ = _settings()
    key = _state.get("key") or (sys.stdin.readline().strip() if key_stdin else typer.prompt("API key", hide_input=True))
    me_ = call(lambda: RoomClient(server, key).me())
    path = save_config({"server": server, "key": key})
    emit({"server": server, "member": me_["name"], "config": str(path)})


@room_app.command()
def logout():
    """Remove the stored API key from the config file (the server URL stays)."""
    try:
        path = forget_key()
    except InputError as exc:
        fail(str(exc), BAD_INPUT)
    emit({"config": str(path or config_path()), "key_removed": path is not None})


# -- the server ------------------------------------------------------------------------------
def admin_key_for(data_dir: Path) -> str:
    """``$SYNTHROOM_ADMIN_KEY``, else the one kept in DATA_DIR/admin.key (created once, mode 600)."""
    from ..room.settings import server_secret

    return server_secret(data_dir / "admin.key", "SYNTHROOM_ADMIN_KEY")


_default = w.default  # a setting's default, for a flag's


def serve(
    ctx: typer.Context,
    data_dir: Path = typer.Option(
        Path("synthroom-data"), help="Folder for the metadata database, job artifacts and keys (mode 0700)."
    ),
    db_url: Optional[str] = typer.Option(None, help="SQLAlchemy URL (default: SQLite in DATA_DIR)."),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8765),
    allow_training_scripts: bool = typer.Option(
        True,
        "--allow-training-scripts/--no-training-scripts",
        help="Let members run training scripts (in the bubblewrap sandbox).",
    ),
    script_time_limit: float = typer.Option(_default("script_time_limit"), help="Seconds a training script may run."),
    script_memory_mib: int = typer.Option(
        _default("script_memory_mib"), help="Address space of a training script, MiB."
    ),
    script_output_mib: int = typer.Option(
        _default("script_output_mib"), help="Output folder size of a training script, MiB."
    ),
    max_body_bytes: int = typer.Option(_default("max_body_bytes"), help="Largest request body (413 beyond)."),
    page_size: int = typer.Option(_default("page_size"), help="Items per page when a list request names no limit."),
    max_page_size: int = typer.Option(_default("max_page_size"), help="Largest page a list request may ask for."),
    max_collaboration_members: int = typer.Option(
        _default("max_collaboration_members"), help="Members one collaboration may list."
    ),
    max_rows: int = typer.Option(_default("max_rows"), help="Largest number of synthetic rows a template may ask for."),
    workers: w.Workers = w.DEFAULT_WORKERS,
    job_seconds: w.JobSeconds = _default("job_seconds"),
    job_memory_mib: w.JobMemory = _default("job_memory_mib"),
    job_threads: w.JobThreads = _default("job_threads"),
    job_temp_disk_mib: w.JobTempDisk = _default("job_temp_disk_mib"),
    engine: w.Engine = _default("engine"),
    spark_master: w.SparkMaster = _default("spark_master"),
    config: w.ConfigFile = None,
) -> None:
    """Start the clean-room server: SQLite + local artifacts + DuckDB, nothing else to install.

    Keys live in DATA_DIR (mode 0600) unless given by environment: the admin key
    ($SYNTHROOM_ADMIN_KEY, admin.key) and the audit chain's key ($SYNTHROOM_AUDIT_KEY, audit.key)."""
    import uvicorn

    from ..api import create_app
    from ..room import Room, Worker
    from ..room.settings import load_settings

    try:
        settings = load_settings(config, **w.given_settings(ctx))
    except InputError as exc:
        fail(str(exc), BAD_INPUT)
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    key = admin_key_for(data_dir)
    room = Room(w.database_url(data_dir, db_url), data_dir / "artifacts", admin_key=key, settings=settings)
    job_worker = Worker(room, threads=workers) if workers else None
    if job_worker is None:  # jobs and trainings stay queued for `synthroom worker` processes
        room.on_job_queued = room.on_model_queued = lambda _id: None
    out.print(
        f"metadata: {room.db.url}\nartifacts: {room.artifacts}\nadmin key: "
        f"{'$SYNTHROOM_ADMIN_KEY' if os.environ.get('SYNTHROOM_ADMIN_KEY') else data_dir / 'admin.key'}\n"
        f"API docs: http://{host}:{port}/docs"
    )
    uvicorn.run(create_app(room, job_worker), host=host, port=port, log_level="info")
