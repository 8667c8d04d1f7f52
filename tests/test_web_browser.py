"""The console in a real browser (Playwright driving the machine's Chromium, never a browser it
downloads): the operator creates two members, who in two browser contexts go through the demo
story on a real ``synthroom serve``: configure tables, a collaboration, propose a template, both
approve, run, watch the progress, open the report, download as receiver (the non-receiver is
refused), train a model, read the audit log. Also: keyboard and screen-reader basics on every
page visited, and the pages at 390 px. With ``SYNTHROOM_SCREENSHOTS=1`` it writes the README's
and docs' screenshots into docs/img/. Skipped where no Chromium is installed, unless
``SYNTHROOM_REQUIRE_BROWSER=1`` (CI), where that fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from roomkit import ADMIN, database_url, start_server

from synthroom.demo.adtech import (
    AUDIENCE_COLUMNS,
    CONVERSIONS_COLUMNS,
    DEMO_CLASSIFICATION,
    DEMO_TEMPLATE,
    simulate_audience,
    simulate_conversions,
)

pytestmark = pytest.mark.browser
IMG = Path(__file__).parents[1] / "docs" / "img"
WAIT = 240_000  # ms: a job on a shared 2-core machine


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("SYNTHROOM_REQUIRE_BROWSER") == "1":
            pytest.fail("no chromium on PATH (apt-get install chromium)")
        pytest.skip("no chromium on PATH")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    for name in ("publisher", "advertiser"):
        (folder / "data" / name).mkdir(parents=True)
    audience = simulate_audience(1500, seed=3)
    audience.to_csv(folder / "data/publisher/audience.csv", index=False)
    simulate_conversions(audience, seed=3).to_parquet(folder / "data/advertiser/conversions.parquet")
    running = start_server(folder, database_url(folder))
    yield running, folder
    running.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium())
        yield launched
        launched.close()


class Shots:
    """Screenshots into docs/img/ when asked for, else into the test's folder."""

    def __init__(self, folder: Path):
        self.folder = IMG if os.environ.get("SYNTHROOM_SCREENSHOTS") == "1" else folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str, **options) -> None:
        page.screenshot(path=str(self.folder / f"console-{name}.png"), **options)


def check_accessible(page) -> None:
    """Every visible form field has a label, one h1, the first focusable element is the skip
    link and it takes the keyboard to the main content."""
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)""")
    assert unlabelled == [], (page.url, unlabelled)
    assert page.locator("h1").count() == 1, page.url
    first = page.evaluate("""() => document.querySelector('a[href], button, input:not([type=hidden]), select, textarea,'
                                                      + ' [tabindex]:not([tabindex="-1"])').className""")
    assert first == "skip", page.url
    page.locator("a.skip").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main", page.url


def offline(context, url: str):
    """``context`` with every request to anywhere but the server aborted (and counted)."""
    elsewhere: list[str] = []

    def guard(route):
        elsewhere.append(route.request.url)
        route.abort()

    context.route(lambda address: not address.startswith(url) and not address.startswith(("data:", "blob:")), guard)
    context.elsewhere = elsewhere
    return context


def sign_in(context, url: str, key: str):
    page = context.new_page()
    page.goto(url + "/")
    assert page.url.endswith("/console/login")
    check_accessible(page)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    return page


def submit(page, form_selector: str, fields: dict[str, str], button: str) -> None:
    form = page.locator(form_selector)
    for label, value in fields.items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name=button).click()


def flash(page) -> str:
    return page.locator(".flashes").inner_text()


def test_two_members_go_through_the_demo_story_in_the_browser(server, browser, tmp_path):
    running, folder = server
    url, shots = running.url, Shots(tmp_path)
    keys = _operator_creates_members(browser, url, folder, shots)
    pub_context = offline(browser.new_context(viewport={"width": 1280, "height": 900}), url)
    pub = sign_in(pub_context, url, keys["publisher"])
    adv_context = offline(browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True), url)
    adv = sign_in(adv_context, url, keys["advertiser"])
    _configure_tables(pub, adv, folder)
    collab_url = _collaborate(pub, adv)
    template_url = _propose_and_approve(pub, adv, collab_url, shots)
    job_url = _run_and_watch(adv, template_url, shots)
    _download_and_refuse(pub, adv, job_url, tmp_path)
    _train(adv, job_url, shots)
    pub.goto(url + "/")
    assert "1 of 3 spent, 2 left" in pub.locator("#tables").inner_text()  # the job's epsilon, charged
    shots(pub, "home", full_page=True)
    _audit(adv, collab_url, shots)
    _phone(browser, url, keys["advertiser"], [collab_url, template_url, job_url], shots)
    _api_docs(pub, url)
    assert pub_context.elsewhere == [] and adv_context.elsewhere == []  # nothing asked of another server


def _api_docs(page, url: str) -> None:
    """Swagger UI and ReDoc render from the server's own files (other origins are blocked)."""
    from playwright.sync_api import expect

    page.goto(url + "/docs")
    expect(page.locator(".swagger-ui .title")).to_contain_text("Synthroom clean room", timeout=30_000)
    expect(page.locator(".opblock-summary-path", has_text="/templates/{template_id}/approve").first).to_be_visible()
    page.goto(url + "/redoc")
    expect(page.locator("h1", has_text="Synthroom clean room")).to_be_visible(timeout=30_000)


def _operator_creates_members(browser, url: str, folder: Path, shots) -> dict[str, str]:
    page = sign_in(browser.new_context(viewport={"width": 1280, "height": 800}), url, ADMIN)
    assert "Create a member" in page.content()
    keys = {}
    for name in ("publisher", "advertiser"):
        submit(
            page,
            "form[action='/console/members']",
            {"Name": name, "Data folders on this server (one a line)": str(folder / "data" / name)},
            "Create member",
        )
        keys[name] = page.get_by_label("API key").input_value()
        assert keys[name].startswith("sr_")
    shots(page, "operator")
    return keys


def _configure_tables(pub, adv, folder: Path) -> None:
    table_form = "form[action='/console/tables']"
    assert pub.locator(table_form).is_visible()  # open while no table is configured
    pub.locator(table_form).get_by_label("Receivers may read the full evaluation report").check()
    submit(
        pub,
        table_form,
        {
            "Name": "audience",
            "Source file on the server (CSV, Parquet or DuckDB, inside your data folders)": str(
                folder / "data/publisher/audience.csv"
            ),
            "Allowed columns (comma separated)": ", ".join(AUDIENCE_COLUMNS),
            "Privacy-unit column": "user_id",
            "Epsilon budget (all jobs)": "3",
        },
        "Configure table",
    )
    assert "table 'audience' configured" in flash(pub)
    adv.locator(table_form).get_by_label("Receivers may read the full evaluation report").check()
    submit(
        adv,
        table_form,
        {
            "Name": "conversions",
            "Source file on the server (CSV, Parquet or DuckDB, inside your data folders)": str(
                folder / "data/advertiser/conversions.parquet"
            ),
            "Allowed columns (comma separated)": ", ".join(CONVERSIONS_COLUMNS),
            "Privacy-unit column": "user_id",
            "Rows per unit kept": "5",
            "Epsilon budget (all jobs)": "3",
            "Members allowed to receive results (comma separated; empty: any receiver)": "advertiser",
        },
        "Configure table",
    )
    assert "table 'conversions' configured" in flash(adv)
    assert adv.get_by_role("meter").count() == 2  # epsilon and delta bars


def _collaborate(pub, adv) -> str:
    adv.get_by_text("Create a collaboration").click()
    form = adv.locator("form[action='/console/collaborations']")
    form.get_by_label("Name", exact=True).fill("spring campaign")
    form.locator("textarea[name=members]").fill("publisher\nadvertiser run receive")
    form.get_by_label("Paying member").fill("advertiser")
    form.get_by_role("button", name="Create and invite").click()
    assert "collaboration 'spring campaign' created" in flash(adv)
    collab_url = adv.url
    pub.reload()
    pub.get_by_role("button", name="Accept").click()
    assert "invitation accepted" in flash(pub)
    for page, table in ((pub, "audience"), (adv, "conversions")):
        page.goto(collab_url)
        page.get_by_text("Add one of your tables").click()
        submit(page, "form[action$='/associations']", {"Name templates use": table}, "Add table")
        assert f"added to the collaboration as '{table}'" in flash(page)
    check_accessible(adv)
    return collab_url


def _propose_and_approve(pub, adv, collab_url: str, shots) -> str:
    adv.goto(collab_url)
    adv.get_by_text("Propose a template").click()
    form = adv.locator("form[action$='/templates']")
    form.get_by_label("Name (a name used before makes a new version)").fill("converters")
    form.get_by_label("SQL (one SELECT over the tables above)").fill(DEMO_TEMPLATE)
    form.locator("textarea[name=classification]").fill(json.dumps(DEMO_CLASSIFICATION, indent=2))
    form.get_by_label("Epsilon", exact=True).fill("1")
    form.get_by_label("Largest membership-inference score released (empty: no gate)").fill("0.8")
    form.get_by_role("button", name="Propose").click()
    assert "template 'converters' version 1 proposed" in flash(adv)
    template_url = adv.url
    check_accessible(adv)
    sql = adv.locator("pre.sql").inner_text()
    assert sql.startswith("SELECT\n  a.age AS age,") and "LEFT JOIN conversions AS c" in sql and '"' not in sql
    adv.get_by_role("button", name="Approve this content hash").click()
    assert "you approved content hash" in flash(adv)
    pub.goto(collab_url)
    pub.get_by_role("link", name="converters").click()
    shots(pub, "template", full_page=True)
    pub.get_by_role("button", name="Approve this content hash").click()
    assert "approved by every table owner" in pub.locator("section").first.inner_text()
    return template_url


def _run_and_watch(adv, template_url: str, shots) -> str:
    from playwright.sync_api import expect

    adv.goto(template_url)
    adv.get_by_role("button", name="Run a job").click()
    assert re.search(r"/console/jobs/\d+$", adv.url) and "queued" in flash(adv)
    job_url = adv.url
    expect(adv.locator(".phase.done", has_text="Queued")).to_be_visible()
    check_accessible(adv)
    expect(adv.locator(".phase.done", has_text="Released")).to_be_visible(timeout=WAIT)  # htmx polling, no reload
    assert adv.locator("#live[hx-trigger]").count() == 0  # polling stops once the job is final
    adv.get_by_text("Show the evaluation report").click()
    frame = adv.frame_locator("iframe.report")
    expect(frame.locator("body")).to_contain_text("fidelity", ignore_case=True, timeout=30_000)
    shots(adv, "job", full_page=True)
    return job_url


def _download_and_refuse(pub, adv, job_url: str, tmp_path: Path) -> None:
    adv.goto(job_url)
    with adv.expect_download() as download:
        adv.get_by_role("link", name="Synthetic data (CSV)").click()
    saved = tmp_path / "synthetic.csv"
    download.value.save_as(saved)
    assert saved.read_text().splitlines()[0].split(",") == [c["name"] for c in DEMO_CLASSIFICATION["columns"]]
    pub.goto(job_url)
    assert pub.get_by_role("link", name="Synthetic data (CSV)").count() == 0  # not offered to a non-receiver
    answer = pub.goto(job_url + "/result?format=csv")
    job_id = job_url.rsplit("/", 1)[1]
    assert answer.status == 403 and f"'publisher' may not receive the results of job {job_id}" in pub.content()


def _train(adv, job_url: str, shots) -> None:
    from playwright.sync_api import expect

    adv.goto(job_url)
    adv.get_by_label("Trainer").select_option("logistic")
    adv.get_by_role("button", name="Train a model").click()
    assert "queued (logistic)" in flash(adv)
    models = adv.locator("#models")
    expect(models.locator(".state-succeeded")).to_be_visible(timeout=WAIT)
    expect(models.get_by_role("link", name="download")).to_be_visible()


def _audit(adv, collab_url: str, shots) -> None:
    adv.goto(collab_url)
    adv.get_by_role("link", name="Audit log").click()
    assert "The whole hash chain verifies" in adv.locator("#chain").inner_text()
    actions = adv.locator("table.audit tbody tr td:nth-child(4)").all_inner_texts()
    for action in ("template.approved", "job.started", "result.read", "report.read"):
        assert any(a.startswith(action.split(".")[0]) for a in actions), (action, actions)
    check_accessible(adv)
    shots(adv, "audit")
    adv.goto(collab_url)
    shots(adv, "collaboration", full_page=True)


def _phone(browser, url: str, key: str, pages: list[str], shots) -> None:
    """At 390 px every page fits the screen's width (no sideways scrolling of the page)."""
    phone = sign_in(browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True), url, key)
    for address in pages:
        phone.goto(address)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (address, width)
    shots(phone, "phone-job")
