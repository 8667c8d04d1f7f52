"""Test helpers for the clean room: a two-party room (publisher + advertiser) on small data."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from synthroom.demo.adtech import (
    AUDIENCE_COLUMNS,
    CONVERSIONS_COLUMNS,
    DEMO_CLASSIFICATION,
    DEMO_TEMPLATE,
    simulate_audience,
    simulate_conversions,
)
from synthroom.room import Actor, Room

ADMIN = "test-admin-key"
POSTGRES_ENV = "SYNTHROOM_TEST_POSTGRES_URL"  # e.g. postgresql+psycopg://postgres:pw@localhost/postgres
CREATED_DATABASES: set[str] = set()  # what this test process used on that server (dropped at its end)


def database_url(folder: Path) -> str:
    """The room's metadata database for a test folder: SQLite in the folder, or, when
    ``SYNTHROOM_TEST_POSTGRES_URL`` names a PostgreSQL server (an account that may create
    databases), a database of its own on that server, named after the folder (so a second
    process for the same folder, as in the restart test, opens the same one)."""
    admin = os.environ.get(POSTGRES_ENV)
    if not admin:
        return f"sqlite:///{folder / 'room.db'}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = "synthroom_test_" + hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as con:
            if not con.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                con.execute(text(f'CREATE DATABASE "{name}"'))
        CREATED_DATABASES.add(name)  # also one a child process created (the restart test): dropped at the end
    finally:
        engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


@dataclass
class TwoParty:
    room: Room
    publisher: Actor
    advertiser: Actor
    analyst: Actor  # a third member: may run, may not receive
    keys: dict[str, str]
    collab: int
    audience: int  # configured table ids
    conversions: int
    template: dict
    folder: Path


def two_party(
    folder: Path,
    users: int = 1500,
    budget: float = 3.0,
    epsilon: float = 1.0,
    approve: bool = True,
    url: str | None = None,
    room: Room | None = None,
    model_policy: dict | None = None,
    model_evaluations: int = 0,
    **room_options,
) -> TwoParty:
    """Members, tables, a collaboration (created and paid for by the advertiser, accepted by the
    publisher and the analyst), associations and the demo template (approved)."""
    room = room or Room(url or database_url(folder), folder / "artifacts", admin_key=ADMIN, **room_options)
    keys, actors = {}, {}
    for name in ("publisher", "advertiser", "analyst"):
        data = folder / "data" / name
        data.mkdir(parents=True, exist_ok=True)
        created = room.create_member(ADMIN, name, [str(data)])
        keys[name], actors[name] = created["api_key"], Actor(created["id"], name)
    audience = simulate_audience(users, seed=3)
    audience.to_csv(folder / "data" / "publisher" / "audience.csv", index=False)
    simulate_conversions(audience, seed=3).to_parquet(folder / "data" / "advertiser" / "conversions.parquet")
    pub, adv = actors["publisher"], actors["advertiser"]
    t_aud = room.configure_table(
        pub,
        "audience",
        "csv",
        str(folder / "data/publisher/audience.csv"),
        AUDIENCE_COLUMNS,
        epsilon_budget=budget,
        unit_column="user_id",
        unit_cap=1,
        share_full_report=True,
        model_evaluations=model_evaluations,
    )
    t_conv = room.configure_table(
        adv,
        "conversions",
        "parquet",
        str(folder / "data/advertiser/conversions.parquet"),
        CONVERSIONS_COLUMNS,
        epsilon_budget=budget,
        unit_column="user_id",
        unit_cap=3,
        allowed_receivers=["advertiser", "analyst"],
        share_full_report=True,
        model_evaluations=model_evaluations,
    )
    collab = room.create_collaboration(
        adv,
        "campaign lift",
        [
            {"name": "publisher", "can_run": False, "can_receive": False},
            {"name": "advertiser", "can_run": True, "can_receive": True},
            {"name": "analyst", "can_run": True, "can_receive": False},
        ],
        payer="advertiser",
        retention_days=7,
        model_policy=model_policy,
    )
    for invited in (pub, actors["analyst"]):  # the creator (and payer) is active; the others accept
        room.accept_invitation(invited, collab["id"])
    room.associate(pub, collab["id"], t_aud["id"], "audience")
    room.associate(adv, collab["id"], t_conv["id"], "conversions")
    template = room.create_template(
        adv,
        collab["id"],
        "converters",
        DEMO_TEMPLATE,
        epsilon=epsilon,
        classification=DEMO_CLASSIFICATION,
        max_mia_score=0.8,
    )
    if approve:
        for actor in (pub, adv):
            template = room.approve_template(actor, template["id"], template["hash"])
    return TwoParty(room, pub, adv, actors["analyst"], keys, collab["id"], t_aud["id"], t_conv["id"], template, folder)


@dataclass
class ServerProcess:
    """A real ``synthroom serve`` process on a loopback port (see :func:`start_server`)."""

    url: str
    process: "subprocess.Popen"
    log_path: Path

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s (a request still computing must not hold the suite)."""
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(folder: Path, db_url: str, *options: str, timeout: float = 60) -> ServerProcess:
    """Start ``synthroom serve`` on a free loopback port over ``db_url`` with data in ``folder``
    (admin key :data:`ADMIN`, the anonymeter sidecar off) and wait until it answers ``/health``."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, SYNTHROOM_ADMIN_KEY=ADMIN, SYNTHROOM_ANONYMETER_PYTHON="/nonexistent")
    log_path = folder / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "synthroom.cli.app",
                "serve",
                "--data-dir",
                str(folder),
                "--db-url",
                db_url,
                "--port",
                str(port),
                *options,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.time() > deadline:
            server.stop()
            raise RuntimeError(f"the server did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.2)
