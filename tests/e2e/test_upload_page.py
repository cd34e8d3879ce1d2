"""The upload page in a real browser (Debian's Chromium, driven by Playwright) on the embedded target.

The page is served as ``pipeline local up`` serves it (``web/`` plus a ``config.json`` for this stack, on the
origin the session's stack names in the API's CORS settings); it signs in against the emulator's Cognito,
asks the local gateway for presigned forms, posts the files straight to the emulator's landing bucket and
polls the API until the running pipeline has an outcome for each. A screenshot of the page after the uploads
is saved as ``build/artifacts/upload-page.png``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from tests.conftest import PAGE_PORT
from tests.e2e.support import Pipeline

from pipeline_toolkit.gateway.local import (
    LocalApi,
    create_demo_user,
    page_origin,
    start_local_api,
    start_local_page,
)
from pipeline_toolkit.gateway.page import PageServer
from pipeline_toolkit.project import project_dir

pytestmark = [pytest.mark.e2e, pytest.mark.terraform]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = project_dir() / "build" / "artifacts"
OUTCOME_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def served(
    pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalApi, PageServer]]:
    api = start_local_api(
        pipeline.clients.environment, pipeline.outputs, log_dir=tmp_path_factory.mktemp("page-logs")
    )
    cors = api.server.gateway.api.cors
    admitted = cors.allow_origins if cors else ()
    if page_origin(PAGE_PORT) not in admitted:
        # A stack applied elsewhere (docker compose, LocalStack: PIPELINE_E2E_OUTPUTS) with other CORS
        # settings: a browser would refuse every API call, so the page cannot run against it. The session's
        # own stack admits the page's origin, and the in-process pass runs this module against it.
        api.stop()
        pytest.skip(
            f"the target's API admits {list(admitted)} in CORS, not the page's {page_origin(PAGE_PORT)}"
        )
    try:
        page = start_local_page(pipeline.clients.environment, pipeline.outputs, api, port=PAGE_PORT)
    except BaseException:
        api.stop()
        raise
    yield api, page
    page.stop()
    api.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        yield launched
        launched.close()


def sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(url)
    expect(page.locator("body[data-ready='true']")).to_be_attached()
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in-button")
    expect(page.locator("#uploader")).to_be_visible()
    expect(page.locator("#sign-in")).to_be_hidden()


def drop_file(page: Page, path: Path, mime: str) -> None:
    """Drop a file on the drop zone the way a user's drag and drop does (a DataTransfer holding it)."""
    transfer = page.evaluate_handle(
        """([name, mime, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: mime }));
            return transfer;
        }""",
        [path.name, mime, path.read_text()],
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


def test_sign_in_upload_a_good_and_a_bad_file_and_see_their_outcomes(
    pipeline: Pipeline, served: tuple[LocalApi, PageServer], browser: Browser, tmp_path: Path
) -> None:
    _, site = served
    tag = uuid.uuid4().hex[:6]
    username, password = create_demo_user(
        pipeline.clients.environment, pipeline.outputs, f"page-{tag}@example.com"
    )
    good = tmp_path / f"users-good-{tag}.csv"
    good.write_text(
        "UserId,FirstName,LastName,Email,Gender,Age\n"
        f"u-p{tag}1,Ada,Lovelace,ada.{tag}@example.com,female,36\n"
        f"u-p{tag}2,Alan,Turing,alan.{tag}@example.com,male,41\n"
    )
    bad = tmp_path / f"users-bad-{tag}.csv"
    bad.write_text(
        "UserId,FirstName,LastName,Email,Gender,Age\n"
        f"u-p{tag}3,Grace,Hopper,grace.{tag}@example.com,female,85\n"
        f"u-p{tag}4,No,Email,,male,40\n"
        f"u-p{tag}5,Too,Old,old.{tag}@example.com,male,not-a-number\n"
    )
    broken = tmp_path / f"users-broken-{tag}.csv"  # a zip archive named .csv: quarantined whole
    broken.write_bytes((project_dir() / "samples" / "users-broken.csv").read_bytes())
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        sign_in(page, site.url, username, password)
        expect(page.locator("#who-name")).to_contain_text(username)
        drop_file(page, good, "text/csv")
        page.set_input_files("#file-input", [str(bad), str(broken)])

        good_row = page.locator("#files tbody tr", has_text=good.name)
        bad_row = page.locator("#files tbody tr", has_text=bad.name)
        expect(good_row).to_have_attribute("data-status", "loaded", timeout=OUTCOME_TIMEOUT_MS)
        expect(good_row).to_contain_text("2 of 2 records loaded, 0 rejected")
        expect(good_row.locator("progress")).to_have_attribute("value", "100")
        expect(bad_row).to_have_attribute("data-status", "partial", timeout=OUTCOME_TIMEOUT_MS)
        expect(bad_row).to_contain_text("1 of 3 records loaded, 2 rejected")
        reasons = bad_row.locator(".reasons li")
        expect(reasons).to_have_count(2)
        expect(reasons.nth(0)).to_contain_text("line 3")
        expect(reasons.nth(1)).to_contain_text("line 4")
        broken_row = page.locator("#files tbody tr", has_text=broken.name)
        expect(broken_row).to_have_attribute("data-status", "quarantined", timeout=OUTCOME_TIMEOUT_MS)
        expect(broken_row).to_contain_text("unsupported content: this is a zip archive")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "upload-page.png"), full_page=True)
    finally:
        context.close()
    assert errors == []
    # What the page showed is what the pipeline did: the good file's users and the bad file's valid one.
    for user_id in (f"u-p{tag}1", f"u-p{tag}2", f"u-p{tag}3"):
        assert pipeline.user(user_id) is not None
    assert pipeline.user(f"u-p{tag}4") is None


def test_a_wrong_password_is_refused_on_the_page(
    served: tuple[LocalApi, PageServer], browser: Browser, pipeline: Pipeline
) -> None:
    _, site = served
    username, _ = create_demo_user(
        pipeline.clients.environment, pipeline.outputs, f"page-{uuid.uuid4().hex[:6]}@example.com"
    )
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(site.url)
        expect(page.locator("body[data-ready='true']")).to_be_attached()
        page.fill("#username", username)
        page.fill("#password", "Not-the-password-1")
        page.click("#sign-in-button")
        expect(page.locator("#notice")).to_have_text("Wrong email or password.")
        expect(page.locator("#uploader")).to_be_hidden()
    finally:
        context.close()


def test_a_file_the_pipeline_cannot_read_is_refused_before_upload(
    served: tuple[LocalApi, PageServer], browser: Browser, pipeline: Pipeline, tmp_path: Path
) -> None:
    _, site = served
    username, password = create_demo_user(
        pipeline.clients.environment, pipeline.outputs, f"page-{uuid.uuid4().hex[:6]}@example.com"
    )
    picture = tmp_path / "holiday.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, site.url, username, password)
        page.set_input_files("#file-input", str(picture))
        refused = page.locator("#files tbody tr", has_text="holiday.png")
        expect(refused).to_have_attribute("data-status", "error")
        expect(refused).to_contain_text("not a file the pipeline reads")
    finally:
        context.close()
