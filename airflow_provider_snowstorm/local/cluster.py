"""A real multi-worker Airflow on one machine: CeleryExecutor, Postgres, Redis, two workers on different queues.

``python -m airflow_provider_snowstorm.local.cluster`` (what ``bash scripts/cluster.sh`` calls):

1. starts a throwaway PostgreSQL (Airflow's metadata database, ``scripts/postgres.sh``), Redis (the Celery broker,
   ``scripts/redis.sh``) and the local Snowflake emulation, seeded as the local pipeline seeds it;
2. starts Airflow's api-server, scheduler and dag-processor, and two Celery workers: ``worker-default`` consumes the
   ``default`` queue, ``worker-ml`` the ``ml`` queue (training, promotion) and ``default``, so scoring runs on both;
3. runs the example pipeline through the REST API, each DAG triggered when the one before succeeded: data
   engineering, feature engineering, training, promotion of each category's default model, prediction (schedules
   are off: the demo's fixed dates decide, and no Asset event starts prediction before promotion);
4. with ``--kill-worker``, SIGKILLs the worker that runs a scoring task while it scores: the scheduler sees the
   task's heartbeat stop, and its retry runs on the other worker;
5. prints which task ran on which worker (task instances' queue and hostname, from the REST API), checks the
   predictions table holds exactly one row per day and series, and stops everything it started, on success,
   failure or Ctrl-C.

Every component writes to its own log file under ``<home>/logs``; the terminal gets the runner's summary only.
Airflow reads its configuration when first imported: run this module as a fresh process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

WORKER_NAME_VARIABLE = "SNOWSTORM_WORKER_NAME"
DEFAULT_QUEUE = "default"
TRAINING_QUEUE = "ml"  # the example pipeline's default SNOWSTORM_TRAINING_QUEUE
# Task slots per worker; two workers on two cores.
WORKER_CONCURRENCY = 2
# A lost task (its worker gone) is failed after this many seconds without a heartbeat, then retried after the
# retry delay: about half a minute in all instead of Airflow's five minutes plus one.
HEARTBEAT_TIMEOUT_S = 20
HEARTBEAT_CHECK_S = 5
RETRY_DELAY_S = 5
STARTUP_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.5
PIPELINE_DAGS = (
    "snowstorm_data_engineering",
    "snowstorm_feature_engineering",
    "snowstorm_training",
    "snowstorm_promotion",
    "snowstorm_prediction",
)
SCORE_TASK = "score"
# What the scoring operator logs once its model is loaded (BatchScoreOperator: "Scoring 'compute' with model ...").
SCORING_LOG_LINE = b"Scoring '"
# By its import path: run with ``python -m``, this module's ``__name__`` is ``__main__``.
HOSTNAME_CALLABLE = "airflow_provider_snowstorm.local.cluster.worker_hostname"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the workers: each worker's own name, so task instances record which one ran
    them (both run on this machine, where the host name alone would not tell them apart)."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()


class ClusterError(RuntimeError):
    """A component did not start, a DAG run failed, or a check of the run did not hold."""


@dataclass(frozen=True)
class Worker:
    name: str
    queues: tuple[str, ...]

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"


WORKERS = (
    Worker("worker-default", (DEFAULT_QUEUE,)),
    Worker("worker-ml", (TRAINING_QUEUE, DEFAULT_QUEUE)),
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scripts_dir() -> Path:
    """The repository's ``scripts`` folder (Postgres and Redis are started by its shell scripts)."""
    folder = Path(__file__).resolve().parents[2] / "scripts"
    if not (folder / "postgres.sh").is_file() or not (folder / "redis.sh").is_file():
        raise ClusterError(
            f"scripts/postgres.sh and scripts/redis.sh not found in {folder}: run from a checkout"
        )
    return folder


@dataclass
class Cluster:
    """Everything started, in order, so that ``stop`` undoes exactly that."""

    home: Path
    workers: tuple[Worker, ...] = WORKERS
    """The Celery workers started, each with ``concurrency`` task slots."""
    concurrency: int = WORKER_CONCURRENCY
    dag_ids: tuple[str, ...] = PIPELINE_DAGS
    """The DAGs ``connect`` waits for (parsed from the DAG folder)."""
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    postgres_dir: str | None = None
    redis_dir: str | None = None
    emulator_started: bool = False
    base_url: str = ""
    client: Any = None

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def service(self, script: str, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
            ["/bin/bash", str(scripts_dir() / script), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"{script} {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        """Start ``airflow <args>`` in its own process group, its output in ``logs/<name>.log``."""
        with self.log_file(name).open("wb") as out:
            self.processes[name] = subprocess.Popen(  # noqa: S603 - airflow from this venv
                [sys.executable, "-m", "airflow", *args],
                cwd=self.home,
                # Components log at INFO to their own files (the runner's process stays at WARNING).
                env={**self.env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO", **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self, *, except_for: Sequence[str] = ()) -> None:
        for name, process in self.processes.items():
            if name not in except_for and process.poll() is not None:
                raise ClusterError(f"{name} exited with code {process.returncode}: see {self.log_file(name)}")

    def kill(self, name: str) -> None:
        """SIGKILL a component's whole process group (a worker: its Celery children and their task processes)."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """Stop what was started, newest first: components (SIGTERM, then SIGKILL), emulator, Redis, Postgres."""
        if self.client is not None:
            self.client.close()
        for process in reversed(self.processes.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group too: task processes that outlive a component that exited cleanly.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        from airflow_provider_snowstorm.local.snowflake import stop_emulator

        # Each service is stopped even if stopping another failed; a failure is reported, not raised over the run's.
        steps: list[tuple[bool, Callable[[], Any]]] = [
            (self.emulator_started, lambda: stop_emulator(self.home)),
            (bool(self.redis_dir), lambda: self.service("redis.sh", "stop", str(self.redis_dir))),
            (bool(self.postgres_dir), lambda: self.service("postgres.sh", "stop", str(self.postgres_dir))),
        ]
        for started, stop in steps:
            if not started:
                continue
            try:
                stop()
            except Exception as error:  # report it and go on stopping the rest
                print(f"error: stopping: {error}", file=sys.stderr)

    # --- REST API ---------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ClusterError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json()

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float, **alive: Any) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive(**alive)
            result = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}: logs in {self.logs}")
            time.sleep(POLL_S)


def cluster_settings(
    postgres_port: int, redis_port: int, api_port: int, concurrency: int = WORKER_CONCURRENCY
) -> dict[str, str]:
    """Airflow on CeleryExecutor with Postgres and Redis; every component reads these (and nothing else)."""
    database = f"postgresql+psycopg2://postgres@127.0.0.1:{postgres_port}/postgres"
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:{postgres_port}/postgres",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        # Redis hands an unacknowledged task to another worker after this; the scheduler's heartbeat check and the
        # task's retry handle a lost worker long before (Airflow's default, set to say so).
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        # Every component signs and checks task and API tokens with the same secrets.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        # Runs come from the REST API only, in the pipeline's order: the demo's fixed dates decide, not today's
        # cron interval, and no Asset event starts prediction before promotion has set the production models.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": str(HEARTBEAT_CHECK_S),
        "SNOWSTORM_RETRY_DELAY_SECONDS": str(RETRY_DELAY_S),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # Parse each DAG file once: re-parsing competes with the tasks for the two cores.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "NO_COLOR": "1",
    }


def component_environment(
    setup: Any, emulator: Mapping[str, str], settings: Mapping[str, str]
) -> dict[str, str]:
    """This process's environment without Airflow, W&B or Snowstorm settings (the queues must be the workers'),
    plus the local pipeline's and the cluster's."""
    from airflow_provider_snowstorm.local.pipeline import QUIET_WARNING, airflow_settings, venv_bin

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WANDB_", "SNOWSTORM_"))}
    env.update(airflow_settings(setup))
    env.update(emulator)
    env.update(settings)
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["SNOWSTORM_SLACK_CONN_ID"] = ""  # no Slack here: the report goes to its file
    env["PYTHONWARNINGS"] = QUIET_WARNING  # Airflow's in-process API client, on every start: not ours to fix
    return env


def fresh_home(home: Path) -> None:
    """Start from nothing (Airflow home, model store, W&B runs, reports, emulator data); keep the certificates."""
    from airflow_provider_snowstorm.local.snowflake import stop_emulator

    stop_emulator(home)  # one left by an interrupted run would serve the data deleted below
    for name in ("airflow", "model-store", "wandb", "reports", "logs"):
        shutil.rmtree(home / name, ignore_errors=True)
    shutil.rmtree(home / "snowflake" / "data", ignore_errors=True)
    (home / "logs").mkdir(parents=True)


def start_cluster(cluster: Cluster, setup: Any) -> None:
    """Postgres, Redis, the emulator, ``airflow db migrate``, then the Airflow components and the cluster's workers
    (``cluster.workers``, ``cluster.concurrency`` slots each)."""
    from airflow_provider_snowstorm.local.snowflake import airflow_environment, start_emulator

    ports = {"postgres": _free_port(), "redis": _free_port(), "api": _free_port()}
    cluster.env = {**os.environ}
    cluster.postgres_dir = cluster.service("postgres.sh", "start", str(ports["postgres"]))
    cluster.redis_dir = cluster.service("redis.sh", "start", str(ports["redis"]))
    cluster.emulator_started = True
    handle = start_emulator(cluster.home, timeout=90.0)
    settings = cluster_settings(ports["postgres"], ports["redis"], ports["api"], cluster.concurrency)
    cluster.env = component_environment(setup, airflow_environment(handle), settings)
    print(
        f"  PostgreSQL :{ports['postgres']} (metadata), Redis :{ports['redis']} (broker), "
        f"Snowflake emulation {handle.url}",
        flush=True,
    )
    cluster.start("db-migrate", "db", "migrate")
    if cluster.processes.pop("db-migrate").wait() != 0:
        raise ClusterError(f"airflow db migrate failed: see {cluster.log_file('db-migrate')}")
    for component in ("api-server", "scheduler", "dag-processor"):
        cluster.start(component, component)
    for worker in cluster.workers:
        cluster.start(
            worker.name,
            "celery",
            "worker",
            "--queues",
            ",".join(worker.queues),
            "--celery-hostname",
            worker.hostname,
            "--concurrency",
            str(cluster.concurrency),
            "--skip-serve-logs",
            env={
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
                WORKER_NAME_VARIABLE: worker.hostname,
            },
        )
    cluster.base_url = f"http://127.0.0.1:{ports['api']}"


def connect(cluster: Cluster) -> None:
    """Wait for the API server, take a token (all admins: no login), for the cluster's DAGs to be parsed and for its
    workers to be ready."""
    import httpx

    def token() -> str | None:
        try:
            response = httpx.get(f"{cluster.base_url}/auth/token", timeout=5)
        except httpx.TransportError:
            return None
        return response.json()["access_token"] if response.status_code in (200, 201) else None

    access = cluster.wait_for("the API server", token, STARTUP_TIMEOUT_S)
    cluster.client = httpx.Client(
        base_url=cluster.base_url, headers={"Authorization": f"Bearer {access}"}, timeout=30
    )

    def parsed() -> bool:
        dags = cluster.request("GET", "/api/v2/dags", params={"dag_id_pattern": "snowstorm", "limit": 100})
        return set(cluster.dag_ids) <= {dag["dag_id"] for dag in dags["dags"]}

    cluster.wait_for(f"the DAGs {', '.join(cluster.dag_ids)} to be parsed", parsed, STARTUP_TIMEOUT_S)

    def workers_ready() -> bool:
        # Each Celery worker logs "ready." once it consumes its queues.
        return all(b"ready." in cluster.log_file(worker.name).read_bytes() for worker in cluster.workers)

    cluster.wait_for("the Celery workers", workers_ready, STARTUP_TIMEOUT_S)


def set_paused(cluster: Cluster, dag_id: str, paused: bool) -> None:
    cluster.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})


def run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"


def trigger(cluster: Cluster, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
    """Trigger a run through the REST API (no logical date: the run is for now, as a manual trigger)."""
    body = {"logical_date": None, "conf": dict(conf or {})}
    return cluster.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]


def wait_run(
    cluster: Cluster, dag_id: str, run_id: str, *, timeout: float = RUN_TIMEOUT_S, **alive: Any
) -> float:
    """Wait until the run finishes; raise unless it succeeded. Returns its wall time in seconds."""
    started = time.perf_counter()

    def finished() -> str | None:
        state = cluster.request("GET", run_path(dag_id, run_id))["state"]
        return state if state in ("success", "failed") else None

    state = cluster.wait_for(f"{dag_id} run {run_id}", finished, timeout, **alive)
    seconds = time.perf_counter() - started
    if state != "success":
        raise ClusterError(f"{dag_id} run {run_id} {state}:\n{failed_tasks(cluster, dag_id, run_id)}")
    return seconds


def task_log(cluster: Cluster, dag_id: str, run_id: str, ti: Mapping[str, Any]) -> Path:
    """Where a try's log is (the default ``[logging] log_filename_template``)."""
    folder = (
        cluster.home
        / "airflow"
        / "logs"
        / f"dag_id={dag_id}"
        / f"run_id={run_id}"
        / f"task_id={ti['task_id']}"
    )
    if ti["map_index"] >= 0:
        folder /= f"map_index={ti['map_index']}"
    return folder / f"attempt={ti['try_number']}.log"


def failed_tasks(cluster: Cluster, dag_id: str, run_id: str, lines: int = 15) -> str:
    """The failed tries of a run, each with where it ran and the end of its log."""
    parts = []
    for ti in task_instances(cluster, dag_id, run_id):
        if ti["state"] not in ("failed", "upstream_failed", "up_for_retry"):
            continue
        log = task_log(cluster, dag_id, run_id, ti)
        tail = log.read_text(errors="replace").splitlines()[-lines:] if log.is_file() else ["(no log)"]
        parts.append(
            f"- {ti['task_id']}[{ti['map_index']}] try {ti['try_number']} {ti['state']} on {ti['hostname']}: {log}\n"
            + "\n".join(f"    {line[:300]}" for line in tail)
        )
    return "\n".join(parts) or f"(no failed task instances; scheduler log: {cluster.log_file('scheduler')})"


def xcom(cluster: Cluster, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
    path = f"{run_path(dag_id, run_id)}/taskInstances/{task_id}/xcomEntries/{key}"
    return cluster.request("GET", path, params={"deserialize": "true"})["value"]


def task_instances(cluster: Cluster, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every try of every task instance of a run (the retried ones too), oldest first."""
    instances = cluster.request("GET", f"{run_path(dag_id, run_id)}/taskInstances", params={"limit": 1000})
    tries: list[dict[str, Any]] = []
    for ti in instances["task_instances"]:
        if ti["try_number"] > 1:
            path = f"{run_path(dag_id, run_id)}/taskInstances/{ti['task_id']}/{ti['map_index']}/tries"
            # A try's record lacks the map label the task rendered: take the task instance's.
            for attempt in cluster.request("GET", path)["task_instances"]:
                tries.append({**attempt, "rendered_map_index": ti["rendered_map_index"]})
        else:
            tries.append(ti)
    return sorted(tries, key=lambda t: (t.get("start_date") or "", t["task_id"], t["map_index"]))


@dataclass
class Kill:
    """The scoring try whose worker was killed."""

    worker: str
    task: str
    map_index: int
    try_number: int
    killed_at: str
    """When, UTC (ISO 8601), as the task instances' dates."""


def kill_scoring_worker(cluster: Cluster, run_id: str) -> Kill:
    """SIGKILL the worker of the first scoring task seen running (with its Celery children and the task itself)."""
    by_host = {worker.hostname: worker.name for worker in WORKERS}

    def running() -> dict[str, Any] | None:
        instances = cluster.request("GET", f"{run_path('snowstorm_prediction', run_id)}/taskInstances")
        for ti in instances["task_instances"]:
            if ti["task_id"] == SCORE_TASK and ti["state"] == "running" and ti["hostname"] in by_host:
                return ti
            if ti["task_id"] == SCORE_TASK and ti["state"] == "success":
                raise ClusterError("a scoring task finished before one could be caught running")
        return None

    ti = cluster.wait_for("a scoring task to run", running, RUN_TIMEOUT_S)
    log = task_log(cluster, "snowstorm_prediction", run_id, ti)

    def scoring() -> bool:
        # Past the task's start-up: the operator has loaded its model and is reading and scoring.
        if running() is None:
            raise ClusterError("the scoring task finished before it could be killed mid-scoring")
        return log.is_file() and SCORING_LOG_LINE in log.read_bytes()

    cluster.wait_for(f"{SCORE_TASK} to start scoring ({log})", scoring, RUN_TIMEOUT_S)
    name = by_host[ti["hostname"]]
    cluster.kill(name)
    print(
        f"  killed {name} (SIGKILL) mid-scoring: {SCORE_TASK}[{ti['map_index']}] try {ti['try_number']}",
        flush=True,
    )
    return Kill(name, SCORE_TASK, ti["map_index"], ti["try_number"], datetime.now(UTC).isoformat())


def retry_after_kill(kill: Kill, tries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """When the killed task's last try started and ended, in seconds after the kill, and where it ran."""
    last = [
        ti
        for ti in tries
        if ti["dag_id"] == "snowstorm_prediction"
        and ti["task_id"] == kill.task
        and ti["map_index"] == kill.map_index
    ][-1]
    if last["try_number"] <= kill.try_number or not last.get("end_date"):
        return None
    killed = datetime.fromisoformat(kill.killed_at)
    return {
        "started_s": (datetime.fromisoformat(last["start_date"]) - killed).total_seconds(),
        "succeeded_s": (datetime.fromisoformat(last["end_date"]) - killed).total_seconds(),
        "worker": (last["hostname"] or "").split("@")[0],
    }


def worker_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The task instances' tries: DAG, task, map label, try, queue, worker, state, duration."""
    header = "| DAG | Task | Map | Try | Queue | Worker | State | Seconds |"
    lines = [header, "|---|---|---|--:|---|---|---|--:|"]
    for ti in rows:
        label = ti.get("rendered_map_index") or ("" if ti["map_index"] < 0 else str(ti["map_index"]))
        host = (ti.get("hostname") or "").split("@")[0]
        duration = ti.get("duration")
        seconds = "" if duration is None else f"{duration:.1f}"
        lines.append(
            f"| {ti['dag_id'].removeprefix('snowstorm_')} | {ti['task_id']} | {label} | {ti['try_number']} "
            f"| {ti['queue']} | {host} | {ti['state']} | {seconds} |"
        )
    return "\n".join(lines)


def prediction_counts(hook: Any) -> dict[str, int]:
    """Rows of the predictions table and how many (day, series) keys they cover: equal when none is repeated."""
    from airflow_provider_snowstorm.core.schema import DATE, SERIES
    from airflow_provider_snowstorm.example_pipeline import PREDICTIONS_TABLE
    from airflow_provider_snowstorm.utils.sql import read_dataframe

    key = f"{DATE.upper()}, {SERIES.upper()}"
    query = (
        "SELECT COUNT(*) AS KEYS_, SUM(N) AS ROWS_, COUNT(DISTINCT DAY_) AS DAYS_, "  # noqa: S608 - validated
        f"COUNT(DISTINCT SERIES_) AS SERIES_ FROM (SELECT {DATE.upper()} AS DAY_, {SERIES.upper()} AS SERIES_, "
        f"COUNT(*) AS N FROM {PREDICTIONS_TABLE} GROUP BY {key}) AS KEYED"
    )
    frame = read_dataframe(hook, query)
    return {name.strip("_").lower(): int(frame[name].fillna(0).iloc[0]) for name in frame.columns}


@dataclass(frozen=True)
class Workload:
    """What the pipeline trains and scores: categories, model configurations, days scored and evaluated."""

    cost_models: tuple[str, ...]
    configurations: tuple[str, ...]
    window_days: int
    evaluation_days: int


def run_pipeline(cluster: Cluster, hook: Any, workload: Workload, *, kill_worker: bool) -> dict[str, Any]:
    """The example pipeline on the cluster, each step as production runs it; returns the summary of the run."""
    timings: dict[str, float] = {}
    runs: list[tuple[str, str]] = []
    # Unpaused so that the scheduler runs what the REST API triggers. Schedules are off on this cluster (no cron run
    # for today's date, no Asset-triggered run before its turn): each step starts when the previous one succeeded.
    for dag_id in PIPELINE_DAGS:
        set_paused(cluster, dag_id, False)

    run_id = trigger(cluster, "snowstorm_data_engineering", {"full_refresh": True})
    runs.append(("snowstorm_data_engineering", run_id))
    timings["data_engineering"] = wait_run(cluster, "snowstorm_data_engineering", run_id)
    print(f"  snowstorm_data_engineering: success in {timings['data_engineering']:.1f} s", flush=True)

    run_id = trigger(cluster, "snowstorm_feature_engineering")
    runs.append(("snowstorm_feature_engineering", run_id))
    timings["feature_engineering"] = wait_run(cluster, "snowstorm_feature_engineering", run_id)
    built = xcom(cluster, "snowstorm_feature_engineering", run_id, "build_features")
    scored_until = date.fromisoformat(built["cutoff_date"])
    training_end = scored_until - timedelta(days=workload.window_days)
    print(
        f"  snowstorm_feature_engineering: success in {timings['feature_engineering']:.1f} s, "
        f"features until {scored_until}",
        flush=True,
    )

    from airflow_provider_snowstorm.example_pipeline import MODEL_CONFIGURATIONS

    conf = {
        "cost_models": list(workload.cost_models),
        "configurations": {name: MODEL_CONFIGURATIONS[name] for name in workload.configurations},
        "training_end": training_end.isoformat(),
        "evaluation_days": workload.evaluation_days,
    }
    run_id = trigger(cluster, "snowstorm_training", conf)
    runs.append(("snowstorm_training", run_id))
    timings["training"] = wait_run(cluster, "snowstorm_training", run_id)
    models = xcom(cluster, "snowstorm_training", run_id, "publish_models")
    print(f"  snowstorm_training: {len(models)} models in {timings['training']:.1f} s", flush=True)

    started = time.perf_counter()
    for model in models:
        if model["configuration"] != "default":
            continue
        conf = {
            "category": model["series"],
            "version": model["model_version"],
            "reason": "first production model: the default configuration",
            "force": False,
        }
        run_id = trigger(cluster, "snowstorm_promotion", conf)
        runs.append(("snowstorm_promotion", run_id))
        wait_run(cluster, "snowstorm_promotion", run_id)
        decision = xcom(cluster, "snowstorm_promotion", run_id, "promote", key="decision")
        if not (decision["accepted"] or decision["forced"]):
            raise ClusterError(f"promotion of {model['series']} {model['model_version']} refused: {decision}")
    timings["promotion"] = time.perf_counter() - started
    print(f"  snowstorm_promotion: production models set in {timings['promotion']:.1f} s", flush=True)

    conf = {"cost_models": list(workload.cost_models), "window_days": workload.window_days}
    run_id = trigger(cluster, "snowstorm_prediction", conf)
    runs.append(("snowstorm_prediction", run_id))
    started = time.perf_counter()
    kill = kill_scoring_worker(cluster, run_id) if kill_worker else None
    wait_run(cluster, "snowstorm_prediction", run_id, except_for=[kill.worker] if kill else [])
    timings["prediction"] = time.perf_counter() - started
    print(f"  snowstorm_prediction: success in {timings['prediction']:.1f} s", flush=True)

    tries = [ti for dag_id, run in runs for ti in task_instances(cluster, dag_id, run)]
    recovery = None if kill is None else retry_after_kill(kill, tries)
    if recovery is not None:
        print(
            f"  the killed scoring task's retry started {recovery['started_s']:.0f} s after the kill "
            f"and succeeded {recovery['succeeded_s']:.0f} s after it, on {recovery['worker']}",
            flush=True,
        )
    return {
        "timings": timings,
        "recovery": recovery,
        "kill": None if kill is None else kill.__dict__,
        "task_instances": tries,
        "predictions": prediction_counts(hook),
        "workload": workload.__dict__,
    }


def check(summary: Mapping[str, Any]) -> list[str]:
    """What must hold after a run; the failures, empty when all hold."""
    tries = summary["task_instances"]
    problems = []
    worker_of = {worker.hostname: worker for worker in WORKERS}
    ran = {ti["hostname"] for ti in tries if ti["hostname"]}
    if not {worker.hostname for worker in WORKERS} <= ran:
        problems.append(f"tasks ran on {sorted(ran)}, not on both workers")
    for ti in tries:
        worker = worker_of.get(ti["hostname"] or "")
        if ti["hostname"] and worker is None:
            problems.append(f"{ti['task_id']} ran on {ti['hostname']}, not on a cluster worker")
        elif worker is not None and ti["queue"] not in worker.queues:
            problems.append(f"{ti['task_id']} (queue {ti['queue']}) ran on {worker.name}")
    kill = summary["kill"]
    if kill is not None:
        retried = [
            ti
            for ti in tries
            if ti["dag_id"] == "snowstorm_prediction"
            and ti["task_id"] == kill["task"]
            and ti["map_index"] == kill["map_index"]
        ]
        last = retried[-1] if retried else {}
        if last.get("state") != "success" or last.get("try_number", 0) <= kill["try_number"]:
            problems.append(f"the killed scoring task was not retried to success: {retried}")
        elif (last.get("hostname") or "").split("@")[0] == kill["worker"]:
            problems.append("the killed scoring task's retry ran on the killed worker")
    counts = summary["predictions"]
    if counts["rows"] == 0 or counts["rows"] != counts["keys"]:
        problems.append(f"predictions: {counts['rows']} rows for {counts['keys']} (day, series) keys")
    return problems


def run(home: Path, dags_folder: Path, workload: Workload, *, kill_worker: bool) -> int:
    from airflow_provider_snowstorm.local.pipeline import (
        DEMO_ACCOUNTS,
        DEMO_DAYS,
        DEMO_SEED,
        DEMO_START,
        LocalSetup,
        seed_feedback,
    )

    started = time.perf_counter()
    setup = LocalSetup(home=home, dags_folder=dags_folder)
    fresh_home(home)
    cluster = Cluster(home=home)
    print(f"Snowstorm on a CeleryExecutor cluster in {home}", flush=True)
    try:
        start_cluster(cluster, setup)
        # Seed through the stock hook, with the components' settings (Airflow is imported from here on).
        os.environ.clear()
        os.environ.update(cluster.env)
        from airflow.sdk import BaseHook

        from airflow_provider_snowstorm.datasets import generate_organization_usage
        from airflow_provider_snowstorm.datasets.statement import billing_statement
        from airflow_provider_snowstorm.example_pipeline import FEEDBACK_TABLE
        from airflow_provider_snowstorm.local.seed import seed_usage

        hook = BaseHook.get_connection("snowflake_default").get_hook()
        usage = generate_organization_usage(DEMO_START, DEMO_DAYS, accounts=DEMO_ACCOUNTS, seed=DEMO_SEED)
        seeded = seed_usage(hook, billing_statement(usage, seed=DEMO_SEED).rows)
        seed_feedback(hook, FEEDBACK_TABLE, usage.labels)
        print(f"  seeded {seeded:,} billing lines from {DEMO_START}", flush=True)
        connect(cluster)
        up = time.perf_counter() - started
        print(
            f"  cluster up in {up:.0f} s: api-server {cluster.base_url}, scheduler, dag-processor, "
            + ", ".join(f"{w.name} (queues {','.join(w.queues)})" for w in WORKERS),
            flush=True,
        )
        summary = run_pipeline(cluster, hook, workload, kill_worker=kill_worker)
        summary["startup_s"] = up
    finally:
        cluster.stop()
    summary["total_s"] = time.perf_counter() - started
    (home / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nDone in {summary['total_s']:.0f} s; everything started is stopped.\n")
    print(worker_table(summary["task_instances"]))
    per_worker: dict[str, int] = {}
    for ti in summary["task_instances"]:
        if ti["hostname"]:
            name = ti["hostname"].split("@")[0]
            per_worker[name] = per_worker.get(name, 0) + 1
    print("\nTries per worker: " + ", ".join(f"{name} {count}" for name, count in sorted(per_worker.items())))
    counts = summary["predictions"]
    print(
        f"Predictions: {counts['rows']} rows, {counts['days']} days x {counts['series']} series, "
        f"{counts['rows'] - counts['keys']} repeated (day, series)"
    )
    print(
        f"Component logs: {cluster.logs}; task logs: {home / 'airflow' / 'logs'}; summary: {home / 'summary.json'}"
    )
    problems = check(summary)
    for problem in problems:
        print(f"FAILED CHECK: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _raise_on_terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_snowstorm.local.cluster", description=__doc__
    )
    parser.add_argument(
        "--home", default=".snowstorm-cluster", help="state directory (default: ./.snowstorm-cluster)"
    )
    parser.add_argument(
        "--dags-folder", default="example_dags", help="the example DAGs (default: ./example_dags)"
    )
    parser.add_argument(
        "--kill-worker",
        action="store_true",
        help="SIGKILL the worker running a scoring task; its retry must succeed on the other worker",
    )
    parser.add_argument(
        "--cost-models", nargs="+", default=["total_usage", "compute"], help="categories trained and scored"
    )
    parser.add_argument(
        "--configurations",
        nargs="+",
        default=None,
        help="model configurations trained per category (default: all of the example pipeline's)",
    )
    parser.add_argument("--window-days", type=int, default=14, help="days scored (default: 14)")
    parser.add_argument(
        "--evaluation-days",
        type=int,
        default=365,
        help="labelled days each new model is evaluated on (min 28)",
    )
    arguments = parser.parse_args(argv)
    if arguments.window_days < 1:
        parser.error(f"--window-days must be 1 or more, got {arguments.window_days}")
    if arguments.evaluation_days < 28:
        parser.error(f"--evaluation-days must be 28 or more, got {arguments.evaluation_days}")
    known = ("default", "challenger")  # MODEL_CONFIGURATIONS' names; importing it would import Airflow here
    configurations = tuple(arguments.configurations or known)
    unknown = sorted(set(configurations) - set(known))
    if unknown:
        parser.error(f"--configurations: unknown {unknown}; known: {list(known)}")
    if "default" not in configurations:
        parser.error("--configurations must include 'default': promotion puts it in production")
    workload = Workload(
        tuple(dict.fromkeys(arguments.cost_models)),
        configurations,
        arguments.window_days,
        arguments.evaluation_days,
    )
    if "airflow" in sys.modules:
        raise RuntimeError("run the cluster in a fresh process: Airflow was imported before its set-up")
    home = Path(arguments.home).resolve()
    dags_folder = Path(arguments.dags_folder).resolve()
    if not dags_folder.is_dir():
        parser.error(f"--dags-folder {dags_folder} is not a folder")
    # Ctrl-C and SIGTERM unwind through the cleanup like any failure.
    signal.signal(signal.SIGTERM, _raise_on_terminate)
    try:
        return run(home, dags_folder, workload, kill_worker=arguments.kill_worker)
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: everything started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
