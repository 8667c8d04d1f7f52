"""``synthroom room`` for scripts: the documented exit codes (0, 2, 3, 4, 5, 6), ``--wait``
printing exactly one JSON document, hash prefixes, ``template-show``'s formatted SQL, and
``login`` keeping the server and key in a 0600 config file."""

from __future__ import annotations

import json
import stat
import threading
import time
import warnings

import pytest
from roomkit import two_party
from typer.testing import CliRunner

from synthroom import client as client_module
from synthroom.api import create_app
from synthroom.cli.app import app as cli
from synthroom.cli.output import exit_code_of, final_exit_code
from synthroom.client import ConflictError, ForbiddenError, InvalidInputError, NotFoundError, ServerError, TooLargeError
from synthroom.demo.adtech import DEMO_CLASSIFICATION, DEMO_TEMPLATE
from synthroom.room.jobs import run_next_job

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def party(tmp_path_factory):
    return two_party(tmp_path_factory.mktemp("cli_room"), users=300, budget=10)


@pytest.fixture
def room_cli(party, monkeypatch, tmp_path):
    """``run(member, *args)``: the CLI as that member against the app, in-process."""
    http = TestClient(create_app(party.room))
    monkeypatch.setattr(client_module.httpx, "Client", lambda **_kw: http)
    monkeypatch.setenv("SYNTHROOM_CONFIG", str(tmp_path / "config" / "room.json"))
    for name in ("SYNTHROOM_API_KEY", "SYNTHROOM_SERVER"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(member: str | None, *args: str, **options):
        key = ["--key", party.keys[member]] if member else []
        return runner.invoke(cli, ["room", *key, *args], **options)

    return run


def _approved_template(party, name: str) -> dict:
    """An approved template without a release gate (300 users are too few to evaluate one)."""
    template = party.room.create_template(
        party.advertiser, party.collab, name, DEMO_TEMPLATE, epsilon=0.5, classification=DEMO_CLASSIFICATION
    )
    for actor in (party.publisher, party.advertiser):
        template = party.room.approve_template(actor, template["id"], template["hash"])
    return template


def _worker(party, synthesize=None) -> threading.Thread:
    """A worker thread that runs the next queued job (the real runner) and stops."""

    def work():
        deadline = time.monotonic() + 300
        while run_next_job(party.room, worker_id="cli-test", synthesize=synthesize) is None:
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_refusals_map_to_the_documented_exit_codes():
    assert [
        exit_code_of(e(1, "x"))
        for e in (ForbiddenError, ConflictError, NotFoundError, InvalidInputError, TooLargeError, ServerError)
    ] == [5, 5, 2, 2, 2, 1]
    assert final_exit_code({"state": "succeeded"}) == 0
    assert final_exit_code({"state": "finished"}) == 0  # a member who may not see the gate's outcome
    assert final_exit_code({"state": "failed", "category": "refused_by_gate"}) == 3
    assert final_exit_code({"state": "failed", "category": "resource_limit"}) == 4
    assert final_exit_code({"state": "failed", "category": None}) == 4  # a model's failure


def test_job_start_wait_json_prints_exactly_one_document_and_exits_0(party, room_cli):
    template = _approved_template(party, "wait-ok")
    worker = _worker(party)
    answer = room_cli("advertiser", "job-start", str(template["id"]), "--wait", "--json")
    worker.join(5)
    assert answer.exit_code == 0, answer.output
    job = json.loads(answer.stdout)  # the whole of stdout is one document
    assert job["state"] == "succeeded" and job["released"] is True and job["template_id"] == template["id"]
    assert answer.stderr == ""  # no progress when stderr is not a terminal
    shown = room_cli("advertiser", "job-show", str(job["id"]))  # stdout not a terminal: JSON without --json
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == job["id"]
    trained = room_cli("advertiser", "train", str(job["id"]), "--trainer", "logistic", "--wait", "--json")
    assert trained.exit_code == 0, trained.output
    model = json.loads(trained.stdout)
    assert model["state"] == "succeeded" and model["trainer"] == "logistic" and model["job_id"] == job["id"]


def test_a_job_the_gate_refused_exits_3_with_one_document(party, room_cli):
    """The gate's own decision is tested in the pipeline's tests; here the real runner records a
    refusal (the run's release decision turned to 'refused') and the CLI must answer it with 3."""
    from synthroom.pipeline import synthesize_with_gate

    def refused(*args, **kwargs):
        run = synthesize_with_gate(*args, **kwargs)
        run.released = False
        return run

    template = _approved_template(party, "wait-gate")
    worker = _worker(party, synthesize=refused)
    answer = room_cli("advertiser", "job-start", str(template["id"]), "--wait", "--json")
    worker.join(5)
    assert answer.exit_code == 3, answer.output
    job = json.loads(answer.stdout)
    assert (job["state"], job["category"]) == ("failed", "refused_by_gate")
    assert "job %d failed:" % job["id"] in answer.stderr


def test_a_failed_job_exits_4(party, room_cli):
    def crash(*_args, **_kwargs):
        raise RuntimeError("a crash inside the synthesizer (test)")

    template = _approved_template(party, "wait-fail")
    worker = _worker(party, synthesize=crash)
    answer = room_cli("advertiser", "job-start", str(template["id"]), "--wait")
    worker.join(5)
    assert answer.exit_code == 4, answer.output
    assert json.loads(answer.stdout)["state"] == "failed"


def test_not_allowed_exits_5_and_bad_input_exits_2(party, room_cli, tmp_path):
    template = _approved_template(party, "codes")
    not_runner = room_cli("publisher", "job-start", str(template["id"]))  # the publisher may not run
    assert not_runner.exit_code == 5 and "refused (403)" in not_runner.stderr
    wrong_key = room_cli(None, "--key", "sr_wrong", "me")
    assert wrong_key.exit_code == 5 and "the API key is not valid" in wrong_key.stderr
    missing = room_cli("advertiser", "job-show", "999999")
    assert missing.exit_code == 2 and "no job with id 999999" in missing.stderr
    bad_file = tmp_path / "classes.yaml"
    bad_file.write_text("columns: [unclosed\n")
    (tmp_path / "q.sql").write_text(DEMO_TEMPLATE)
    invalid = room_cli(
        "advertiser",
        "template-create",
        str(party.collab),
        "t",
        "--sql",
        str(tmp_path / "q.sql"),
        "--classification",
        str(bad_file),
        "--epsilon",
        "1",
    )
    assert invalid.exit_code == 2 and f"{bad_file} is not valid YAML" in invalid.stderr
    out_of_range = room_cli(
        "advertiser",
        "template-create",
        str(party.collab),
        "t",
        "--sql",
        str(tmp_path / "q.sql"),
        "--classification",
        str(bad_file).replace("classes.yaml", "none.yaml"),
        "--epsilon",
        "1",
    )
    assert out_of_range.exit_code == 2 and "cannot read" in out_of_range.stderr
    usage = room_cli("advertiser", "job-start", "not-a-number")
    assert usage.exit_code == 2


def test_a_hash_prefix_of_8_characters_approves_and_a_wrong_or_short_one_is_refused(party, room_cli):
    template = party.room.create_template(
        party.advertiser, party.collab, "prefix", DEMO_TEMPLATE, epsilon=0.5, classification=DEMO_CLASSIFICATION
    )
    tid, full = str(template["id"]), template["hash"]
    short = room_cli("publisher", "approve", tid, "--hash", full[:7])
    assert short.exit_code == 2 and "at least its first 8 characters" in short.stderr
    wrong = room_cli("publisher", "approve", tid, "--hash", ("0" if full[0] != "0" else "1") + full[1:8])
    assert wrong.exit_code == 2 and f"is not (a prefix of) template {tid}'s content hash" in wrong.stderr
    assert party.room.get_template(party.publisher, template["id"])["approved_by"] == []
    done = room_cli("publisher", "approve", tid, "--hash", full[:8].upper())
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["approved_by"] == ["publisher"]


def test_template_show_formats_the_sql(party, room_cli):
    shown = room_cli("publisher", "template-show", str(party.template["id"]), "--json")
    assert shown.exit_code == 0, shown.output
    template = json.loads(shown.stdout)
    assert template["formatted_sql"].startswith("SELECT\n  a.age AS age,\n") and '"' not in template["formatted_sql"]
    assert "LEFT JOIN conversions AS c\n  ON a.user_id = c.user_id" in template["formatted_sql"]
    assert template["columns_read"]["conversions"] == ["user_id"] and template["hash"] == party.template["hash"]
    table = room_cli("publisher", "template-show", str(party.template["id"]), env={"SYNTHROOM_OUTPUT": "table"})
    assert table.exit_code == 0, table.output
    assert "a.age AS age" in table.stdout and "LEFT JOIN conversions AS c" in table.stdout and "{" not in table.stdout
    assert "tables and columns read" in table.stdout and party.template["hash"][:40] in table.stdout


def test_login_stores_server_and_key_in_a_0600_file_and_later_commands_use_them(party, room_cli, tmp_path):
    config = tmp_path / "config" / "room.json"
    refused = room_cli(None, "--server", "http://room.example:8765", "login", "--key-stdin", input="sr_wrong\n")
    assert refused.exit_code == 5 and not config.exists()
    stored = room_cli(
        None, "--server", "http://room.example:8765", "login", "--key-stdin", input=party.keys["publisher"] + "\n"
    )
    assert stored.exit_code == 0, stored.output
    assert json.loads(stored.stdout)["member"] == "publisher"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert json.loads(config.read_text()) == {"server": "http://room.example:8765", "key": party.keys["publisher"]}
    me = room_cli(None, "me")  # no --key, no environment: the stored key
    assert me.exit_code == 0 and json.loads(me.stdout)["name"] == "publisher"
    config.chmod(0o644)
    leaked = room_cli(None, "me")
    assert leaked.exit_code == 2 and "may be read by other users" in leaked.stderr
    config.chmod(0o600)
    assert room_cli(None, "logout").exit_code == 0
    assert json.loads(config.read_text()) == {"server": "http://room.example:8765"}
    assert room_cli(None, "me").exit_code == 5  # no key any more


def test_audit_verify_exits_6_when_the_chain_does_not_hold_the_head_kept(party, room_cli, tmp_path):
    head_file = tmp_path / "head.json"
    kept = room_cli("publisher", "audit-head", str(party.collab), "-o", str(head_file))
    assert kept.exit_code == 0 and json.loads(kept.stdout) == json.loads(head_file.read_text())
    assert room_cli("publisher", "audit-verify", str(party.collab), str(head_file)).exit_code == 0
    head = json.loads(head_file.read_text())
    head_file.write_text(json.dumps({**head, "hash": "0" * 64}))
    broken = room_cli("publisher", "audit-verify", str(party.collab), str(head_file))
    assert broken.exit_code == 6, broken.output
    assert "the audit chain does not extend your head" in broken.stderr


def test_wait_shows_the_state_on_a_terminal_and_times_out_with_exit_1(monkeypatch):
    import io

    from rich.console import Console

    from synthroom.cli import output

    screen = io.StringIO()
    monkeypatch.setattr(output, "err", Console(file=screen, force_terminal=True, width=100))
    states = iter(["queued", "running", "succeeded"])
    final = output.wait_for(lambda: {"state": next(states)}, "job 9", timeout=60, poll=0.01)
    assert final == {"state": "succeeded"} and "job 9" in screen.getvalue() and "running" in screen.getvalue()
    with pytest.raises(output.typer.Exit) as stopped:
        output.wait_for(lambda: {"state": "running"}, "job 9", timeout=0.05, poll=0.01)
    assert stopped.value.exit_code == 1 and "job 9 is still running after 0.05 s" in screen.getvalue()


def test_a_list_on_a_terminal_is_a_table_of_the_columns_that_fit(party, room_cli):
    listed = room_cli("publisher", "template-list", str(party.collab), env={"SYNTHROOM_OUTPUT": "table"})
    assert listed.exit_code == 0, listed.output
    assert "converters" in listed.stdout and "not shown: sql, params, tables" in listed.stdout
    assert "SELECT" not in listed.stdout
