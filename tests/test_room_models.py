"""Models inside the room: real-data scoring (owners' opt-in, limited, rounded, never in the audit
log), inference jobs on the runner's own table with predictions for the inference receivers only,
and export under the collaboration's model policy."""

import json

import pandas as pd
import pytest
from roomkit import two_party

from synthroom.demo.adtech import AUDIENCE_COLUMNS, simulate_audience
from synthroom.errors import InputError
from synthroom.room import Forbidden, NotFound, inference, run_job, start_job, training
from synthroom.room.jobs import HOLDOUT_FILE
from synthroom.room.models import Collaboration

POLICY = {
    "allow_export": True,
    "max_artifact_mib": 10,
    "inference_runners": ["publisher", "advertiser"],
    "inference_receivers": ["advertiser"],
    "model_providers": ["advertiser"],
}


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    tp = two_party(tmp_path_factory.mktemp("models"), users=1500, model_policy=POLICY, model_evaluations=2)
    job = run_job(tp.room, start_job(tp.room, tp.advertiser, tp.template["id"])["id"])
    assert job["state"] == "succeeded", job
    new_users = simulate_audience(300, seed=9)
    path = tp.folder / "data" / "publisher" / "new_users.csv"
    new_users.to_csv(path, index=False)
    table = tp.room.configure_table(
        tp.publisher, "new users", "csv", str(path), AUDIENCE_COLUMNS, epsilon_budget=1.0, unit_column="user_id"
    )
    tp.room.associate(tp.publisher, tp.collab, table["id"], "new_users")
    return tp, job["id"], table["id"], new_users


def test_real_data_scores_are_rounded_limited_and_kept_from_the_audit_log(room):
    tp, job_id, _, _ = room
    first = training.train_model(tp.room, tp.advertiser, job_id, "gbm")
    assert first["state"] == "succeeded" and set(first["real_metrics"]) == {"accuracy", "f1_macro", "auc"}
    assert all(v == round(v, 2) for v in first["real_metrics"].values())
    assert 0.6 < first["real_metrics"]["auc"] <= 1  # segment, device and visits drive conversion (real: ~0.76)
    second = training.train_model(tp.room, tp.advertiser, job_id, "logistic")
    third = training.train_model(tp.room, tp.advertiser, job_id, "auto")  # both owners allow 2 per job
    assert second["real_metrics"] is not None and third["real_metrics"] is None and third["metrics"]
    log = json.dumps(_audit(tp))
    assert json.dumps(first["real_metrics"]) not in log and '"scored_on_real_rows": true' in log
    holdout = tp.folder / "artifacts" / "jobs" / str(job_id) / HOLDOUT_FILE
    assert holdout.is_file() and oct(holdout.stat().st_mode)[-3:] == "600"


def _audit(tp):
    from synthroom.room import audit_log

    return audit_log(tp.room, tp.publisher, tp.collab, limit=1000)["entries"]


def test_inference_scores_the_runners_own_table_for_the_receivers(room):
    tp, job_id, table_id, new_users = room
    model = training.train_model(tp.room, tp.advertiser, job_id, "gbm", params={"max_iter": 50})
    done = inference.start_inference(tp.room, tp.publisher, model["id"], table_id)
    assert done["state"] == "succeeded" and done["rows_scored"] == 300, done
    predictions = pd.read_csv(inference.inference_result(tp.room, tp.advertiser, done["id"]))
    assert list(predictions.columns) == ["user_id", "prediction", "probability"]
    assert sorted(predictions.user_id) == sorted(new_users.user_id)  # its own rows, each once
    assert set(predictions.prediction) <= {"yes", "no"} and predictions.probability.between(0.5, 1).all()
    with pytest.raises(Forbidden, match="^'publisher' does not receive the predictions of inference"):
        inference.inference_result(tp.room, tp.publisher, done["id"])
    with pytest.raises(
        Forbidden,
        match=r"^table \d+ belongs to another member: inference reads only its runner's own "
        "tables$",
    ):
        inference.start_inference(tp.room, tp.advertiser, model["id"], table_id)  # another member's rows: never
    with pytest.raises(Forbidden, match="^'analyst' may not run inference in collaboration"):
        inference.start_inference(tp.room, tp.analyst, model["id"], tp.conversions)
    with pytest.raises(InputError, match="^the model reads column 'age', which table 'conversions'"):
        inference.start_inference(tp.room, tp.advertiser, model["id"], tp.conversions)
    meter = [m for m in _metering(tp)["inference"] if m["inference_id"] == done["id"]]
    assert meter and meter[0]["payer"] == "advertiser" and meter[0]["rows_scored"] == 300


def _metering(tp):
    from synthroom.room import metering

    return metering(tp.room, tp.advertiser, tp.collab)


def test_export_follows_the_model_policy(room):
    tp, job_id, _, _ = room
    model = training.train_model(tp.room, tp.advertiser, job_id, "gbm", params={"max_iter": 20})
    path = training.model_file(tp.room, tp.advertiser, model["id"])
    assert path.name == "model.skops" and path.read_bytes()[:2] == b"PK"
    with pytest.raises(NotFound):
        training.model_file(tp.room, tp.publisher, model["id"])  # not a receiver: the model does not exist for it
    with tp.room.transaction() as s:
        s.get(Collaboration, tp.collab).model_policy = json.dumps({**POLICY, "allow_export": False})
    try:
        with pytest.raises(Forbidden, match=r"does not allow models to leave the room \(allow_export\)"):
            training.model_file(tp.room, tp.advertiser, model["id"])
    finally:
        with tp.room.transaction() as s:
            s.get(Collaboration, tp.collab).model_policy = json.dumps(POLICY)


def test_a_script_needs_the_model_provider_right(room):
    tp, job_id, _, _ = room
    with pytest.raises(Forbidden, match="^'analyst' is not among the model providers"):
        with tp.room.transaction() as s:
            from synthroom.room.models import Job

            training._check_provider(s, tp.analyst, s.get(Job, job_id), "script")


def test_one_owner_without_the_opt_in_keeps_every_model_off_the_real_rows(room):
    """A job scores models on real rows only up to the smallest ``model_evaluations`` of its tables."""
    from synthroom.room.models import ConfiguredTable, Job

    tp = room[0]
    with tp.room.transaction() as s:
        s.get(ConfiguredTable, tp.audience).model_evaluations = 0  # the publisher's rule: no scoring
    try:
        queued = start_job(tp.room, tp.advertiser, tp.template["id"])
        with tp.room.read() as s:
            assert s.get(Job, queued["id"]).model_evaluations == 0
            assert s.get(Job, room[1]).model_evaluations == 2
            assert not training._real_scoring_left(s, s.get(Job, queued["id"]), "gbm")
    finally:
        with tp.room.transaction() as s:
            s.get(ConfiguredTable, tp.audience).model_evaluations = 2


def test_an_export_over_the_size_cap_is_refused(room):
    from synthroom.room.models import TrainedModel

    tp, job_id, _, _ = room
    model = training.train_model(tp.room, tp.advertiser, job_id, "logistic")
    path = training.model_file(tp.room, tp.advertiser, model["id"])
    with tp.room.read() as s:
        record = s.get(TrainedModel, model["id"])
        with pytest.raises(Forbidden, match=r"file is 0\.\d MiB, over the collaboration's max_artifact_mib of 0$"):
            training._check_exportable(path, record, 0)


def _scored(tp, job_id, table_id):
    model = training.train_model(tp.room, tp.advertiser, job_id, "logistic")
    return model, inference.start_inference(tp.room, tp.publisher, model["id"], table_id)


def test_a_failed_inference_shows_members_its_category_and_fixed_text_only(room):
    """A snapshot that no longer matches its digest fails the run as ``source_changed``; members
    see the category's fixed text, never the detail, and no predictions exist."""
    from synthroom.errors import FAILURE_CATEGORIES
    from synthroom.room.models import ConfiguredTable, InferenceJob

    tp, job_id, table_id, _ = room
    with tp.room.read() as s:
        snapshot = s.get(ConfiguredTable, table_id).snapshot_path
    original = open(snapshot, "rb").read()
    try:
        with open(snapshot, "ab") as handle:
            handle.write(b"changed")
        _, failed = _scored(tp, job_id, table_id)
    finally:
        with open(snapshot, "wb") as handle:
            handle.write(original)
    assert failed["state"] == "failed" and failed["category"] == "source_changed", failed
    assert failed["reason"] == FAILURE_CATEGORIES["source_changed"] and "detail" not in failed
    shown = inference.get_inference(tp.room, tp.advertiser, failed["id"])
    assert shown == failed and snapshot not in json.dumps(shown)
    with tp.room.read() as s:
        assert s.get(InferenceJob, failed["id"]).detail  # the operator keeps the detail
    with pytest.raises(Exception, match=rf"^inference {failed['id']} has no predictions \(state failed\)$"):
        inference.inference_result(tp.room, tp.advertiser, failed["id"])


def test_predictions_are_deleted_at_the_end_of_the_retention_period(room):
    from datetime import timedelta

    from synthroom.room.models import InferenceJob

    tp, job_id, table_id, _ = room
    _, done = _scored(tp, job_id, table_id)
    path = inference.inference_result(tp.room, tp.advertiser, done["id"])
    with tp.room.read() as s:
        expires = s.get(InferenceJob, done["id"]).expires_at
    assert expires is not None and path.is_file()
    assert done["id"] not in inference.purge_expired_inference(tp.room, now=expires - timedelta(seconds=1))
    assert done["id"] in inference.purge_expired_inference(tp.room, now=expires)
    assert not path.exists()
    with pytest.raises(
        NotFound, match=rf"^inference {done['id']}'s predictions were deleted at the end of the retention"
    ):
        inference.inference_result(tp.room, tp.advertiser, done["id"])
    deleted = [e for e in _audit(tp) if e["action"] == "inference.artifacts_deleted"]
    assert {"inference_id": done["id"]} in [e["details"] for e in deleted]


def test_an_inference_whose_worker_vanished_fails_as_interrupted(room):
    """A running inference whose lease ran out (its worker died) is failed as ``interrupted`` by
    the recovery every worker runs, and its partial output is removed; a live lease is left alone."""
    from datetime import timedelta

    from synthroom.room.models import InferenceJob, utcnow

    tp, job_id, table_id, _ = room
    _, done = _scored(tp, job_id, table_id)
    now = utcnow()
    with tp.room.transaction() as s:
        record = s.get(InferenceJob, done["id"])
        record.state, record.category, record.lease_until = "running", None, now + timedelta(seconds=60)
    assert done["id"] not in inference.recover_interrupted_inference(tp.room, now=now)
    assert inference.recover_interrupted_inference(tp.room, now=now + timedelta(seconds=61)) == [done["id"]]
    shown = inference.get_inference(tp.room, tp.advertiser, done["id"])
    assert shown["state"] == "failed" and shown["category"] == "interrupted"
    assert not (tp.room.artifacts / "inference" / str(done["id"])).exists()


def test_only_the_runner_and_the_receivers_learn_how_many_rows_were_scored(room):
    """The count of scored rows is the exact size of the runner's table: the runner knows it and the
    receivers get one prediction per row, but any other member (the analyst here) must not learn it
    from the job, the list, the metering or the audit log."""
    tp, job_id, table_id, _ = room
    model = training.train_model(tp.room, tp.advertiser, job_id, "logistic")
    done = inference.start_inference(tp.room, tp.publisher, model["id"], table_id)
    assert done["state"] == "succeeded" and done["rows_scored"] == 300
    for actor, shown in ((tp.publisher, 300), (tp.advertiser, 300), (tp.analyst, None)):
        assert inference.get_inference(tp.room, actor, done["id"])["rows_scored"] == shown
        listed = [j for j in inference.list_inference(tp.room, actor, tp.collab) if j["id"] == done["id"]]
        assert listed[0]["rows_scored"] == shown
        metered = [m for m in _metering_for(tp, actor)["inference"] if m["inference_id"] == done["id"]]
        assert metered[0]["rows_scored"] == shown
    finished = [e for e in _audit(tp) if e["action"] == "inference.succeeded"]
    assert finished and all("rows_scored" not in e["details"] for e in finished), finished


def _metering_for(tp, actor):
    from synthroom.room import metering

    return metering(tp.room, actor, tp.collab)
