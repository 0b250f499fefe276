"""The "W&B Run" extra link as users meet it: the REST API and the Airflow UI of a real Airflow, after a real run.

Each map index of the training task wrote its own W&B run, so each must link to its own run URL: the one the task
returned in its summary.
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


@pytest.mark.parametrize("map_index", MAP_INDEXES)
def test_links_endpoint_serves_the_run_url_the_task_returned(
    airflow_instance: AirflowInstance,
    training_run: DagRunRef,
    returned_run_urls: dict[int, str],
    map_index: int,
) -> None:
    url = returned_run_urls[map_index]
    assert f"/{WANDB_ENTITY}/{WANDB_PROJECT}/runs/" in url
    assert url.startswith(("http://", "https://"))
    assert extra_links(airflow_instance, training_run, map_index) == {LINK_NAME: url}


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
        expect(link).to_have_attribute("href", returned_run_urls[map_index])
    finally:
        page.screenshot(path=screenshot, full_page=True)
