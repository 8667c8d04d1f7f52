"""The other attack classes against a real server: `synthroom serve` as its own process on a
loopback port, every request over HTTP, as an attacking member would send it (the availability
attacks are in ``test_room_server.py``; each class is tried exhaustively in-process elsewhere:
``test_room_escape.py``, ``test_room_consent.py``, ``test_room_hardening.py``).

Mallory is a member with a data folder of its own; the victim is another member whose table
holds a secret column. Nothing Mallory is shown may contain the secret, the victim's paths, the
server's data folder or its PID."""

from __future__ import annotations

import os

import duckdb
import httpx
import pandas as pd
import pytest
from roomkit import ADMIN, database_url, start_server

SECRET = "SSN-918-27-3645"


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    server = start_server(folder, database_url(folder), "--workers", "0")
    try:
        admin = httpx.Client(base_url=server.url, headers={"X-Admin-Key": ADMIN}, timeout=30)
        keys, dirs = {}, {}
        for name in ("mallory", "victim"):
            dirs[name] = folder / "data" / name
            dirs[name].mkdir(parents=True)
            made = admin.post("/members", json={"name": name, "data_roots": [str(dirs[name])]})
            assert made.status_code == 201, made.text
            keys[name] = made.json()["api_key"]
        secret_csv = dirs["victim"] / "secret.csv"
        pd.DataFrame({"user_id": [1, 2, 3], "age": [31, 42, 53], "ssn": [SECRET] * 3}).to_csv(secret_csv, index=False)
        clients = {n: httpx.Client(base_url=server.url, headers={"X-API-Key": k}, timeout=30) for n, k in keys.items()}
        victim_table = clients["victim"].post("/tables", json=_table("people", "csv", secret_csv))
        assert victim_table.status_code == 201, victim_table.text
        yield {
            "server": server,
            "folder": folder,
            "dirs": dirs,
            "secret_csv": secret_csv,
            "http": clients,
            "victim_table": victim_table.json()["id"],
        }
    finally:
        server.stop()


def _table(name: str, kind: str, path, **extra) -> dict:
    return {
        "name": name,
        "source_kind": kind,
        "source_path": str(path),
        "allowed_columns": ["user_id", "age"],
        "epsilon_budget": 1,
        "unit_column": "user_id",
        **extra,
    }


def _assert_clean(response: httpx.Response, room) -> None:
    """Nothing a member is shown holds the victim's secret or paths, the server's folder or PID."""
    text = response.text
    assert SECRET not in text and str(room["dirs"]["victim"]) not in text
    assert str(room["folder"] / "artifacts") not in text and f"pid {room['server'].process.pid}" not in text.lower()


def test_a_view_in_a_members_database_cannot_read_another_members_file(room):
    path = room["dirs"]["mallory"] / "crm.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"CREATE VIEW people AS SELECT 1 AS user_id, 30 AS age, content AS ssn "
            f"FROM read_text('{room['secret_csv']}')"
        )
    answer = room["http"]["mallory"].post("/tables", json=_table("crm", "duckdb", path, source_table="people"))
    assert answer.status_code == 422
    assert (
        answer.json()["detail"] == f"table 'people' of data source {str(path)!r} is a view; only base tables are read"
    )
    _assert_clean(answer, room)


def test_a_file_swapped_for_a_symlink_after_configuration_is_not_followed(room):
    mine = room["dirs"]["mallory"] / "mine.csv"
    pd.DataFrame({"user_id": [1, 2, 3], "age": [20, 30, 40]}).to_csv(mine, index=False)
    made = room["http"]["mallory"].post("/tables", json=_table("mine", "csv", mine))
    assert made.status_code == 201, made.text
    mine.unlink()
    mine.symlink_to(room["secret_csv"])
    refreshed = room["http"]["mallory"].post(f"/tables/{made.json()['id']}/refresh")
    assert refreshed.status_code == 422 and "is or goes through a symbolic link" in refreshed.json()["detail"]
    _assert_clean(refreshed, room)


def test_nobody_is_a_member_or_a_payer_without_accepting(room):
    mallory, victim = room["http"]["mallory"], room["http"]["victim"]
    made = mallory.post(
        "/collaborations",
        json={
            "name": "bill the victim",
            "payer": "victim",
            "members": [{"name": "mallory", "can_run": True, "can_receive": True}, {"name": "victim"}],
        },
    )
    assert made.status_code == 201, made.text
    collab = made.json()
    assert collab["payer_accepted"] is False
    assert collab["id"] not in [c["id"] for c in victim.get("/collaborations").json()]  # invited, not a member
    assert [i["id"] for i in victim.get("/invitations").json()] == [collab["id"]]
    metering = victim.get(f"/collaborations/{collab['id']}/metering")
    assert metering.status_code == 403 and "has not accepted the invitation" in metering.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/9223372036854775808",
        "/tables/18446744073709551616",
        "/models/-1",
        "/collaborations/0",
        "/templates/" + "9" * 40,
    ],
)
def test_ids_outside_64_bits_are_refused_not_a_500(room, path):
    answer = room["http"]["mallory"].get(path)
    assert answer.status_code in (404, 422), answer.text
    _assert_clean(answer, room)


def test_control_characters_are_refused(room):
    answer = room["http"]["mallory"].post("/tables", json=_table("nul\x00name", "csv", "/tmp/x\x00.csv"))
    assert answer.status_code == 422
    _assert_clean(answer, room)


def test_another_members_table_is_indistinguishable_from_a_missing_one(room):
    victims = room["http"]["mallory"].get(f"/tables/{room['victim_table']}")
    missing = room["http"]["mallory"].get("/tables/999999")
    assert victims.status_code == missing.status_code == 404
    assert victims.json() == {"detail": f"no table with id {room['victim_table']}"}
    assert missing.json() == {"detail": "no table with id 999999"}


def test_the_servers_files_are_its_users_alone(room):
    folder = room["folder"]
    assert oct(os.stat(folder).st_mode & 0o777) == oct(0o700)
    for path in (folder / "artifacts").rglob("*"):
        assert oct(path.stat().st_mode & 0o777) == oct(0o700 if path.is_dir() else 0o600), path
