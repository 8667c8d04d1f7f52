"""``synthroom demo``: a two-party clean room, end to end, through the REST API, in-process.

A publisher (audience table) and an advertiser (conversions table) share nothing but a user id.
The demo starts the server's app in this process (FastAPI's TestClient: no port, no separate
server), and then, as each party, over HTTP: creates the members, configures both tables with
their analysis rules, creates the collaboration (the publisher accepts its invitation; the
advertiser created it and pays), associates the tables, proposes the template,
approves it from both sides, runs the job (the background worker synthesizes, evaluates and
gates), shows the report's scores and two refusals, trains a model on the synthetic rows (scored
on the real holdout too, as both owners allow), scores the publisher's new users with it inside
the room (the advertiser receives the predictions), checks the audit chain and prints where
everything is.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from ..client import Audit, AuditHead, ClientError, Job, RoomClient, Template
from .adtech import (
    AUDIENCE_COLUMNS,
    CONVERSIONS_COLUMNS,
    DEMO_CLASSIFICATION,
    DEMO_TEMPLATE,
    simulate_audience,
    simulate_conversions,
)

ADMIN_KEY = "demo-admin-key"
# The collaboration's model policy: models may leave (as skops files up to 10 MiB), the publisher
# scores its own tables, the advertiser receives the predictions (and, as the payer, pays).
MODEL_POLICY = {
    "allow_export": True,
    "max_artifact_mib": 10,
    "inference_runners": ["publisher"],
    "inference_receivers": ["advertiser"],
}


def run_demo(
    workdir: Path,
    users: int = 5000,
    epsilon: float = 1.0,
    console: Console | None = None,
    *,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> dict:
    """Run the demo in ``workdir`` (created); returns the paths it printed. ``engine``: the room's
    (``spark``: templates run and rows are counted on Spark, ``spark_master`` or a local session)."""
    import warnings

    with warnings.catch_warnings():  # starlette's note about its test client's HTTP library
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from ..api import create_app
    from ..room import Room, Worker

    say = console or Console()
    start = time.perf_counter()
    server_dir, pub_dir, adv_dir = _folders(Path(workdir).resolve())
    db_path = server_dir / "room.db"
    if db_path.exists():  # a fresh room each run
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    room = Room(f"sqlite:///{db_path}", server_dir / "artifacts", ADMIN_KEY, engine=engine, spark_master=spark_master)
    _write_data(say, users, pub_dir, adv_dir)

    with TestClient(create_app(room, Worker(room))) as http:
        admin = RoomClient(http=http, admin_key=ADMIN_KEY)
        pub = admin.as_member(admin.create_member("publisher", [str(pub_dir)])["api_key"])
        adv = admin.as_member(admin.create_member("advertiser", [str(adv_dir)])["api_key"])
        pub.admin_key = adv.admin_key = None
        say.print("[bold]2. members[/] publisher and advertiser, each with an API key and its own data folder")
        collab_id = _collaboration(say, pub, adv, *_tables(say, pub, adv, pub_dir, adv_dir))
        head = adv.audit_head(collab_id)
        template = _template(say, pub, adv, collab_id, adv_dir, epsilon)
        job = _job(say, pub, adv, template["id"], epsilon)
        paths = {"database": db_path, "artifacts": server_dir / "artifacts" / "jobs" / str(job["id"])}
        if job["state"] == "succeeded":
            paths["synthetic"] = _write(adv_dir / "synthetic.csv", adv.result(job["id"], "csv"))
            paths["report"] = _write(adv_dir / "report.html", adv.report(job["id"], "html"))
            paths.update(_models(say, pub, adv, collab_id, job["id"], pub_dir, adv_dir))
        log = _audit(say, adv, collab_id, head)
        (adv_dir / "audit.json").write_text(json.dumps(log, indent=2))
        paths["audit"] = adv_dir / "audit.json"

    where = Table(title="where everything is", show_header=False, box=None, padding=(0, 2))
    for name, path in paths.items():
        where.add_row(name, str(path))
    say.print(where)
    say.print(
        f"done in {time.perf_counter() - start:.0f} s. The same steps from a shell: `synthroom serve`, then "
        "`synthroom room --help` (docs/cleanroom.md)."
    )
    return {"job": job, "paths": paths, "audit": log}


def _folders(workdir: Path) -> tuple[Path, Path, Path]:
    """The server's, the publisher's and the advertiser's folders under ``workdir`` (created)."""
    folders = workdir / "server", workdir / "publisher", workdir / "advertiser"
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def _write_data(say: Console, users: int, pub_dir: Path, adv_dir: Path) -> None:
    """Step 1: each party's simulated table, in its own folder."""
    audience = simulate_audience(users, seed=0)
    audience.to_csv(pub_dir / "audience.csv", index=False)
    simulate_conversions(audience, seed=0).to_parquet(adv_dir / "conversions.parquet")
    say.print(
        f"[bold]1. data[/]  publisher: {users:,} users -> {pub_dir / 'audience.csv'}; "
        f"advertiser: purchases -> {adv_dir / 'conversions.parquet'}"
    )


def _tables(say: Console, pub: RoomClient, adv: RoomClient, pub_dir: Path, adv_dir: Path) -> tuple[int, int]:
    """Step 3: each party configures its table (analysis rules, budget, privacy unit); their ids."""
    t_aud = pub.configure_table(
        name="audience",
        source_kind="csv",
        source_path=str(pub_dir / "audience.csv"),
        allowed_columns=AUDIENCE_COLUMNS,
        epsilon_budget=3.0,
        unit_column="user_id",
        unit_cap=1,
        share_full_report=True,
        model_evaluations=1,
    )
    t_conv = adv.configure_table(
        name="conversions",
        source_kind="parquet",
        source_path=str(adv_dir / "conversions.parquet"),
        allowed_columns=CONVERSIONS_COLUMNS,
        epsilon_budget=3.0,
        unit_column="user_id",
        unit_cap=5,
        allowed_receivers=["advertiser"],
        share_full_report=True,
        model_evaluations=1,
    )
    say.print("[bold]3. tables[/]  audience (email not allowed) and conversions, budget epsilon 3 each, unit user_id")
    return t_aud["id"], t_conv["id"]


def _collaboration(say: Console, pub: RoomClient, adv: RoomClient, audience_id: int, conversions_id: int) -> int:
    """Step 4: the advertiser creates the collaboration (it runs, receives and pays), the publisher
    accepts its invitation, both associate their tables; the collaboration's id."""
    collab = adv.create_collaboration(
        "spring campaign",
        [
            {"name": "publisher", "can_run": False, "can_receive": False},
            {"name": "advertiser", "can_run": True, "can_receive": True},
        ],
        payer="advertiser",
        retention_days=7,
        model_policy=MODEL_POLICY,
    )
    invited = [c["id"] for c in pub.invitations()]
    pub.accept(collab["id"])
    pub.associate(collab["id"], audience_id, "audience")
    adv.associate(collab["id"], conversions_id, "conversions")
    say.print(
        f"[bold]4. collaboration[/] #{collab['id']} 'spring campaign': the advertiser runs, receives and pays; "
        f"the publisher, invited to #{', #'.join(map(str, invited))}, accepts"
    )
    return collab["id"]


def _template(
    say: Console, pub: RoomClient, adv: RoomClient, collab_id: int, adv_dir: Path, epsilon: float
) -> Template:
    """Step 5: the advertiser proposes the template (a copy kept in its folder), both approve it;
    a template reading a column the publisher did not allow is refused."""
    (adv_dir / "template.sql").write_text(DEMO_TEMPLATE + "\n")
    (adv_dir / "classification.yaml").write_text(yaml.safe_dump(DEMO_CLASSIFICATION, sort_keys=False))
    template = adv.create_template(
        collab_id,
        name="converters",
        sql=DEMO_TEMPLATE,
        epsilon=epsilon,
        classification=DEMO_CLASSIFICATION,
        max_mia_score=0.8,
    )
    for party in (pub, adv):
        template = party.approve(template["id"], template["hash"])
    say.print(
        f"[bold]5. template[/]  'converters' v{template['version']} hash {template['hash'][:16]}… "
        f"approved by {', '.join(template['approved_by'])}"
    )
    try:
        adv.create_template(
            collab_id,
            name="peek",
            sql="SELECT a.email, a.age FROM audience a",
            epsilon=1,
            classification={
                "target": "age",
                "columns": [{"name": "email", "type": "categorical"}, {"name": "age", "type": "numerical"}],
            },
        )
    except ClientError as exc:
        say.print(f"   refused as it should be: {exc.detail}")
    return template


def _job(say: Console, pub: RoomClient, adv: RoomClient, template_id: int, epsilon: float) -> Job:
    """Step 6: the advertiser runs the job and waits for it; its report's summary; the publisher's
    request for the rows is refused."""
    job = adv.start_job(template_id)
    say.print(f"[bold]6. job[/] #{job['id']} queued; epsilon {epsilon:g} reserved on both tables' ledgers; running…")
    job = adv.wait(job["id"], timeout=900)
    say.print(f"   {job['state']} in {job['compute_seconds']:.1f} s" + (f": {job['reason']}" if job["reason"] else ""))
    _print_summary(say, job)
    try:
        pub.result(job["id"])
    except ClientError as exc:
        say.print(f"   the publisher asks for the rows, refused as it should be: {exc.detail}")
    return job


def _audit(say: Console, adv: RoomClient, collab_id: int, head: AuditHead) -> Audit:
    """Step 8: the audit log (its chain verified, and the head kept at step 4 still extended by
    it), the metering totals and the budget left on each table; the log."""
    log = adv.audit(collab_id)
    meter = adv.metering(collab_id)["totals"]
    proof = adv.audit_verify(collab_id, head)
    say.print(
        f"[bold]8. audit[/]  {len(log['entries'])} entries, chain verified: {log['verified']}; the signed head "
        f"kept at entry {head['seq']} still holds: {proof['extends']}; metering: {json.dumps(meter)}"
    )
    budget = adv.collaboration(collab_id)["tables"]
    say.print(
        "   budget left: "
        + ", ".join(f"{t['name']} {t['epsilon_remaining']:g} of {t['epsilon_budget']:g}" for t in budget)
    )
    return log


def _models(
    say: Console, pub: RoomClient, adv: RoomClient, collab_id: int, job_id: int, pub_dir: Path, adv_dir: Path
) -> dict[str, Path]:
    """Step 7: the advertiser trains a model on the synthetic rows (scored on the real holdout
    too: both owners allow one such scoring per job), the publisher scores its new users with it
    inside the room, the advertiser receives the predictions and downloads the model (skops)."""
    model = adv.wait_model(adv.train(job_id, "gbm")["id"], timeout=600)
    synthetic = ", ".join(f"{k} {v:.3f}" for k, v in model["metrics"].items())
    real = ", ".join(f"{k} {v:.2f}" for k, v in (model["real_metrics"] or {}).items()) or "not scored"
    say.print(
        f"[bold]7. model[/]  gradient boosting predicts 'converted'; on synthetic validation rows: {synthetic}; "
        f"on the real holdout the synthesizer never saw (not DP, rounded): {real}"
    )
    new_users = simulate_audience(1000, seed=1)
    new_users.to_csv(pub_dir / "new_users.csv", index=False)
    table = pub.configure_table(
        name="new users",
        source_kind="csv",
        source_path=str(pub_dir / "new_users.csv"),
        allowed_columns=AUDIENCE_COLUMNS,
        epsilon_budget=1.0,
        unit_column="user_id",
        allowed_receivers=["advertiser"],
    )
    pub.associate(collab_id, table["id"], "new_users")
    scored = pub.wait_inference(pub.infer(model["id"], table["id"])["id"], timeout=600)
    predictions = _write(adv_dir / "predictions.csv", adv.inference_result(scored["id"], "csv"))
    likely = int((pd.read_csv(predictions)["prediction"] == "yes").sum())
    say.print(
        f"   inference #{scored['id']} {scored['state']}: the publisher scored its {scored['rows_scored']:,} new "
        f"users with the model inside the room; the advertiser received the predictions ({likely} likely "
        "converters); the publisher never saw the model, the advertiser never saw the rows"
    )
    return {"model": _write(adv_dir / "model.skops", adv.model_file(model["id"])), "predictions": predictions}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _print_summary(say: Console, job: Job) -> None:
    summary = job.get("summary") or {}
    if not summary:
        return
    scores = ", ".join(
        f"{a['attackVersion']} {a['score']:.3f}" for a in summary.get("membershipInferenceAttackScores", [])
    )
    say.print(
        f"   report: fidelity {summary.get('fidelityScore', float('nan')):.3f}; membership-inference {scores}; "
        f"released: {summary.get('released')}; {job['rows_synthetic'] or 0:,} synthetic rows "
        f"(at most {summary.get('privacy_unit_cap')} per user went in)"
    )
