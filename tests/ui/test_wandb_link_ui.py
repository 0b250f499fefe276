"""The "W&B Run" extra link as users meet it: the REST API and the Airflow UI of a real Airflow, after a real run.

Each map index of the training task wrote its own W&B run, so each must link to its own run. W&B is offline here, so
the link opens the provider plugin's local page of that run (``/snowstorm/runs/<id>``, on the API server, behind
Airflow's authentication); the task's summary keeps the W&B URL the run gets after ``wandb sync``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.ui.conftest import MAPPED_SERIES, WANDB_ENTITY, WANDB_PROJECT, AirflowInstance, DagRunRef

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.ui

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
UI_TIMEOUT_MS = 30_000
MAP_INDEXES = list(range(len(MAPPED_SERIES)))
LINK_NAME = "W&B Run"  # what users see; a rename must show up here


@pytest.fixture(scope="module")
def returned_run_urls(airflow_instance: AirflowInstance, training_run: DagRunRef) -> dict[int, str]:
    """The ``run_url`` of each map index's summary (its ``return_value`` XCom), as the API serves it."""
    urls = {}
    for map_index in MAP_INDEXES:
        entry = airflow_instance.request(
            "GET",
            f"{training_run.task_path()}/xcomEntries/return_value",
            params={"map_index": map_index, "deserialize": True},
        )
        summary = entry["value"]
        assert isinstance(summary, dict), f"map index {map_index} returned {summary!r}, not a summary dict"
        assert summary["series"] == MAPPED_SERIES[map_index]
        urls[map_index] = summary["run_url"]
    return urls


def extra_links(airflow: AirflowInstance, run: DagRunRef, map_index: int) -> dict[str, Any]:
    response = airflow.request("GET", f"{run.task_path()}/links", params={"map_index": map_index})
    return response["extra_links"]


def local_run_page(run_url: str) -> str:
    """The plugin's page of the offline run whose W&B URL (after ``wandb sync``) is ``run_url``."""
    return f"/snowstorm/runs/{run_url.rstrip('/').rsplit('/', 1)[-1]}"


@pytest.mark.parametrize("map_index", MAP_INDEXES)
def test_links_endpoint_serves_the_local_page_of_the_run_the_task_returned(
    airflow_instance: AirflowInstance,
    training_run: DagRunRef,
    returned_run_urls: dict[int, str],
    map_index: int,
) -> None:
    url = returned_run_urls[map_index]
    assert f"/{WANDB_ENTITY}/{WANDB_PROJECT}/runs/" in url
    assert url.startswith(("http://", "https://"))
    assert extra_links(airflow_instance, training_run, map_index) == {LINK_NAME: local_run_page(url)}


def test_local_run_page_needs_airflow_authentication(
    airflow_instance: AirflowInstance, returned_run_urls: dict[int, str]
) -> None:
    import httpx

    path = local_run_page(returned_run_urls[0])
    forged = httpx.get(
        airflow_instance.base_url + path, headers={"Authorization": "Bearer forged"}, timeout=30
    )
    assert forged.status_code in (401, 403), forged.text[:300]
    # This instance makes every visitor an admin (SIMPLE_AUTH_MANAGER_ALL_ADMINS, like the README's set-up): an
    # anonymous request gets exactly what Airflow's own REST API gives it (refusal without all-admins is tested in
    # tests/plugins with a real token).
    anonymous = httpx.get(airflow_instance.base_url + path, timeout=30)
    core_api = httpx.get(airflow_instance.base_url + "/api/v2/dags", timeout=30)
    assert (anonymous.status_code == 200) == (core_api.status_code == 200), (anonymous, core_api)
    page = airflow_instance.client.get(path)  # the bearer token from /auth/token
    assert page.status_code == 200, page.text[:300]
    assert f"train-{MAPPED_SERIES[0]}" in page.text
    assert "Summary metrics" in page.text
    assert "anomaly_threshold" in page.text
    assert "decomposition" in page.text


def test_each_map_index_links_to_its_own_run(
    airflow_instance: AirflowInstance, training_run: DagRunRef
) -> None:
    urls = [extra_links(airflow_instance, training_run, index).get(LINK_NAME) for index in MAP_INDEXES]
    assert all(urls), f"a map index has no W&B link: {urls}"
    assert len(set(urls)) == len(urls), f"map indexes share a W&B run link: {urls}"


# ------------------------------------------------------------------------------------------------ the real UI


@pytest.fixture(scope="session")  # session, like Airflow's fixtures, so that it is set up (or skips) first
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium driven by Playwright (no downloaded browsers); see scripts/install_browser.sh."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install_browser.sh (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: run scripts/install_browser.sh"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("map_index", MAP_INDEXES)
def test_task_details_page_shows_the_run_link(
    page: Page,  # first: without a browser the test skips before Airflow starts
    airflow_instance: AirflowInstance,
    training_run: DagRunRef,
    returned_run_urls: dict[int, str],
    tmp_path: Path,
    map_index: int,
) -> None:
    from playwright.sync_api import expect

    screenshot = tmp_path / f"task-details-map-{map_index}.png"
    print(f"Screenshot of the task details page: {screenshot}")  # shown when the test fails
    page.goto(airflow_instance.base_url + training_run.ui_details_path(map_index))
    try:
        heading = page.get_by_role("heading", name="Extra Links")
        expect(heading).to_be_visible()
        # The heading and its buttons share one box: the link must be under "Extra Links", not anywhere.
        link = heading.locator("xpath=..").get_by_role("link", name=LINK_NAME, exact=True)
        expect(link).to_be_visible()
        expect(link).to_have_attribute("href", local_run_page(returned_run_urls[map_index]))
    finally:
        page.screenshot(path=screenshot, full_page=True)


def test_clicking_the_run_link_opens_the_local_run_page(
    page: Page,
    airflow_instance: AirflowInstance,
    training_run: DagRunRef,
    returned_run_urls: dict[int, str],
    tmp_path: Path,
) -> None:
    """Offline, the button leads somewhere: the run's page with its metrics and charts, in the UI's session."""
    from playwright.sync_api import expect

    map_index = 1
    screenshot = tmp_path / "local-run-page.png"
    print(f"Screenshot of the local run page: {screenshot}")
    page.goto(airflow_instance.base_url + training_run.ui_details_path(map_index))
    heading = page.get_by_role("heading", name="Extra Links")
    link = heading.locator("xpath=..").get_by_role("link", name=LINK_NAME, exact=True)
    expect(link).to_be_visible()
    opened = page
    if link.get_attribute("target") == "_blank":
        with page.context.expect_page() as new_page:
            link.click()
        opened = new_page.value
    else:
        link.click()
    try:
        opened.wait_for_url(f"**{local_run_page(returned_run_urls[map_index])}")
        expect(opened.get_by_role("heading", name=f"train-{MAPPED_SERIES[map_index]}")).to_be_visible()
        expect(opened.get_by_role("heading", name="Summary metrics")).to_be_visible()
        chart = opened.locator("img[alt^='decomposition']")
        expect(chart).to_be_visible()
        assert chart.evaluate("img => img.complete && img.naturalWidth > 0"), (
            "the decomposition chart did not load"
        )
    finally:
        opened.screenshot(path=screenshot, full_page=True)
