"""The REST API and the CLI client on one real job (synthesized, evaluated, gated): API-key
authentication, result receivers, reports, training, metering, audit, retention."""

import io
import json
import re
import socket
import threading
import time
from datetime import timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from roomkit import ADMIN, two_party
from typer.testing import CliRunner

from synthroom.api import create_app
from synthroom.cli.app import app as cli
from synthroom.demo.adtech import DEMO_CLASSIFICATION
from synthroom.room import Worker, purge_expired, sandbox
from synthroom.room.models import Job


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNTHROOM_ANONYMETER_PYTHON", "/nonexistent")  # CI has no anonymeter sidecar either
        tp = two_party(tmp_path_factory.mktemp("room"), users=1500, script_time_limit=20)
        worker = Worker(tp.room)
        with TestClient(create_app(tp.room, worker)) as http:
            job = http.post(f"/templates/{tp.template['id']}/jobs", headers={"X-API-Key": tp.keys["advertiser"]}).json()
            worker.wait_idle()
            tp.worker = worker
            yield tp, http, job["id"]


def _as(tp, who):
    return {"X-API-Key": tp.keys[who]}


def test_openapi_and_authentication(served):
    tp, http, _ = served
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/collaborations", "/templates/{template_id}/approve", "/jobs/{job_id}/result"} <= set(paths)
    assert http.get("/me").json() == {"detail": "an API key is required (header X-API-Key)"}
    assert http.get("/me").status_code == 403
    assert http.get("/me", headers={"X-API-Key": "sr_guess"}).status_code == 403
    assert http.get("/me", headers=_as(tp, "publisher")).json()["name"] == "publisher"
    answer = http.post("/members", json={"name": "mallory"}, headers={"X-Admin-Key": "wrong"})
    assert answer.status_code == 403 and answer.json()["detail"] == "creating members needs the server's admin key"


def test_every_endpoint_needs_an_api_key(served):
    _, http, _ = served
    checked = 0
    for path, methods in http.get("/openapi.json").json()["paths"].items():
        if path == "/health":
            continue
        for method in methods:
            url = path.replace("{", "").replace("}", "").replace("collaboration_id", "1").replace("template_id", "1")
            url = url.replace("table_id", "1").replace("job_id", "1").replace("model_id", "1")
            answer = http.request(method.upper(), url, json={})
            assert answer.status_code == 403 if path != "/members" else answer.status_code in (403, 422), (method, path)
            checked += 1
    assert checked >= 20


def test_the_job_released_synthetic_data_that_only_receivers_read(served):
    tp, http, job_id = served
    other = http.get(f"/jobs/{job_id}", headers=_as(tp, "publisher")).json()  # not a receiver: no non-DP scores
    assert (other["state"], other["released"], other["summary"]) == ("finished", None, None), other
    job = http.get(f"/jobs/{job_id}", headers=_as(tp, "advertiser")).json()  # a receiver sees state and scores
    assert job["state"] == "succeeded", job["reason"]
    assert job["released"] and job["summary"]["released"] and job["summary"]["privacy_unit_cap"] == 1
    assert "rows_real" not in job and "rows" not in job["summary"]  # exact real counts are not DP: operator only
    operator = json.loads((tp.room.artifacts / "jobs" / str(job_id) / "summary.json").read_text())
    assert operator["privacy_unit_cap"] == {"cap": 1, "rows_before_cap": 1500, "rows_after_cap": 1500, "units": 1500}
    csv = http.get(f"/jobs/{job_id}/result", params={"format": "csv"}, headers=_as(tp, "advertiser"))
    assert csv.status_code == 200
    frame = pd.read_csv(io.StringIO(csv.text))
    assert list(frame.columns) == [c["name"] for c in DEMO_CLASSIFICATION["columns"]]
    assert len(frame) == job["rows_synthetic"] > 900
    assert set(frame.converted) <= {"yes", "no"} and frame.age.dropna().between(18, 80).all()  # the declared range
    # No real age is missing, but the job's noise is fresh: a fit whose noisy counts keep age's missing code draws
    # some missing ages (DP output; decode clips every drawn age to the declared range, so only those fell outside).
    assert frame.age.isna().mean() < 0.25
    parquet = http.get(f"/jobs/{job_id}/result", params={"format": "parquet"}, headers=_as(tp, "advertiser"))
    assert len(pd.read_parquet(io.BytesIO(parquet.content))) == len(frame)
    for who in ("publisher", "analyst"):  # no receive ability / not a permitted receiver
        refused = http.get(f"/jobs/{job_id}/result", headers=_as(tp, who))
        assert refused.status_code == 403
        assert refused.json()["detail"] == f"'{who}' may not receive the results of job {job_id}"
    report = http.get(f"/jobs/{job_id}/report", params={"kind": "html"}, headers=_as(tp, "advertiser"))
    assert report.status_code == 200 and "<html" in report.text.lower()
    with tp.room.transaction() as s:  # a room job has no seed (secure randomness), and no view or report shows one
        seed = s.get(Job, job_id).seed
    assert seed is None
    report_json = http.get(f"/jobs/{job_id}/report", params={"kind": "json"}, headers=_as(tp, "advertiser")).text
    assert "seed" not in job and not re.search(r"\bseed -?\d", report.text + report_json)


def test_a_non_member_sees_nothing(served):
    tp, http, job_id = served
    outsider = tp.room.create_member(ADMIN, "outsider", [])
    headers = {"X-API-Key": outsider["api_key"]}
    for what, path, unused in (
        ("job", f"/jobs/{job_id}", "/jobs/{}"),
        ("collaboration", f"/collaborations/{tp.collab}", "/collaborations/{}"),
        ("collaboration", f"/collaborations/{tp.collab}/audit", "/collaborations/{}/audit"),
        ("template", f"/templates/{tp.template['id']}", "/templates/{}"),
        ("table", f"/tables/{tp.audience}", "/tables/{}"),
    ):
        seen, missing = http.get(path, headers=headers), http.get(unused.format(987654), headers=headers)
        assert seen.status_code == missing.status_code == 404, path  # exists-but-not-yours looks like missing
        object_id = int(path.split("/")[2])
        assert (seen.json()["detail"], missing.json()["detail"]) == (
            f"no {what} with id {object_id}",
            f"no {what} with id 987654",
        )


def _train(tp, http, job_id, body):
    """Queue a training (answered 202, state queued), let the worker run it, read the model."""
    queued = http.post(f"/jobs/{job_id}/models", json=body, headers=_as(tp, "advertiser"))
    assert queued.status_code == 202 and queued.json()["state"] == "queued", queued.text
    tp.worker.wait_idle()
    return http.get(f"/models/{queued.json()['id']}", headers=_as(tp, "advertiser")).json()


def test_models_train_on_synthetic_rows(served):
    tp, http, job_id = served
    model = _train(tp, http, job_id, {"trainer": "logistic"})
    assert model["state"] == "succeeded" and model["task"] == "classification"
    assert model["metrics"]["auc"] > 0.65  # segment, device and visits drive conversion (real rows: 0.76)
    kept = http.get(f"/models/{model['id']}/file", headers=_as(tp, "advertiser"))  # the default policy: no export
    assert kept.status_code == 403 and kept.json()["detail"] == (
        f"the model policy of collaboration {tp.collab} does not allow models to leave the room (allow_export); "
        "run inference inside it instead"
    )
    assert http.post(f"/jobs/{job_id}/models", json={"trainer": "gbm"}, headers=_as(tp, "analyst")).status_code == 403
    tp.room.settings.allow_training_scripts = False
    try:
        refused = http.post(
            f"/jobs/{job_id}/models", json={"trainer": "script", "script": "print(1)"}, headers=_as(tp, "advertiser")
        )
    finally:
        tp.room.settings.allow_training_scripts = True
    assert refused.json()["detail"] == (
        "training scripts are off on this server (its operator started it with --no-training-scripts)"
    )
    bad = http.post(
        f"/jobs/{job_id}/models", json={"trainer": "gbm", "params": {"C": 1}}, headers=_as(tp, "advertiser")
    )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("trainer 'gbm' takes no hyperparameter 'C'")


def test_gbm_takes_hyperparameters_and_auto_says_what_it_chose(served):
    tp, http, job_id = served
    gbm = _train(tp, http, job_id, {"trainer": "gbm", "params": {"max_iter": 20, "learning_rate": 0.2}})
    assert (
        gbm["state"] == "succeeded"
        and gbm["chosen"] == "gbm"
        and gbm["params"] == {"max_iter": 20, "learning_rate": 0.2}
    )
    assert gbm["chosen_params"] == {
        "max_iter": 20,
        "learning_rate": 0.2,
        "max_leaf_nodes": 31,
        "l2_regularization": 0.0,
    }
    auto = _train(tp, http, job_id, {"trainer": "auto"})
    assert auto["chosen"] in ("logistic", "gbm") and set(auto["candidates"]) == {"logistic", "gbm"}
    assert auto["candidates"][auto["chosen"]] == max(auto["candidates"].values())


@pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable()))
def test_training_scripts_run_in_the_sandbox_with_a_time_limit(served):
    tp, http, job_id = served
    script = (
        "import argparse, json, pathlib\nimport pandas as pd\n"
        "p = argparse.ArgumentParser()\n[p.add_argument(a) for a in ('--data', '--target', '--task', '--output')]\n"
        "a = p.parse_args()\ndf = pd.read_parquet(a.data)\nrate = float((df[a.target] == 'yes').mean())\n"
        "pathlib.Path(a.output, 'model.json').write_text(json.dumps({'rate': rate}))\n"
        "pathlib.Path(a.output, 'metrics.json').write_text(json.dumps({'rows': len(df), 'rate': rate}))\n"
    )
    tp.room.settings.script_time_limit = 20
    try:
        model = _train(tp, http, job_id, {"trainer": "script", "script": script})
        assert model["state"] == "succeeded", model["reason"]
        assert model["metrics"]["rows"] > 900 and 0 < model["metrics"]["rate"] < 1
        no_file = http.get(f"/models/{model['id']}/file", headers=_as(tp, "advertiser"))
        assert no_file.status_code == 403 and "does not allow models to leave the room" in no_file.json()["detail"]
        tp.room.settings.script_time_limit = 2
        slow = _train(tp, http, job_id, {"trainer": "script", "script": "import time\ntime.sleep(30)\n"})
        assert (
            slow["state"] == "failed"
            and slow["reason"] == "the training script ran over its time limit of 2 s and was stopped"
        )
    finally:
        tp.room.settings.script_time_limit = 20


def test_metering_charges_the_payer(served):
    tp, http, job_id = served
    meter = http.get(f"/collaborations/{tp.collab}/metering", headers=_as(tp, "publisher")).json()
    job = http.get(f"/jobs/{job_id}", headers=_as(tp, "publisher")).json()
    assert meter["entries"][0]["payer"] == "advertiser" and meter["entries"][0]["job_id"] == job_id
    assert meter["totals"]["advertiser"]["rows_synthetic"] == job["rows_synthetic"]
    assert "rows_real" not in meter["entries"][0]
    assert meter["totals"]["advertiser"]["compute_seconds"] == pytest.approx(job["compute_seconds"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_client_against_a_running_server(served):
    import uvicorn

    tp, _, job_id = served
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(tp.room), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        runner = CliRunner()
        base = ["room", "--server", f"http://127.0.0.1:{port}", "--key", tp.keys["advertiser"]]
        shown = runner.invoke(cli, base + ["job-show", str(job_id)])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["state"] == "succeeded"
        out = tp.folder / "cli_synthetic.parquet"
        got = runner.invoke(cli, base + ["result", str(job_id), "-o", str(out)])
        assert got.exit_code == 0, got.output
        assert len(pd.read_parquet(out)) > 900
        refused = runner.invoke(
            cli,
            [
                "room",
                "--server",
                f"http://127.0.0.1:{port}",
                "--key",
                tp.keys["publisher"],
                "result",
                str(job_id),
                "-o",
                str(tp.folder / "x.csv"),
            ],
        )
        assert refused.exit_code == 5 and "may not receive the results" in refused.output  # 5: not allowed
        assert not (tp.folder / "x.csv").exists()
        audit = runner.invoke(cli, base + ["audit", str(tp.collab)])
        assert json.loads(audit.output)["verified"] is True
        refreshed = runner.invoke(cli, base + ["table-refresh", str(tp.conversions)])  # the owner re-reads its source
        assert refreshed.exit_code == 0, refreshed.output
        assert (
            json.loads(refreshed.output)["snapshot_sha256"]
            == tp.room.get_table(tp.advertiser, tp.conversions)["snapshot_sha256"]
        )
        not_yours = runner.invoke(
            cli,
            [
                "room",
                "--server",
                f"http://127.0.0.1:{port}",
                "--key",
                tp.keys["publisher"],
                "table-refresh",
                str(tp.conversions),
            ],
        )
        assert not_yours.exit_code == 5 and "only the owner of table 'conversions' can refresh it" in not_yours.output
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_database_artifacts_and_keys_are_the_server_users_alone(served):
    import stat

    tp, http, job_id = served
    _train(tp, http, job_id, {"trainer": "logistic"})  # a model file too
    files = [p for p in (tp.folder / "artifacts").rglob("*")]
    assert any(p.name == "synthetic.csv" for p in files) and any(p.name == "model.skops" for p in files)
    for path in files + [tp.folder / "artifacts"]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    if tp.room.db.url.startswith("sqlite"):
        for path in tp.folder.glob("room.db*"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tp.folder / "audit.key").stat().st_mode) == 0o600


def test_retention_deletes_artifacts_and_logs_it(served):
    """Runs last in this module: it deletes the job's artifacts."""
    tp, http, job_id = served
    job = http.get(f"/jobs/{job_id}", headers=_as(tp, "advertiser")).json()
    from datetime import datetime

    expires = datetime.fromisoformat(job["expires_at"])
    assert expires - datetime.fromisoformat(job["finished_at"]) == timedelta(days=7)
    assert purge_expired(tp.room, now=expires - timedelta(seconds=1)) == []
    assert purge_expired(tp.room, now=expires) == [job_id]
    gone = http.get(f"/jobs/{job_id}/result", headers=_as(tp, "advertiser"))
    assert gone.status_code == 404 and "deleted at the end of the retention period" in gone.json()["detail"]
    assert not (tp.room.artifacts / "jobs" / str(job_id)).exists()
    log = http.get(f"/collaborations/{tp.collab}/audit", headers=_as(tp, "publisher")).json()
    assert log["verified"] and log["entries"][-1]["action"] == "job.artifacts_deleted"
    assert log["entries"][-1]["actor"] == "retention"
