"""Requests a member may send on purpose: ids outside 64 bits, control characters, bodies over the
limit, pages too large, rows too many; objects it may not see answer exactly as missing ones; no
server detail in a message; private files; expiry at request time. (Against the app object; the
real-server suite for denial of service is tests/test_security_*.)"""

import asyncio
import stat
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from roomkit import ADMIN, two_party
from typer.testing import CliRunner

from synthroom.api import create_app
from synthroom.api.app import INTERNAL, BodyLimit
from synthroom.cli.app import app as cli
from synthroom.demo.adtech import DEMO_CLASSIFICATION, DEMO_TEMPLATE
from synthroom.room import Actor, NotFound, Room, get_job, result_path, start_job
from synthroom.room.models import Job, utcnow
from synthroom.room.settings import Settings

BAD_IDS = [2**63, 2**64, -1, 0, 10**40]


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    tp = two_party(tmp_path_factory.mktemp("hard"), users=200)
    tp.outsider = tp.room.create_member(ADMIN, "outsider", [])
    tp.http = TestClient(create_app(tp.room), raise_server_exceptions=False)
    return tp


def _as(tp, who):
    return {"X-API-Key": tp.outsider["api_key"] if who == "outsider" else tp.keys[who]}


def _id_paths(tp):
    """Every endpoint with an id in its path, as (method, path template)."""
    paths = tp.http.get("/openapi.json").json()["paths"]
    return [(m.upper(), p) for p, methods in paths.items() for m in methods if "_id}" in p]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_outside_64_bits_are_refused_never_a_500(room, bad):
    checked = 0
    for method, path in _id_paths(room):
        url = path.replace("{name}", "audience")
        for key in ("collaboration_id", "template_id", "job_id", "model_id", "table_id"):
            url = url.replace("{" + key + "}", str(bad))
        answer = room.http.request(method, url, json={}, headers=_as(room, "advertiser"))
        assert answer.status_code in (404, 422), (method, url, answer.status_code, answer.text)
        checked += 1
    assert checked >= 20
    body = room.http.post(
        f"/collaborations/{room.collab}/associations",
        json={"table_id": bad, "name": "x"},
        headers=_as(room, "publisher"),
    )
    assert body.status_code == 422


@pytest.mark.parametrize("bad", [2**63, -1, "7", True, None])
def test_the_domain_layer_treats_a_bad_id_as_no_object(room, bad):
    with pytest.raises(NotFound, match=f"^no job with id {bad}$"):
        get_job(room.room, room.advertiser, bad)
    with pytest.raises(NotFound, match=f"^no collaboration with id {bad}$"):
        room.room.get_collaboration(room.advertiser, bad)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x7f"])
def test_control_characters_in_bodies_are_refused(room, char):
    h = _as(room, "advertiser")
    for path, body in (
        ("/collaborations", {"name": f"a{char}b", "members": [], "payer": "advertiser"}),
        ("/collaborations", {"name": "ok", "members": [{"name": f"pub{char}"}], "payer": "advertiser"}),
        (
            "/tables",
            {
                "name": "t",
                "source_kind": "csv",
                "source_path": f"/tmp/x{char}.csv",
                "allowed_columns": ["a"],
                "epsilon_budget": 1,
            },
        ),
        (
            f"/collaborations/{room.collab}/templates",
            {"name": "t", "sql": f"SELECT 1{char}", "epsilon": 1, "classification": DEMO_CLASSIFICATION},
        ),
        (
            f"/collaborations/{room.collab}/templates",
            {"name": "t", "sql": "SELECT 1", "epsilon": 1, "classification": {"target": f"x{char}", "columns": []}},
        ),
    ):
        answer = room.http.post(path, json=body, headers=h)
        assert answer.status_code == 422, (path, body, answer.text)
        assert "control characters" in answer.text
    admin = room.http.post(
        "/members", json={"name": "m", "data_roots": [f"/srv/{char}"]}, headers={"X-Admin-Key": ADMIN}
    )
    assert admin.status_code == 422


@pytest.mark.parametrize("name", ["a\x00b", "%00", "a\x1bb", "audience\x00", "x" * 5000])
def test_control_characters_in_path_names_answer_404(room, name):
    from urllib.parse import quote

    answer = room.http.delete(
        f"/collaborations/{room.collab}/associations/{quote(name)}", headers=_as(room, "publisher")
    )
    assert answer.status_code == 404 and answer.json()["detail"].startswith(f"collaboration {room.collab} has no table")


def test_the_domain_layer_refuses_control_characters_in_names_and_sql(room):
    from synthroom.errors import InputError

    with pytest.raises(InputError, match="must be a non-empty text of at most 100 printable characters"):
        room.room.create_collaboration(room.advertiser, "a\tb", [], payer="advertiser")
    with pytest.raises(InputError, match="^no member named 'pub\\\\x00'$"):
        room.room.create_collaboration(room.advertiser, "ok", [{"name": "pub\x00"}], payer="advertiser")
    with pytest.raises(InputError, match="the template's SQL must be text without control characters"):
        room.room.create_template(
            room.advertiser, room.collab, "t", "SELECT\x00 1", epsilon=1, classification=DEMO_CLASSIFICATION
        )


def test_what_a_caller_may_not_see_answers_exactly_as_what_does_not_exist(room):
    h = _as(room, "outsider")
    job_id = start_job(room.room, room.advertiser, room.template["id"])["id"]
    for what, url, absent in (
        ("collaboration", f"/collaborations/{room.collab}", "/collaborations/{}"),
        ("collaboration", f"/collaborations/{room.collab}/jobs", "/collaborations/{}/jobs"),
        ("collaboration", f"/collaborations/{room.collab}/metering", "/collaborations/{}/metering"),
        ("collaboration", f"/collaborations/{room.collab}/audit/head", "/collaborations/{}/audit/head"),
        ("template", f"/templates/{room.template['id']}", "/templates/{}"),
        ("job", f"/jobs/{job_id}", "/jobs/{}"),
        ("job", f"/jobs/{job_id}/result", "/jobs/{}/result"),
        ("job", f"/jobs/{job_id}/models", "/jobs/{}/models"),
        ("table", f"/tables/{room.audience}", "/tables/{}"),
    ):
        object_id = int(url.split("/")[2])
        seen, missing = room.http.get(url, headers=h), room.http.get(absent.format(424242), headers=h)
        assert (seen.status_code, missing.status_code) == (404, 404), url
        assert seen.json() == {"detail": f"no {what} with id {object_id}"}
        assert missing.json() == {"detail": f"no {what} with id 424242"}
    started = room.http.post(f"/templates/{room.template['id']}/jobs", headers=h)
    assert started.json() == {"detail": f"no template with id {room.template['id']}"}
    taken = room.http.post(
        f"/collaborations/{room.collab}/associations",
        json={"table_id": room.audience, "name": "x"},
        headers=_as(room, "analyst"),
    )  # a collaborator sees the table: it is told why not
    assert taken.status_code == 403 and "only the owner of table 'audience'" in taken.json()["detail"]


def test_models_are_invisible_to_members_who_do_not_receive_them(room):
    from synthroom.room import get_model
    from synthroom.room.models import TrainedModel

    job_id = start_job(room.room, room.advertiser, room.template["id"])["id"]  # the advertiser receives
    with room.room.transaction() as s:
        model = TrainedModel(
            job_id=job_id,
            collaboration_id=room.collab,
            created_by=2,
            trainer="gbm",
            task="classification",
            target="converted",
            state="succeeded",
        )
        s.add(model)
        s.flush()
        model_id = model.id
    assert get_model(room.room, room.advertiser, model_id)["id"] == model_id
    with room.room.transaction() as s:  # an unexpected failure's text may name server paths: not shown
        s.get(TrainedModel, model_id).reason = "internal error: FileNotFoundError: [Errno 2] No such file: '/srv/a/x'"
    shown = get_model(room.room, room.advertiser, model_id)["reason"]
    assert shown == "an internal error (the operator's log has the detail)"
    for who in (room.publisher, room.analyst, Actor(room.outsider["id"], "outsider")):
        with pytest.raises(NotFound, match=f"^no model with id {model_id}$"):
            get_model(room.room, who, model_id)
    with pytest.raises(NotFound, match=f"^no model with id {model_id + 1000}$"):
        get_model(room.room, room.advertiser, model_id + 1000)


def test_an_unexpected_error_answers_a_fixed_message(room, monkeypatch):
    def fails(*_a, **_k):
        raise RuntimeError(f"cannot open /srv/secret/room.db (pid {12345}) on host db-7")

    monkeypatch.setattr(room.room, "get_template", fails)
    answer = room.http.get(f"/templates/{room.template['id']}", headers=_as(room, "advertiser"))
    assert answer.status_code == 500 and answer.json() == {"detail": INTERNAL}
    assert "/srv" not in answer.text and "12345" not in answer.text and "db-7" not in answer.text


def test_deeply_nested_bodies_are_refused_not_a_500(room):
    deep = "[" * 100_000 + "]" * 100_000
    answer = room.http.post(
        f"/collaborations/{room.collab}/templates",
        content=deep,
        headers={**_as(room, "advertiser"), "Content-Type": "application/json"},
    )
    assert 400 <= answer.status_code < 500


def test_rows_are_capped_by_the_servers_setting(room):
    def create(rows):
        return room.http.post(
            f"/collaborations/{room.collab}/templates",
            headers=_as(room, "advertiser"),
            json={
                "name": "many",
                "sql": DEMO_TEMPLATE,
                "epsilon": 1,
                "classification": DEMO_CLASSIFICATION,
                "rows": rows,
            },
        )

    refused = create(10**12)
    assert refused.status_code == 422
    assert (
        refused.json()["detail"]
        == "rows 1000000000000 must be a whole number from 1 to 10,000,000 (the server's max_rows)"
    )
    assert create(10_000_000).status_code == 201
    room.room.settings.max_rows = 5000
    try:
        assert create(5001).status_code == 422 and create(5000).status_code == 201
    finally:
        room.room.settings.max_rows = Settings().max_rows


def test_lists_are_paginated(room):
    h = _as(room, "advertiser")
    for i in range(3):
        room.room.create_collaboration(room.advertiser, f"page {i}", [], payer="advertiser")
    every = [c["id"] for c in room.http.get("/collaborations", params={"limit": 1000}, headers=h).json()]
    assert len(every) >= 4 and every == sorted(every)
    assert [
        c["id"] for c in room.http.get("/collaborations", params={"limit": 2, "offset": 1}, headers=h).json()
    ] == every[1:3]
    room.room.settings.page_size = 2
    try:
        assert len(room.http.get("/collaborations", headers=h).json()) == 2
        log = room.http.get(f"/collaborations/{room.collab}/audit", params={"offset": 1}, headers=h).json()
        assert [e["seq"] for e in log["entries"]] == [2, 3] and log["verified"]
    finally:
        room.room.settings.page_size = Settings().page_size
    too_many = room.http.get("/collaborations", params={"limit": 1001}, headers=h)
    assert (
        too_many.status_code == 422 and too_many.json()["detail"] == "limit 1001 must be a whole number from 1 to 1000"
    )
    for params in ({"limit": 0}, {"offset": -1}, {"limit": 2**63}):
        assert room.http.get(f"/collaborations/{room.collab}/jobs", params=params, headers=h).status_code == 422


def _asgi_post(app, declared: int | None, chunks: int, chunk_bytes: int = 64 * 1024):
    """POST a body of ``chunks`` chunks straight into the ASGI app; returns (status, bytes pulled)."""
    pulled, sent = 0, []
    headers = [(b"content-type", b"application/json"), (b"x-api-key", b"sr_x")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/collaborations",
        "raw_path": b"/collaborations",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive():
        nonlocal pulled
        if pulled >= chunks * chunk_bytes:
            return {"type": "http.disconnect"}
        pulled += chunk_bytes
        return {"type": "http.request", "body": b" " * chunk_bytes, "more_body": pulled < chunks * chunk_bytes}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), pulled


def test_bodies_over_the_limit_get_413_without_being_read_whole(room):
    app = create_app(room.room)
    status, pulled = _asgi_post(app, declared=200 * 1024 * 1024, chunks=3200)  # 200 MB announced
    assert (status, pulled) == (413, 0)  # refused on the header: nothing read
    status, pulled = _asgi_post(app, declared=None, chunks=800)  # 50 MB, chunked (no length given)
    assert status == 413 and pulled <= 1024 * 1024 + 64 * 1024
    answer = room.http.post("/collaborations", content=b" " * (1024 * 1024 + 1), headers=_as(room, "advertiser"))
    assert answer.status_code == 413
    assert answer.json() == {
        "detail": "the request body is larger than this server's limit of 1,048,576 bytes (max_body_bytes)"
    }
    assert BodyLimit  # the middleware the app installs


def test_settings_are_typed_and_validated(tmp_path):
    assert Settings().model_dump() == {
        "max_body_bytes": 1024 * 1024,
        "page_size": 100,
        "max_page_size": 1000,
        "max_collaboration_members": 100,
        "max_rows": 10_000_000,
        "allow_training_scripts": True,
        "script_time_limit": 600.0,
        "script_memory_mib": 4096,
        "script_output_mib": 100,
        "job_seconds": 3600.0,
        "job_memory_mib": 8192,
        "job_threads": 2,
        "job_temp_disk_mib": 10240,
        "engine": "duckdb",
        "spark_master": None,
        "spark_snapshot_root": None,
    }
    with pytest.raises(ValidationError):
        Room(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "a", max_rows=0)
    with pytest.raises(ValidationError):
        Settings(max_rows="many")
    with pytest.raises(ValidationError):
        Settings(no_such_limit=1)


def test_serve_makes_the_data_folder_and_its_files_private(tmp_path, monkeypatch):
    import uvicorn

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    monkeypatch.delenv("SYNTHROOM_ADMIN_KEY", raising=False)
    monkeypatch.delenv("SYNTHROOM_AUDIT_KEY", raising=False)
    data = tmp_path / "data"
    result = CliRunner().invoke(
        cli, ["serve", "--data-dir", str(data), "--max-rows", "500", "--max-body-bytes", "4096"]
    )
    assert result.exit_code == 0, result.output
    room_ = started["app"].state.room
    assert (room_.settings.max_rows, room_.settings.max_body_bytes) == (500, 4096)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "artifacts").stat().st_mode) == 0o700
    for name in ("admin.key", "audit.key", "room.db"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    refused = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--max-rows", "0"])
    assert refused.exit_code == 2 and "--max-rows: Input should be greater than or equal to 1" in refused.output


def test_expired_results_are_refused_before_the_purge(tmp_path):
    tp = two_party(tmp_path, users=200)
    job = start_job(tp.room, tp.advertiser, tp.template["id"])
    artifacts = tp.room.artifacts / "jobs" / str(job["id"])
    artifacts.mkdir(parents=True)
    (artifacts / "synthetic.csv").write_text("a\n1\n")
    with tp.room.transaction() as s:
        row = s.get(Job, job["id"])
        row.state, row.released, row.artifacts_dir = "succeeded", True, str(artifacts)
        row.finished_at = utcnow() - timedelta(days=8)
        row.expires_at = utcnow() + timedelta(minutes=1)
    assert result_path(tp.room, tp.advertiser, job["id"]).exists()
    with tp.room.transaction() as s:
        s.get(Job, job["id"]).expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(NotFound, match=f"^job {job['id']}'s artifacts expired at the end of the retention period"):
        result_path(tp.room, tp.advertiser, job["id"])
    assert (artifacts / "synthetic.csv").exists()  # the purge has not run: the refusal is the request's own
