"""A real Airflow (api-server, scheduler, dag-processor on SQLite) with one finished training DAG run.

The UI tests check what users meet, so nothing is faked: the components run as separate processes from the venv with
their own ``AIRFLOW_HOME``, the training operator runs on LocalExecutor workers, W&B is offline (the run URL is
derived locally) and the extra link is read back through the REST API and the React UI. No triggerer: nothing in the
test DAG defers, and on two cores every extra component slows the start.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
import pytest

DAG_ID = "snowstorm_ui_wandb_link"
TASK_ID = "train"
MAPPED_SERIES = ("compute", "total_usage")
WANDB_ENTITY = "snowstorm-ui-test"
WANDB_PROJECT = "snowstorm"

STARTUP_TIMEOUT_S = 120.0
DAG_PARSE_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0
POLL_INTERVAL_S = 1.0
LOG_TAIL_LINES = 25
# The React UI fetches a page's data after the page loads; on a busy 2-core machine that outlasts Playwright's 5 s.
EXPECT_TIMEOUT_MS = 30_000


@pytest.fixture(autouse=True, scope="session")
def patient_ui_expectations() -> None:
    """Every ``expect(...)`` of the UI tests waits up to ``EXPECT_TIMEOUT_MS`` (when Playwright is installed)."""
    try:
        from playwright.sync_api import expect
    except ImportError:  # the UI tests that need it skip themselves
        return
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


COMPONENTS = ("api-server", "scheduler", "dag-processor")

# ~120 days of weekly seasonal costs from a fixed formula, inline in the DAG file: no Snowflake, no randomness.
DAG_SOURCE = f'''
"""UI test DAG: train one model per cost series (mapped) so each map index gets its own "W&B Run" link."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator

FIRST_DAY = date(2025, 1, 6)
DAYS = 120


def cost(day: int, level: float) -> float:
    weekday = (FIRST_DAY + timedelta(days=day)).weekday()
    seasonal = 1.0 if weekday < 5 else 0.6
    wobble = 1.0 + 0.03 * math.sin(day * 2.4)
    return round(level * (1.0 + 0.002 * day) * seasonal * wobble, 2)


FEATURES = [
    {{
        "usage_date": (FIRST_DAY + timedelta(days=day)).isoformat(),
        "compute": cost(day, 100.0),
        "total_usage": round(cost(day, 100.0) + 25.0 + 0.05 * day, 2),
    }}
    for day in range(DAYS)
]

with DAG(dag_id="{DAG_ID}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["snowstorm"]):
    DecomposeIsolationForestOperator.partial(
        task_id="{TASK_ID}", features=FEATURES, detector_params={{"random_state": 0}}
    ).expand(series={list(MAPPED_SERIES)!r})
'''


@dataclass(frozen=True)
class DagRunRef:
    dag_id: str
    run_id: str

    def task_path(self, task_id: str = TASK_ID) -> str:
        """REST path of a task, with the run id escaped (manual run ids contain ``:`` and ``+``)."""
        return f"/api/v2/dags/{self.dag_id}/dagRuns/{quote(self.run_id, safe='')}/taskInstances/{task_id}"

    def ui_details_path(self, map_index: int, task_id: str = TASK_ID) -> str:
        return f"/dags/{self.dag_id}/runs/{quote(self.run_id, safe='')}/tasks/{task_id}/mapped/{map_index}/details"


@dataclass
class AirflowInstance:
    """Handles on the running components; every failure message carries the tail of their logs."""

    home: Path
    base_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client: httpx.Client | None = None

    def log_file(self, component: str) -> Path:
        return self.home / f"{component}.out"

    def logs_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of each component's output and of every task log, for failure messages."""
        files = [self.log_file(name) for name in ("db-migrate", *COMPONENTS)]
        files += sorted((self.home / "logs").glob(f"dag_id={DAG_ID}/**/*.log"))
        parts = []
        for path in files:
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(
                    f"----- {path.relative_to(self.home)} (last {len(tail)} lines) -----\n" + "\n".join(tail)
                )
        return "\n".join(parts) or "(no Airflow logs written yet)"

    def fail(self, message: str) -> NoReturn:
        pytest.fail(f"{message}\nAirflow home: {self.home}\n{self.logs_tail()}", pytrace=False)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                self.fail(f"Airflow {name} exited early with code {process.returncode}")

    def request(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        """Call the REST API; a status other than ``expect`` fails the test with the response and the logs."""
        assert self.client is not None, "no API token yet"
        response = self.client.request(method, path, **kwargs)
        if response.status_code != expect:
            self.fail(
                f"{method} {path} answered {response.status_code} (expected {expect}): {response.text[:500]}"
            )
        return response.json()

    def wait_for(self, what: str, timeout_s: float, probe: Callable[[], Any]) -> Any:
        """Poll ``probe`` until it returns something truthy; fail after ``timeout_s`` naming ``what``."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            result = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                self.fail(f"Timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        """SIGTERM each component's process group (workers included), then SIGKILL what is left."""
        if self.client is not None:
            self.client.close()
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Killing the group also reaps task runners that outlive a cleanly exited component.
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    """Signal everything ``process`` started: its process group, and every process of its session (started with
    ``start_new_session``, both ids are its pid). Airflow's task runners move to process groups of their own but stay
    in the session: killed with the group alone, three of them outlived a CI run's standalone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
    for pid in _session_members(process.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _session_members(session: int) -> list[int]:
    """The processes of a session, from ``/proc`` (none where there is no ``/proc``)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # After the command name in parentheses: state, parent, process group, session.
            if int(stat[stat.rindex(")") + 2 :].split()[3]) == session:
                members.append(int(entry.name))
    return members


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _component_env(home: Path, port: int) -> dict[str, str]:
    """The parent's environment without its Airflow/W&B settings (tests/conftest.py sets unit-test ones)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "WANDB_"))}
    wandb_extra = {
        "mode": "offline",
        "entity": WANDB_ENTITY,
        "project": WANDB_PROJECT,
        "model_store": str(home / "store"),
        "run_dir": str(home / "wandb"),
    }
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            # Every component must sign and check task/API tokens with the same secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # Parse the DAG once: a re-parse every 30 s competes with the training tasks for the two cores.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW_CONN_WANDB_DEFAULT": json.dumps({"conn_type": "wandb", "extra": wandb_extra}),
            "WANDB_SILENT": "true",
            "MPLBACKEND": "Agg",
            "NO_COLOR": "1",
        }
    )
    return env


def _start(instance: AirflowInstance, name: str, *args: str) -> subprocess.Popen[bytes]:
    with instance.log_file(name).open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            cwd=instance.home,
            env=instance.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _api_token(base_url: str) -> str | None:
    """With all-admins, the simple auth manager hands out a token on ``GET /auth/token`` (201)."""
    try:
        response = httpx.get(f"{base_url}/auth/token", timeout=5)
    except httpx.TransportError:
        return None
    return response.json()["access_token"] if response.status_code in (200, 201) else None


@pytest.fixture(scope="session")
def airflow_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowInstance]:
    """Airflow 3 on SQLite and a free port, the UI test DAG in its dags folder; stopped at the end of the session."""
    home = tmp_path_factory.mktemp("ui-airflow")
    (home / "dags").mkdir()
    (home / "dags" / f"{DAG_ID}.py").write_text(DAG_SOURCE)
    port = _free_port()
    instance = AirflowInstance(home=home, base_url=f"http://127.0.0.1:{port}", env=_component_env(home, port))
    try:
        migrate = _start(instance, "db-migrate", "db", "migrate")
        try:
            code = migrate.wait(timeout=STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(migrate, signal.SIGKILL)
            instance.fail(f"`airflow db migrate` did not finish within {STARTUP_TIMEOUT_S:.0f} s")
        if code != 0:
            instance.fail(f"`airflow db migrate` failed with exit code {code}")
        for name in COMPONENTS:
            instance.processes[name] = _start(instance, name, name)

        def healthy() -> bool:
            try:
                return httpx.get(f"{instance.base_url}/api/v2/monitor/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        instance.wait_for("the API server to answer /api/v2/monitor/health", STARTUP_TIMEOUT_S, healthy)
        token = instance.wait_for("a token from GET /auth/token", 30, lambda: _api_token(instance.base_url))
        instance.client = httpx.Client(
            base_url=instance.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def training_run(airflow_instance: AirflowInstance) -> DagRunRef:
    """A successful run of the UI test DAG, triggered through the REST API like a user would."""
    airflow = airflow_instance

    def dag_parsed() -> bool:
        response = airflow.client.get(f"/api/v2/dags/{DAG_ID}")
        if response.status_code == 200:
            return True
        errors = airflow.client.get("/api/v2/importErrors").json().get("import_errors", [])
        if errors:
            airflow.fail(f"The UI test DAG failed to import: {json.dumps(errors, indent=1)[:3000]}")
        return False

    airflow.wait_for(f"the dag-processor to register DAG {DAG_ID!r}", DAG_PARSE_TIMEOUT_S, dag_parsed)
    airflow.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    run = airflow.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
    ref = DagRunRef(dag_id=DAG_ID, run_id=run["dag_run_id"])

    def finished() -> str | None:
        state = airflow.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(ref.run_id, safe='')}")["state"]
        return state if state in ("success", "failed") else None

    state = airflow.wait_for(f"DAG run {ref.run_id!r} to finish", RUN_TIMEOUT_S, finished)
    if state != "success":
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(ref.run_id, safe='')}/taskInstances"
        tasks = airflow.request("GET", path)["task_instances"]
        states = {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in tasks}
        airflow.fail(f"DAG run {ref.run_id!r} ended {state!r}; task instance states: {states}")
    return ref
