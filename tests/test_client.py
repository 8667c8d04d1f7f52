"""synthroom.client.RoomClient against the real app (in process): one method per endpoint, a typed
error per refusal, optional fields left to the server's defaults, and the environment's settings."""

import types
import typing

import httpx
import pytest
from fastapi.testclient import TestClient
from roomkit import ADMIN, two_party

from synthroom import client as client_module
from synthroom.api import create_app
from synthroom.client import (
    ClientError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RoomClient,
    ServerError,
    TooLargeError,
    Unreachable,
    error_for,
)


@pytest.fixture
def room(tmp_path):
    tp = two_party(tmp_path, users=300)
    with TestClient(create_app(tp.room)) as http:
        yield tp, RoomClient(http=http, key=tp.keys["advertiser"])


# every route of the API and the client method that calls it: a new route needs a method (and a line here)
METHODS = {
    ("post", "/models/{model_id}/inference"): "infer",
    ("get", "/inference/{inference_id}"): "inference",
    ("get", "/collaborations/{collaboration_id}/inference"): "inference_list",
    ("get", "/inference/{inference_id}/result"): "inference_result",
    ("get", "/health"): "health",
    ("post", "/members"): "create_member",
    ("get", "/me"): "me",
    ("post", "/collaborations"): "create_collaboration",
    ("get", "/collaborations"): "collaborations",
    ("get", "/invitations"): "invitations",
    ("post", "/collaborations/{collaboration_id}/accept"): "accept",
    ("post", "/collaborations/{collaboration_id}/decline"): "decline",
    ("get", "/collaborations/{collaboration_id}"): "collaboration",
    ("post", "/tables"): "configure_table",
    ("get", "/tables"): "tables",
    ("get", "/tables/{table_id}"): "table",
    ("post", "/tables/{table_id}/refresh"): "refresh_table",
    ("post", "/collaborations/{collaboration_id}/associations"): "associate",
    ("delete", "/collaborations/{collaboration_id}/associations/{name}"): "dissociate",
    ("post", "/collaborations/{collaboration_id}/templates"): "create_template",
    ("get", "/collaborations/{collaboration_id}/templates"): "templates",
    ("get", "/templates/{template_id}"): "template",
    ("post", "/templates/{template_id}/approve"): "approve",
    ("delete", "/templates/{template_id}/approve"): "revoke",
    ("post", "/templates/{template_id}/jobs"): "start_job",
    ("get", "/collaborations/{collaboration_id}/jobs"): "jobs",
    ("get", "/jobs/{job_id}"): "job",
    ("get", "/jobs/{job_id}/result"): "result",
    ("get", "/jobs/{job_id}/report"): "report",
    ("post", "/jobs/{job_id}/models"): "train",
    ("get", "/jobs/{job_id}/models"): "models",
    ("get", "/models/{model_id}"): "model",
    ("get", "/models/{model_id}/file"): "model_file",
    ("get", "/collaborations/{collaboration_id}/audit"): "audit",
    ("get", "/collaborations/{collaboration_id}/audit/head"): "audit_head",
    ("post", "/collaborations/{collaboration_id}/audit/verify"): "audit_verify",
    ("get", "/collaborations/{collaboration_id}/metering"): "metering",
}


def test_every_endpoint_has_a_method(room):
    tp, client = room
    routes = {(m, p) for p, ms in client.http.get("/openapi.json").json()["paths"].items() for m in ms}
    assert routes == set(METHODS)  # a new route needs a client method and a line in METHODS
    assert all(callable(getattr(client, name)) for name in METHODS.values())
    assert client.health()["status"] == "ok"
    assert client.me() == {"id": tp.advertiser.id, "name": "advertiser"}
    assert [c["id"] for c in client.collaborations()] == [tp.collab]
    assert client.collaboration(tp.collab)["payer"] == "advertiser"
    assert [t["id"] for t in client.tables()] == [tp.conversions]
    assert client.table(tp.conversions)["name"] == "conversions"
    assert [t["id"] for t in client.templates(tp.collab)] == [tp.template["id"]]
    assert client.template(tp.template["id"])["hash"] == tp.template["hash"]
    assert client.jobs(tp.collab) == [] and client.invitations() == []
    assert (
        client.audit(tp.collab, limit=2)["entries"][0]["seq"] == 1
        and len(client.audit(tp.collab, limit=2)["entries"]) == 2
    )
    head = client.audit_head(tp.collab)
    assert client.audit_verify(tp.collab, head)["extends"] is True
    assert client.metering(tp.collab)["entries"] == []


# openapi type names of the Python types the client's answers use
KINDS = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array", dict: "object"}


def _kinds_of_hint(hint) -> set[str]:
    """The JSON types a field's annotation admits (``X | None``: X's and null)."""
    if hint is type(None):
        return {"null"}
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return set().union(*(_kinds_of_hint(h) for h in typing.get_args(hint)))
    if typing.get_origin(hint) is typing.Literal:
        return {KINDS[type(v)] for v in typing.get_args(hint)}
    if typing.is_typeddict(hint):
        return {"object"}
    return {KINDS[typing.get_origin(hint) or hint]}


def _kinds_of_schema(schema: dict) -> set[str]:
    if "anyOf" in schema:
        return set().union(*(_kinds_of_schema(s) for s in schema["anyOf"]))
    return {"object"} if "$ref" in schema or "allOf" in schema else {schema["type"]}


def _agree(hint, schema: dict, spec: dict, where: str) -> int:
    """Check a typed answer (a TypedDict, a list of one, nested ones) against the response model's
    JSON schema: the same field names, each with the same JSON types; returns the fields checked."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if typing.get_origin(hint) is list:
        assert schema["type"] == "array", where
        return _agree(typing.get_args(hint)[0], schema["items"], spec, where + "[]")
    if not typing.is_typeddict(hint):
        return 0
    fields = typing.get_type_hints(hint)
    assert set(fields) == set(schema["properties"]), where  # the same fields, no more, no fewer
    assert hint.__required_keys__ == set(fields), where  # the server always sends every field
    checked = len(fields)
    for name, field in fields.items():
        prop = schema["properties"][name]
        assert _kinds_of_hint(field) == _kinds_of_schema(prop), f"{where}.{name}"
        checked += _agree(field, prop, spec, f"{where}.{name}")
    return checked


def test_typed_answers_match_the_api_response_models(room):
    """Each method's declared answer (``synthroom.client.Job``, ...) has exactly the fields, and
    JSON types, of the response model its route declares, nested models too: the client stays
    standalone (it cannot import the API's models) without drifting from them."""
    _, client = room
    spec = client.http.get("/openapi.json").json()
    checked = {}
    for (method, path), name in METHODS.items():
        answer = typing.get_type_hints(getattr(RoomClient, name))["return"]
        responses = spec["paths"][path][method]["responses"]
        ok = next(code for code in responses if code.startswith("2"))
        content = responses[ok].get("content", {}).get("application/json")
        if answer is bytes or path == "/health":  # files; /health declares no model
            continue
        checked[name] = _agree(answer, content["schema"], spec, name)
    assert len(checked) == len(METHODS) - 5 and all(checked.values()), checked  # 4 files and /health left
    assert checked["collaboration"] > 9 and checked["audit_verify"] == 3 + 4  # nested models were checked too
    assert set(client_module.Health.__annotations__) == set(client.health())


def test_refusals_raise_the_typed_error_with_the_servers_detail(room):
    tp, client = room
    with pytest.raises(NotFoundError, match="^404: no collaboration with id 9999$") as caught:
        client.collaboration(9999)
    assert caught.value.status == 404 and caught.value.detail == "no collaboration with id 9999"
    with pytest.raises(ForbiddenError, match="^403: the API key is not valid$"):
        client.as_member("sr_guess").me()
    with pytest.raises(ConflictError):
        client.approve(tp.template["id"], "0" * 64)
    with pytest.raises(InvalidInputError):
        client.table(0)
    with pytest.raises(ForbiddenError, match="^403: creating members needs the server's admin key$"):
        RoomClient(http=client.http, admin_key="wrong").create_member("mallory", [])
    assert RoomClient(http=client.http, admin_key=ADMIN).create_member("carol", [])["api_key"].startswith("sr_")
    assert isinstance(error_for(413, "x"), TooLargeError) and isinstance(error_for(503, "x"), ServerError)
    assert type(error_for(418, "x")) is ClientError


def test_optional_fields_not_given_are_not_sent(room, monkeypatch):
    tp, client = room
    sent = []
    monkeypatch.setattr(client, "_json", lambda method, path, body=None, params=None: sent.append(body) or {})
    client.configure_table(name="t", source_kind="csv", source_path="/x.csv", allowed_columns=["a"], epsilon_budget=1)
    client.create_template(1, name="n", sql="SELECT 1", epsilon=1.0, classification={}, rows=10)
    assert sent == [
        {"name": "t", "source_kind": "csv", "source_path": "/x.csv", "allowed_columns": ["a"], "epsilon_budget": 1},
        {"name": "n", "sql": "SELECT 1", "epsilon": 1.0, "classification": {}, "rows": 10},
    ]


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("SYNTHROOM_SERVER", "http://room.invalid:1")
    monkeypatch.setenv("SYNTHROOM_API_KEY", "sr_k")
    monkeypatch.delenv("SYNTHROOM_ADMIN_KEY", raising=False)
    client = RoomClient.from_env(admin_key=ADMIN)
    assert (client.server, client.key, client.admin_key) == ("http://room.invalid:1", "sr_k", ADMIN)
    assert str(client.http.base_url) == "http://room.invalid:1"


def test_an_unreachable_server_raises_unreachable():
    with socket_free_port() as port, RoomClient(f"http://127.0.0.1:{port}", key="k", timeout=2) as client:
        with pytest.raises(Unreachable, match="^cannot reach the server: ") as caught:
            client.me()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_the_client_imports_nothing_else_of_synthroom():
    source = client_module.__file__
    lines = [line for line in open(source) if line.startswith(("import ", "from "))]
    assert not [line for line in lines if "synthroom" in line or line.startswith("from .")]


class socket_free_port:
    """A port nothing listens on (bound, then released) for the block."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *_exc):
        return False
