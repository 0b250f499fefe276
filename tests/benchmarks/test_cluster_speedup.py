"""The cluster speed-up benchmark (``python -m benchmarks.cluster_speedup``).

The ``cluster`` test runs ``--quick`` for real (two clusters, one after the other: one worker, then two) and checks
what must hold whatever the timings: both workers of configuration B scored chunks, every chunk succeeded, and the
predictions table holds exactly one row per series and scored day in every run. The others check the plan and the
report on hand-made results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import cluster_speedup
from tests.local.test_cluster import processes_with

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 1200


def test_the_plan_trains_a_year_before_the_scored_window() -> None:
    plan = cluster_speedup.features_plan(7)
    assert plan == {
        "training_start": "2025-11-20",
        "training_end": "2026-11-19",
        "window_start": "2026-11-20",
        "window_end": "2026-11-26",
    }


def run(name: str, scoring_s: float, workers: list[str]) -> dict:
    return {
        "configuration": name,
        "workers": workers,
        "load_average_at_start": (1.0, 2.0, 3.0),
        "dag_run_s": scoring_s + 10,
        "scoring_s": scoring_s,
        "emulator_cpu_s": 5.0,
        "machine_busy_s": scoring_s,
        "measured_s": scoring_s + 12,
        "cluster_cpu_s": scoring_s / 2,
        "rows": {"rows": 800, "series": 400, "days": 2, "keys": 800},
        "chunks": [
            {"map_index": index, "worker": workers[index % len(workers)], "duration_s": 2.0}
            for index in range(4)
        ],
    }


def test_the_report_shows_each_run_and_the_speed_up() -> None:
    results = [run("A", 40.0, ["worker-1"]), run("B", 25.0, ["worker-1", "worker-2"])]
    setting = {"chunks": 4, "series_per_chunk": 100, "series": 400, "window_days": 2, "feature_rows": 146_800}
    text = cluster_speedup.report(results, {**setting, **cluster_speedup.features_plan(2)})
    assert "| 2 | B | 2 x 1 | 1.00/2.00/3.00 | 35.0 | 25.0 | worker-1 2, worker-2 2 | 8.0 | 800 |" in text
    assert "scoring phase 1.60x, DAG run 1.43x" in text


@pytest.mark.cluster
@pytest.mark.slow
def test_quick_benchmark_splits_the_chunks_over_both_workers(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "WANDB_"))}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.cluster_speedup", "--quick", "--json", str(output)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert result.stderr == ""
    assert not [
        line for line in result.stdout.splitlines() if "warning" in line.lower() or "error" in line.lower()
    ]
    assert processes_with("snowstorm-speedup-") == []
    results = json.loads(output.read_text())
    setting = results["setting"]
    assert [run["configuration"] for run in results["runs"]] == ["A", "B"]
    for run_ in results["runs"]:
        assert len(run_["chunks"]) == setting["chunks"]
        assert {chunk["state"] for chunk in run_["chunks"]} == {"success"}
        assert {chunk["worker"] for chunk in run_["chunks"]} == set(run_["workers"])
        assert run_["rows"] == {
            "rows": setting["series"] * setting["window_days"],
            "keys": setting["series"] * setting["window_days"],
            "series": setting["series"],
            "days": setting["window_days"],
        }
    one, two = results["runs"]
    assert one["workers"] == ["worker-1"]
    assert two["workers"] == ["worker-1", "worker-2"]
    assert "Speed-up B over A" in result.stdout


def test_task_phases_come_from_the_scoring_logs_event_times(tmp_path: Path) -> None:
    events = [
        ("00:00:00", "::group::Pre Execute"),
        ("00:00:10", "Scoring 'S000000' with model snowstorm-chunk-0 v0"),
        ("00:00:11", "Reading features for 100 series (S000000 .. S000099) through 'snowflake_default'"),
        ("00:00:15", "Running statement: CREATE TABLE IF NOT EXISTS X (...)"),
        ("00:00:17", "Wrote 200 prediction rows for 100 series"),
        ("00:00:18", "::endgroup::"),
    ]
    log = tmp_path / "attempt=1.log"
    log.write_text(
        "\n".join(json.dumps({"timestamp": f"2026-11-28T{at}.000000Z", "event": text}) for at, text in events)
    )
    assert cluster_speedup.task_phases(log) == {"start": 10.0, "read": 4.0, "write": 2.0, "total": 18.0}
    log.write_text(json.dumps({"timestamp": "2026-11-28T00:00:00Z", "event": "::group::Pre Execute"}))
    assert cluster_speedup.task_phases(log) == {}
