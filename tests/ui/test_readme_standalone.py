"""The README's path, as a newcomer follows it: the main job, then the README's UI command, from a fresh shell.

Nothing here helps the command: it runs verbatim (read from the README) under ``env -i`` with only ``HOME``,
``PATH=/usr/bin:/bin`` and the documented ``SNOWSTORM_UI_PORT`` (a free port instead of 8080), in a folder laid out
like a clone after ``bash scripts/run_pipeline.sh`` (``.venv``, ``example_dags``, ``.snowstorm``). Then, under that
real ``airflow standalone`` (scheduler, LocalExecutor, triggerer, DAG processor, API server), every example DAG is
triggered by hand through the REST API with ``logical_date: null`` (no logical date, no data interval), and the
Asset-triggered and scheduled runs that follow must succeed too. Mapped tasks must be labelled with their cost
category (``map_index_template``), and the manual training run's task shows its "W&B Run" button in Chromium, which
opens the run's local page (W&B is offline); Browse -> Cost anomalies shows the report, inside the UI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_snowstorm.example_pipeline import MODEL_CONFIGURATIONS
from airflow_provider_snowstorm.local.pipeline import BACKFILL_DAYS, DEMO_RUN_DAY, SETTLE_DAYS
from tests.ui.conftest import _api_token, _free_port, _signal_group
from tests.ui.test_wandb_link_ui import CHROMIUM, CHROMIUM_ARGS, local_run_page

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
DAG_IDS = (
    "snowstorm_data_engineering",
    "snowstorm_feature_engineering",
    "snowstorm_training",
    "snowstorm_prediction",
)
COST_MODELS = {"total_usage", "compute"}
OWN_DAG_ID = "snowstorm_own_dag"  # example_dags/snowstorm_own_dag.py: manual only, run after the pipeline
PIPELINE_TIMEOUT_S = 900.0  # the main job takes about three minutes alone; the suite runs beside it
STARTUP_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 420.0
POLL_S = 2.0


def readme_command(containing: str) -> str:
    """The one command line of the README's bash blocks that contains ``containing``, without its trailing comment."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines() if containing in line]
    assert len(lines) == 1, f"expected one README command with `{containing}`, found {lines}"
    return lines[0].split("  #", 1)[0].strip()


def readme_ui_command() -> str:
    """The README's command that starts the Airflow UI."""
    return readme_command("airflow standalone")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """What a fresh login shell has: no venv on PATH, no Airflow or Snowstorm settings."""
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **extra}


@dataclass
class Standalone:
    workdir: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    client: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """The README's UI command from a clean shell, until the API answers with a healthy scheduler."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", readme_ui_command()],
                cwd=self.workdir,
                env=clean_env(self.workdir, SNOWSTORM_UI_PORT=str(self.port)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def healthy() -> bool:
            try:
                health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
            except httpx.TransportError:
                return False
            return health.status_code == 200 and health.json()["scheduler"]["status"] == "healthy"

        self.wait_for("the API server and a healthy scheduler", STARTUP_TIMEOUT_S, healthy)
        token = self.wait_for("an API token", 30, lambda: _api_token(self.base_url))
        self.client = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def shutdown(self) -> None:
        """Stop it as Ctrl-C would, then make sure nothing of it is left."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is None:
            return
        _signal_group(self.process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def fail(self, message: str) -> None:
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-60:]) if self.log.exists() else ""
        pytest.fail(f"{message}\n----- airflow standalone (last lines) -----\n{tail}", pytrace=False)

    def wait_for(self, what: str, timeout_s: float, probe: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                self.fail(f"`airflow standalone` exited with code {self.process.returncode} before {what}")
            try:
                result = probe()
            except httpx.TimeoutException:
                result = None  # the API server waits on SQLite while the scheduler writes: poll again
            if result:
                return result
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(POLL_S)

    def api(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        assert self.client is not None
        response = self.client.request(method, path, **kwargs)
        if response.status_code != expect:
            self.fail(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def trigger_without_logical_date(self, dag_id: str) -> str:
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
        assert run["logical_date"] is None, run
        return run["dag_run_id"]

    def wait_run(self, dag_id: str, select: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            for run in self.runs(dag_id):
                if select(run) and run["state"] in ("success", "failed"):
                    return run
            return None

        run = self.wait_for(f"{what} of {dag_id}", RUN_TIMEOUT_S, finished)
        if run["state"] != "success":
            self.fail(
                f"{what} of {dag_id} ({run['dag_run_id']}) ended {run['state']}: {self.task_states(run)}"
            )
        return run

    def task_instances(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{run['dag_id']}/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances"
        return self.api("GET", path)["task_instances"]

    def task_states(self, run: dict[str, Any]) -> dict[str, str]:
        return {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in self.task_instances(run)}


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """A clone-like folder after the main job, and the README's UI command running in it from a clean shell."""
    workdir = tmp_path_factory.mktemp("newcomer")
    (workdir / ".venv").symlink_to(REPO / ".venv")
    (workdir / "example_dags").symlink_to(REPO / "example_dags")
    # The main job without bootstrap.sh (the venv is shared and ready): what run_pipeline.sh then executes.
    pipeline = subprocess.run(
        [".venv/bin/python", "-m", "airflow_provider_snowstorm.local.pipeline"],
        cwd=workdir,
        env=clean_env(workdir),
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT_S,
        check=False,
    )
    state = workdir / ".snowstorm"
    try:
        assert pipeline.returncode == 0, pipeline.stdout[-3000:] + pipeline.stderr[-3000:]
        instance = Standalone(workdir=workdir, port=_free_port(), log=workdir / "standalone.out")
        try:
            instance.launch()
            yield instance
        finally:
            instance.shutdown()
    finally:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "airflow_provider_snowstorm.local",
                "snowflake",
                "stop",
                "--home",
                str(state),
            ],
            env={key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")},
            capture_output=True,
            check=False,
        )


def test_readme_ui_command_is_run_from_a_clean_shell() -> None:
    command = readme_ui_command()
    assert command.startswith("source .snowstorm/env.sh && .venv/bin/airflow standalone"), command


def test_cost_anomalies_page_in_the_browse_menu(standalone: Standalone) -> None:
    """The provider plugin's page in the UI: Browse -> Cost anomalies shows the main job's report (an incident, its
    chart), and its training run links (W&B URLs that hold nothing offline) open the runs' local pages. Runs before
    the DAGs below write later reports (whose windows may hold no incident)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install_browser.sh (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="run scripts/install_browser.sh")
    screenshot = standalone.workdir / "cost-anomalies.png"
    print(f"Screenshots of the Cost anomalies page and a training run from it: {screenshot.parent}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            page.goto(standalone.base_url + "/")
            try:
                page.get_by_role("button", name="Browse").click()
                page.get_by_role("menuitem", name="Cost anomalies").click()
                page.wait_for_url("**/plugin/snowstorm-anomalies/**")
                report = page.frame_locator("iframe")
                sync_api.expect(
                    report.get_by_role("heading", name="Cost anomalies", exact=True)
                ).to_be_visible()
                written = (standalone.workdir / ".snowstorm" / "reports" / "anomaly_report.md").read_text()
                headline = written.splitlines()[0].removeprefix("# ")
                assert "1 incident" in headline, headline
                sync_api.expect(report.get_by_role("heading", name=headline)).to_be_visible()
                chart = report.locator("img[alt='Anomalies']")
                sync_api.expect(chart).to_be_visible()
                assert chart.evaluate("img => img.complete && img.naturalWidth > 0"), "the chart did not load"
                training = report.get_by_role("link", name="training run").first
                sync_api.expect(training).to_have_attribute("href", re.compile(r"^\.\./runs/\w+$"))
                page.screenshot(path=screenshot, full_page=True)
                screenshot = standalone.workdir / "cost-anomalies-training-run.png"
                training.click()
                sync_api.expect(report.get_by_role("heading", name="Summary metrics")).to_be_visible()
                sync_api.expect(report.locator("img[alt^='decomposition']")).to_be_visible()
            finally:
                page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()


def test_every_example_dag_runs_by_hand_by_asset_and_by_schedule(standalone: Standalone) -> None:
    airflow = standalone

    def registered() -> bool:
        dags = {dag["dag_id"] for dag in airflow.api("GET", "/api/v2/dags", params={"limit": 100})["dags"]}
        errors = airflow.api("GET", "/api/v2/importErrors")["import_errors"]
        if errors:
            airflow.fail(f"example DAGs failed to import: {json.dumps(errors)[:3000]}")
        return set(DAG_IDS) <= dags

    airflow.wait_for("the DAG processor to register the example DAGs", STARTUP_TIMEOUT_S, registered)
    # The main job ran them with dag.test(); only runs created under the scheduler count here.
    before = {dag_id: {run["dag_run_id"] for run in airflow.runs(dag_id)} for dag_id in DAG_IDS}

    def new(dag_id: str, run_type: str) -> Callable[[dict[str, Any]], bool]:
        return lambda run: run["run_type"] == run_type and run["dag_run_id"] not in before[dag_id]

    for dag_id in DAG_IDS:
        airflow.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    # By hand with no logical date: the data engineering DAG then falls back to the run's run_after.
    manual = airflow.trigger_without_logical_date("snowstorm_data_engineering")
    airflow.wait_run("snowstorm_data_engineering", lambda run: run["dag_run_id"] == manual, "the manual run")
    # By Asset: raw usage -> features -> prediction.
    airflow.wait_run(
        "snowstorm_feature_engineering",
        new("snowstorm_feature_engineering", "asset_triggered"),
        "an Asset-triggered run",
    )
    airflow.wait_run(
        "snowstorm_prediction", new("snowstorm_prediction", "asset_triggered"), "an Asset-triggered run"
    )
    # By schedule: unpausing the nightly DAG schedules its latest interval.
    airflow.wait_run(
        "snowstorm_data_engineering", new("snowstorm_data_engineering", "scheduled"), "a scheduled run"
    )

    for dag_id in ("snowstorm_feature_engineering", "snowstorm_training", "snowstorm_prediction"):
        run_id = airflow.trigger_without_logical_date(dag_id)
        run = airflow.wait_run(
            dag_id, lambda run, run_id=run_id: run["dag_run_id"] == run_id, "the manual run"
        )
        assert run["logical_date"] is None
        if dag_id in ("snowstorm_training", "snowstorm_prediction"):
            task_id = "train" if dag_id == "snowstorm_training" else "score"
            labels = {
                ti["rendered_map_index"] for ti in airflow.task_instances(run) if ti["task_id"] == task_id
            }
            expected = COST_MODELS
            if dag_id == "snowstorm_training":  # category x configuration
                expected = {f"{category} {name}" for category in COST_MODELS for name in MODEL_CONFIGURATIONS}
            assert labels == expected, f"{dag_id}.{task_id} map indexes are labelled {labels}"
        if dag_id == "snowstorm_training":
            check_wandb_button_in_chromium(airflow, run)

    # The README's DAG of your own, by hand with its defaults (the pipeline's features table on snowflake_default).
    airflow.api("PATCH", f"/api/v2/dags/{OWN_DAG_ID}", json={"is_paused": False})
    own = airflow.trigger_without_logical_date(OWN_DAG_ID)
    run = airflow.wait_run(OWN_DAG_ID, lambda run: run["dag_run_id"] == own, "the manual run")
    labels = {ti["rendered_map_index"] for ti in airflow.task_instances(run) if ti["task_id"] == "score"}
    assert labels == COST_MODELS, f"{OWN_DAG_ID}.score map indexes are labelled {labels}"


def test_readme_backfill_command_runs_its_runs_under_the_scheduler(standalone: Standalone) -> None:
    """Verbatim from a fresh shell with the UI stopped, as the README says (beside the scheduler SQLite may be
    "locked"): one backfill of the main job's days, whose runs the restarted UI's scheduler runs (a paused DAG's
    backfill runs stay queued: the command must unpause it)."""
    airflow = standalone

    def backfills() -> list[dict[str, Any]]:
        return airflow.api("GET", "/api/v2/backfills", params={"dag_id": "snowstorm_prediction"})["backfills"]

    before = {row["id"] for row in backfills()}
    # As a newcomer finds it: the example DAGs start paused (the test above unpaused this one).
    airflow.api("PATCH", "/api/v2/dags/snowstorm_prediction", json={"is_paused": True})
    airflow.shutdown()
    started = datetime.now(UTC)
    done = subprocess.run(
        ["bash", "-c", readme_command("airflow backfill create")],
        cwd=airflow.workdir,
        env=clean_env(airflow.workdir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    airflow.launch()

    created = [row for row in backfills() if row["id"] not in before]
    assert len(created) == 1, created
    # The main job's days: the settled ones before its run day.
    last = DEMO_RUN_DAY - timedelta(days=SETTLE_DAYS)
    first = last - timedelta(days=BACKFILL_DAYS - 1)
    span = (created[0]["from_date"][:10], created[0]["to_date"][:10])
    assert span == (first.isoformat(), last.isoformat()), created

    def started_now(run: dict[str, Any]) -> bool:
        return (
            run["run_type"] == "backfill"
            and bool(run["start_date"])
            and (datetime.fromisoformat(run["start_date"].replace("Z", "+00:00")) > started)
        )

    # The main job backfilled the same days in process: the runs are reprocessed, and run again now.
    airflow.wait_run("snowstorm_prediction", started_now, "a backfill run of the README's command")


def check_wandb_button_in_chromium(airflow: Standalone, run: dict[str, Any]) -> None:
    """The issue's finish line: from the README's path, the W&B Run button on a training task, in Chromium."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install_browser.sh (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="run scripts/install_browser.sh")
    path = f"/dags/{run['dag_id']}/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances/train"
    summary = airflow.api(
        "GET", f"/api/v2{path}/xcomEntries/return_value", params={"map_index": 0, "deserialize": True}
    )["value"]
    details = f"/dags/{run['dag_id']}/runs/{quote(run['dag_run_id'], safe='')}/tasks/train/mapped/0/details"
    screenshot = airflow.workdir / "train-details.png"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            page.goto(airflow.base_url + details)
            try:
                heading = page.get_by_role("heading", name="Extra Links")
                sync_api.expect(heading).to_be_visible()
                link = heading.locator("xpath=..").get_by_role("link", name="W&B Run", exact=True)
                # Offline (the README's set-up): the provider plugin's local page of the run, then the page itself.
                sync_api.expect(link).to_have_attribute("href", local_run_page(summary["run_url"]))
                link.click()
                page.wait_for_url(f"**{local_run_page(summary['run_url'])}")
                sync_api.expect(page.get_by_role("heading", name="Summary metrics")).to_be_visible()
                sync_api.expect(page.locator("img[alt^='decomposition']")).to_be_visible()
            finally:
                page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()
