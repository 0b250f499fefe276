"""The multi-worker cluster (``python -m airflow_provider_snowstorm.local.cluster``, what scripts/cluster.sh runs).

The ``cluster`` test starts the real thing (Postgres, Redis, the emulator, Airflow on CeleryExecutor with two workers),
runs the example pipeline with a worker killed mid-scoring, and checks what the run recorded and that nothing is left
running. The others check the run's checks on hand-made summaries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_snowstorm.local.cluster import WORKERS, check, worker_table

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT, ML = (worker.hostname for worker in WORKERS)
CLUSTER_TIMEOUT_S = 900


def attempt(
    task_id: str, host: str, queue: str, *, try_number: int = 1, state: str = "success", **extra: Any
):
    return {
        "dag_id": extra.pop("dag_id", "snowstorm_prediction"),
        "task_id": task_id,
        "map_index": extra.pop("map_index", -1),
        "rendered_map_index": None,
        "try_number": try_number,
        "queue": queue,
        "hostname": host,
        "state": state,
        "duration": 1.0,
    }


def summary(
    tries: list[dict[str, Any]], *, rows: int = 28, keys: int = 28, kill: Any = None
) -> dict[str, Any]:
    return {
        "task_instances": tries,
        "kill": kill,
        "predictions": {"rows": rows, "keys": keys, "days": 14, "series": 2},
    }


GOOD = [
    attempt("train", ML, "ml", dag_id="snowstorm_training"),
    attempt("score", DEFAULT, "default", map_index=0, state="failed"),
    attempt("score", ML, "default", map_index=0, try_number=2),
    attempt("score", ML, "default", map_index=1),
]
KILL = {"worker": "worker-default", "task": "score", "map_index": 0, "try_number": 1}


def test_check_passes_a_good_run() -> None:
    assert check(summary(GOOD, kill=KILL)) == []


def test_check_finds_a_run_on_one_worker_only() -> None:
    (problem,) = check(summary([attempt("train", ML, "ml", dag_id="snowstorm_training")]))
    assert "not on both workers" in problem


def test_check_finds_training_on_the_default_worker() -> None:
    problems = check(
        summary([*GOOD, attempt("train", DEFAULT, "ml", dag_id="snowstorm_training")], kill=KILL)
    )
    assert problems == ["train (queue ml) ran on worker-default"]


def test_check_finds_a_retry_on_the_killed_worker() -> None:
    tries = [*GOOD[:2], attempt("score", DEFAULT, "default", map_index=0, try_number=2), GOOD[3]]
    assert check(summary(tries, kill=KILL)) == ["the killed scoring task's retry ran on the killed worker"]


def test_check_finds_a_killed_task_never_retried() -> None:
    (problem,) = check(summary([GOOD[0], GOOD[1], GOOD[3]], kill=KILL))
    assert problem.startswith("the killed scoring task was not retried to success")


def test_check_finds_repeated_predictions() -> None:
    assert check(summary(GOOD, rows=30, keys=28)) == ["predictions: 30 rows for 28 (day, series) keys"]


def test_worker_table_names_worker_and_queue() -> None:
    table = worker_table(GOOD).splitlines()
    assert table[0] == "| DAG | Task | Map | Try | Queue | Worker | State | Seconds |"
    assert table[3] == "| prediction | score | 0 | 1 | default | worker-default | failed | 1.0 |"


def processes_with(marker: str) -> list[str]:
    """Command lines of live processes whose environment or command line names ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            text = (proc / "environ").read_bytes() + (proc / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker.encode() in text:
            found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.mark.cluster
@pytest.mark.slow
def test_cluster_survives_a_killed_worker() -> None:
    """Both workers run tasks, training only on the ml worker; the scoring task whose worker is SIGKILLed succeeds on
    the other one; one prediction row per day and series; nothing left running afterwards."""
    # Not under pytest's tmp_path: other pytest sessions of the same user prune old base folders while this runs.
    home = Path(tempfile.mkdtemp(prefix="snowstorm-cluster-test-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "WANDB_"))}
    command = [
        sys.executable,
        "-m",
        "airflow_provider_snowstorm.local.cluster",
        "--home",
        str(home),
        "--kill-worker",
        # Small: one category, one configuration, a short window (a few minutes on two cores).
        "--cost-models",
        "compute",
        "--configurations",
        "default",
        "--evaluation-days",
        "28",
        "--window-days",
        "7",
    ]
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLUSTER_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n(kept: {home})"
    assert result.stderr == ""
    assert not [
        line for line in result.stdout.splitlines() if "warning" in line.lower() or "error" in line.lower()
    ]
    assert processes_with(str(home)) == []

    run = json.loads((home / "summary.json").read_text())
    tries = run["task_instances"]
    hosts = {ti["hostname"] for ti in tries if ti["hostname"]}
    assert hosts == {DEFAULT, ML}
    training = [ti for ti in tries if ti["dag_id"] == "snowstorm_training" and ti["queue"] == "ml"]
    assert training
    assert {ti["hostname"] for ti in training} == {ML}
    kill = run["kill"]
    scoring = [
        ti
        for ti in tries
        if ti["dag_id"] == "snowstorm_prediction"
        and ti["task_id"] == kill["task"]
        and ti["map_index"] == kill["map_index"]
    ]
    killed, retried = scoring[0], scoring[-1]
    assert killed["hostname"].split("@")[0] == kill["worker"]
    assert killed["state"] != "success"
    assert retried["try_number"] == kill["try_number"] + 1
    assert retried["state"] == "success"
    assert retried["hostname"] != killed["hostname"]
    counts = run["predictions"]
    assert counts["rows"] == counts["keys"] == counts["days"] * counts["series"]
    assert counts["days"] >= 7
    assert counts["series"] == len(run["workload"]["cost_models"])
    assert worker_table(tries) in result.stdout
    shutil.rmtree(home)
