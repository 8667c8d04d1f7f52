"""The web console without a browser: sign-in and sessions, CSRF, escaping, security headers,
the assets served by the server itself, and that each page shows a member exactly what the API
answers it (the browser test is tests/test_web_browser.py)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
from roomkit import ADMIN, two_party

from synthroom.api import create_app
from synthroom.demo.adtech import DEMO_CLASSIFICATION, DEMO_TEMPLATE
from synthroom.room import jobs
from synthroom.web import views
from synthroom.web.sessions import SessionStore, SignedOut

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

STATIC = Path(__file__).parents[1] / "src/synthroom/web/static"


@pytest.fixture(scope="module")
def party(tmp_path_factory):
    return two_party(tmp_path_factory.mktemp("console"), users=300, approve=False)


def client(party, **options) -> TestClient:
    return TestClient(create_app(party.room), **options)


def sign_in(http: TestClient, key: str):
    page = http.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    return http.post("/console/login", data={"login_token": token, "api_key": key}, follow_redirects=False)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_root_sends_a_stranger_to_sign_in_and_the_docs_load_nothing_from_elsewhere(party):
    http = client(party)
    assert http.get("/", follow_redirects=False).headers["location"] == "/console/login"
    for page in ("/docs", "/redoc", "/console/login"):
        html = http.get(page).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert urls and all(u.startswith("/") or u.startswith("#") for u in urls), (page, urls)
        assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html, page
        for url in urls:
            if url.startswith("/static/"):
                assert http.get(url).status_code == 200, url
    assert "/openapi.json" in http.get("/docs").text
    for page in ("/docs", "/redoc"):  # the browser may load nothing from another server
        policy = http.get(page).headers["content-security-policy"]
        assert "default-src 'self'" in policy and "img-src 'self' data:" in policy and "http" not in policy


def test_sign_in_sets_an_httponly_strict_cookie_and_the_key_appears_nowhere(party):
    http = client(party)
    answer = sign_in(http, party.keys["publisher"])
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("synthroom_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and "Secure" not in cookie
    for page in ("/", f"/console/collaborations/{party.collab}", f"/console/templates/{party.template['id']}"):
        html = http.get(page).text
        assert "signed in as <strong>publisher</strong>" in html and party.keys["publisher"] not in html
    secure = sign_in(client(party, base_url="https://testserver"), party.keys["publisher"])
    assert "Secure" in next(c for c in secure.headers.get_list("set-cookie") if c.startswith("synthroom_session="))


def test_a_wrong_key_gets_the_apis_message_and_no_session(party):
    http = client(party)
    answer = sign_in(http, "sr_not-a-key")
    assert answer.status_code == 403 and "the API key is not valid" in answer.text
    assert "synthroom_session" not in answer.headers.get("set-cookie", "")
    assert http.get("/", follow_redirects=False).headers["location"] == "/console/login"


def test_the_sign_in_form_needs_its_own_token_against_login_csrf(party):
    http = client(party)
    answer = http.post(
        "/console/login", data={"login_token": "forged", "api_key": party.keys["publisher"]}, follow_redirects=False
    )
    assert answer.status_code == 403 and "came from another site" in answer.text
    assert "synthroom_session" not in answer.headers.get("set-cookie", "")


def test_every_post_needs_the_sessions_csrf_token_and_this_sites_origin(party):
    http = client(party)
    sign_in(http, party.keys["publisher"])
    template = party.template
    url = f"/console/templates/{template['id']}/approve"
    page = http.get(f"/console/templates/{template['id']}").text
    for data, headers in (
        ({"hash": template["hash"]}, {}),
        ({"hash": template["hash"], "csrf": "wrong"}, {}),
        ({"hash": template["hash"], "csrf": csrf_of(page)}, {"origin": "https://evil.example"}),
    ):
        answer = http.post(url, data=data, headers=headers, follow_redirects=False)
        assert answer.status_code == 403, answer.text
        assert "publisher" not in party.room.get_template(party.publisher, template["id"])["approved_by"]
    answer = http.post(
        url,
        data={"hash": template["hash"], "csrf": csrf_of(page)},
        headers={"referer": f"http://testserver/console/templates/{template['id']}"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert "publisher" in party.room.get_template(party.publisher, template["id"])["approved_by"]
    shown = http.get(answer.headers["location"]).text
    assert "you approved content hash" in shown and "Revoke my approval" in shown
    revoked = http.post(
        f"/console/templates/{template['id']}/revoke", data={"csrf": csrf_of(shown)}, follow_redirects=False
    )
    assert revoked.status_code == 303 and party.room.get_template(party.publisher, template["id"])["approved_by"] == []


def test_a_refused_form_comes_back_with_the_apis_one_line_message(party):
    http = client(party)
    sign_in(http, party.keys["publisher"])
    tid = party.template["id"]
    page = http.get(f"/console/templates/{tid}")
    answer = http.post(
        f"/console/templates/{tid}/approve",
        data={"hash": "0" * 64, "csrf": csrf_of(page.text)},
        headers={"referer": f"http://testserver/console/templates/{tid}"},
    )
    api = TestClient(create_app(party.room)).post(
        f"/templates/{tid}/approve", json={"hash": "0" * 64}, headers={"X-API-Key": party.keys["publisher"]}
    )
    assert api.status_code == 409
    assert api.json()["detail"].replace("'", "&#39;") in answer.text and 'class="flash error"' in answer.text


def test_names_and_sql_are_escaped(party):
    """A member's template name and SQL literal holding markup reach the page as text."""
    evil = "<script>alert(1)</script>"
    created = party.room.create_template(
        party.advertiser,
        party.collab,
        evil,
        DEMO_TEMPLATE.replace("GROUP BY", f"WHERE a.region <> '{evil}' GROUP BY"),
        epsilon=1.0,
        classification=DEMO_CLASSIFICATION,
    )
    http = client(party)
    sign_in(http, party.keys["publisher"])
    for page in (f"/console/templates/{created['id']}", f"/console/collaborations/{party.collab}"):
        html = http.get(page).text
        assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html.replace("&#39;", "'"), (
            page
        )
    assert "<script>" not in http.get(f"/console/templates/{created['id']}").text.split("</head>")[1]


def test_pages_carry_a_strict_content_security_policy(party):
    http = client(party)
    sign_in(http, party.keys["publisher"])
    page = http.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_each_page_shows_a_member_exactly_what_the_api_answers_it(party):
    """The same service calls, through the API's response models: equal JSON, for both parties."""
    room = party.room
    api = TestClient(create_app(room))
    job = jobs.start_job(room, party.advertiser, _approved(party)["id"])
    for name, actor in (("publisher", party.publisher), ("advertiser", party.advertiser)):
        key = {"X-API-Key": party.keys[name]}

        def get(path, key=key):
            return api.get(path, headers=key).json()

        home = views.home(room, actor)
        assert home["collaborations"] == get("/collaborations") and home["tables"] == get("/tables")
        assert home["invitations"] == get("/invitations") and home["me"] == get("/me")
        page = views.collaboration(room, actor, party.collab)
        assert page["collaboration"] == get(f"/collaborations/{party.collab}")
        assert page["templates"] == get(f"/collaborations/{party.collab}/templates")
        assert page["jobs"] == get(f"/collaborations/{party.collab}/jobs")
        assert views.template(room, actor, job["template_id"])["template"] == get(f"/templates/{job['template_id']}")
        assert views.job(room, actor, job["id"])["job"] == get(f"/jobs/{job['id']}")
        models = api.get(f"/jobs/{job['id']}/models", headers=key)
        assert views.job(room, actor, job["id"])["models"] == (models.json() if models.status_code == 200 else None)
        assert models.status_code == (200 if name == "advertiser" else 403)
        assert views.metering(room, actor, party.collab)["metering"] == get(f"/collaborations/{party.collab}/metering")
        assert views.audit(room, actor, party.collab)["audit"] == get(f"/collaborations/{party.collab}/audit")
    http = client(party)
    sign_in(http, party.keys["publisher"])
    html = http.get("/").text
    assert "audience.csv" in html and "conversions.parquet" not in html  # own source path only


def _approved(party) -> dict:
    template = party.room.create_template(
        party.advertiser, party.collab, "approved", DEMO_TEMPLATE, epsilon=0.5, classification=DEMO_CLASSIFICATION
    )
    for actor in (party.publisher, party.advertiser):
        template = party.room.approve_template(actor, template["id"], template["hash"])
    return template


def test_a_job_page_shows_its_phases_and_polls_only_while_it_runs(party):
    job = jobs.start_job(party.room, party.advertiser, _approved(party)["id"])
    http = client(party)
    sign_in(http, party.keys["advertiser"])
    html = http.get(f"/console/jobs/{job['id']}").text
    assert 'hx-get="/console/jobs/%d/live"' % job["id"] in html and 'aria-current="step"' in html
    steps = views.phases({**job, "state": "succeeded", "released": True, "started_at": "t1", "finished_at": "t2"})
    assert [(s["label"], s["done"], s["current"]) for s in steps] == [
        ("Queued", True, False),
        ("Running", True, False),
        ("Released", True, False),
    ]
    running = views.phases({**job, "state": "running", "started_at": "t1"})
    assert [(s["done"], s["current"]) for s in running] == [(True, False), (False, True), (False, False)]


def test_a_non_receiver_is_refused_a_result_with_the_apis_message(party):
    job = jobs.start_job(party.room, party.advertiser, _approved(party)["id"])
    http = client(party)
    sign_in(http, party.keys["publisher"])
    answer = http.get(f"/console/jobs/{job['id']}/result?format=csv")
    assert (
        answer.status_code == 403
        and f"&#39;publisher&#39; may not receive the results of job {job['id']}" in answer.text
    )


def test_the_operator_creates_a_member_and_has_no_member_pages(party, tmp_path):
    http = client(party)
    assert sign_in(http, ADMIN).status_code == 303
    page = http.get("/")
    assert "Create a member" in page.text
    created = http.post(
        "/console/members", data={"name": "finance", "data_roots": str(tmp_path), "csrf": csrf_of(page.text)}
    )
    key = re.search(r'id="new-key" class="key" readonly value="(sr_[^"]+)"', created.text).group(1)
    assert party.room.authenticate(key).name == "finance"
    assert http.get(f"/console/collaborations/{party.collab}").status_code == 403
    member = client(party)
    sign_in(member, key)
    assert member.post("/console/members", data={"name": "x", "csrf": csrf_of(member.get("/").text)}).status_code == 403


def test_sessions_expire_when_idle_and_after_their_lifetime_and_on_sign_out(party):
    now = [0.0]
    store = SessionStore(idle=60, lifetime=300, clock=lambda: now[0])
    token, session = store.create(party.publisher)
    for step in (50, 100, 150, 200, 250):
        now[0] = step
        assert store.get(token) is session
    now[0] = 301
    with pytest.raises(SignedOut, match="expired"):
        store.get(token)
    token, _ = store.create(party.publisher)
    now[0] = 400
    with pytest.raises(SignedOut, match="expired"):
        store.get(token)
    http = client(party)
    sign_in(http, party.keys["publisher"])
    page = http.get("/")
    assert http.post("/console/logout", data={"csrf": "wrong"}).status_code == 403  # nobody else signs you out
    assert http.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    assert http.get("/", follow_redirects=False).headers["location"] == "/console/login"


def test_the_sessions_capacity_drops_the_oldest(party):
    store = SessionStore(capacity=2)
    first, _ = store.create(party.publisher)
    store.create(party.publisher)
    store.create(party.publisher)
    assert len(store) == 2
    with pytest.raises(SignedOut):
        store.get(first)


def test_the_highlighting_stylesheet_is_the_one_the_code_generates():
    text = (STATIC / "sql.css").read_text()
    assert text.split("\n", 1)[1].strip() == views.highlight_css().strip()


def test_vendored_assets_carry_their_licences():
    vendor = STATIC / "vendor"
    for asset, licence in (
        ("htmx.min.js", "htmx.LICENSE"),
        ("swagger-ui-bundle.js", "swagger-ui.LICENSE"),
        ("redoc.standalone.js", "redoc.LICENSE"),
    ):
        assert (vendor / asset).stat().st_size > 10_000 and (vendor / licence).read_text().strip()


def test_a_refusal_goes_back_only_to_a_page_of_this_site(party):
    http = client(party)
    sign_in(http, party.keys["publisher"])
    tid = party.template["id"]
    csrf = csrf_of(http.get(f"/console/templates/{tid}").text)
    for referer in (
        "https://evil.example/console/templates/1",
        "http://testserver//evil.example/x",
        "http://testserver/\\evil.example",
    ):
        answer = http.post(
            f"/console/templates/{tid}/approve",
            data={"hash": "0" * 64, "csrf": csrf},
            headers={"referer": referer},
            follow_redirects=False,
        )
        assert answer.status_code == 409 and "location" not in answer.headers, referer
    back = http.post(
        f"/console/templates/{tid}/approve",
        data={"hash": "0" * 64, "csrf": csrf},
        headers={"referer": f"http://testserver/console/templates/{tid}?x=1"},
        follow_redirects=False,
    )
    assert back.status_code == 303 and back.headers["location"] == f"/console/templates/{tid}?x=1"


def test_the_console_takes_no_file_uploads(party):
    http = client(party)
    sign_in(http, party.keys["publisher"])
    csrf = csrf_of(http.get("/").text)
    answer = http.post("/console/tables", data={"csrf": csrf}, files={"name": ("x.csv", b"a,b\n")})
    assert answer.status_code == 422 and "the console&#39;s forms take no files" in answer.text


def test_a_member_signing_in_again_and_again_evicts_only_its_own_sessions(party):
    store = SessionStore(capacity=100, per_member=3)
    other, _ = store.create(party.advertiser)
    mine = [store.create(party.publisher)[0] for _ in range(50)]
    assert store.get(other).actor == party.advertiser  # never pushed out by the publisher's sign-ins
    for token in mine[:-3]:
        with pytest.raises(SignedOut):
            store.get(token)
    assert all(store.get(token).actor == party.publisher for token in mine[-3:]) and len(store) == 4


def test_expired_sessions_are_forgotten_when_a_new_one_is_made(party):
    now = [0.0]
    store = SessionStore(idle=10, clock=lambda: now[0])
    for _ in range(5):
        store.create(party.publisher)
    now[0] = 11
    store.create(party.advertiser)
    assert len(store) == 1


def test_a_template_proposed_in_the_console_is_the_one_the_api_would_store(party):
    http = client(party)
    sign_in(http, party.keys["advertiser"])
    page = http.get(f"/console/collaborations/{party.collab}")
    answer = http.post(
        f"/console/collaborations/{party.collab}/templates",
        follow_redirects=False,
        data={
            "csrf": csrf_of(page.text),
            "name": "from the form",
            "sql": DEMO_TEMPLATE,
            "epsilon": "0.7",
            "classification": json.dumps(DEMO_CLASSIFICATION),
            "max_mia_score": "0.9",
            "delta": "1e-10",
            "rows": "500",
        },
    )
    assert answer.status_code == 303
    tid = int(answer.headers["location"].rsplit("/", 1)[1])
    params = party.room.get_template(party.advertiser, tid)["params"]
    assert (params["epsilon"], params["max_mia_score"], params["delta"], params["rows"]) == (0.7, 0.9, 1e-10, 500)
    bad = http.post(
        f"/console/collaborations/{party.collab}/templates",
        data={
            "csrf": csrf_of(page.text),
            "name": "bad",
            "sql": DEMO_TEMPLATE,
            "epsilon": "many",
            "classification": json.dumps(DEMO_CLASSIFICATION),
        },
    )
    assert bad.status_code == 422 and "epsilon &#39;many&#39; is not a number" in bad.text
