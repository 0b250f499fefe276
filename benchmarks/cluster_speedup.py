"""Cluster speed-up: the same chunked scoring on one Celery worker and on two, side by side (issue 15).

What it measures: a DAG that maps ``BatchScoreOperator(chunk_model=True, features_layout="long")`` over K chunks of
series (default 8 chunks of 2,500 series, a year of daily history each plus the scored window) in a long features
table of the local Snowflake emulator, on the CeleryExecutor cluster of ``airflow_provider_snowstorm.local.cluster``
(PostgreSQL, Redis, the emulator, api-server, scheduler, dag-processor) started once per configuration:

- A: one Celery worker, concurrency 1;
- B: two Celery workers, concurrency 1 each (one task slot per core of a 2-core machine).

How: the features table (``generate_cost_series``, in the emulator's DuckDB file) is built once and copied into
each cluster before its emulator starts. A set-up DAG, not timed, trains one model per chunk
(``DecomposeIsolationForestOperator(chunk_model=True)``) on the first cluster; its model store is copied into the
later ones. Then the scoring DAG (``benchmarks/dags/snowstorm_scale_benchmark.py``, put in the cluster's DAG folder)
runs once per cluster. The scoring phase is timed from the first scoring task's start to the last one's end (task
instance dates from the REST API), and the DAG run from its start to its end (which adds the scheduling and the
task that lists the series). Configurations run alternately (A, B, A, B, ...), each cluster in a fresh process,
because the machine is shared: the load average is printed at each start. Per run it prints the worker of each
chunk, the rows in the predictions table (exactly series x scored days), and the CPU seconds of the emulator (one
fakesnow server: one process, one DuckDB) and of the whole machine (``/proc``) during the scoring DAG run, to show
what bounds the speed-up.

Run from the repository root: ``.venv/bin/python -m benchmarks.cluster_speedup [--quick]`` (``--quick``: 4 chunks of
100 series, 2 scored days, A then B once).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = Path(__file__).resolve().parent / "dags" / "snowstorm_scale_benchmark.py"
TRAIN_DAG = "snowstorm_scale_benchmark_train"
SCORE_DAG = "snowstorm_scale_benchmark_score"
SCORE_TASK = "score"
DATABASE, SCHEMA = "SNOWSTORM", "ANALYTICS"
FEATURES_TABLE = f"{DATABASE}.{SCHEMA}.SCALE_FEATURES_LONG"
RESULTS_TABLE = f"{DATABASE}.{SCHEMA}.SCALE_PREDICTIONS"
HISTORY_DAYS = 365
LAST_DAY = date(2026, 11, 26)
SEED = 7
CONCURRENCY = 1
QUEUE = "default"
CONFIGURATIONS = {
    "A": ("worker-1",),
    "B": ("worker-1", "worker-2"),
}


def features_plan(window_days: int) -> dict[str, str]:
    """The days: a year of training history, then the scored window ending on ``LAST_DAY``."""
    window_start = LAST_DAY - timedelta(days=window_days - 1)
    training_end = window_start - timedelta(days=1)
    return {
        "training_start": (training_end - timedelta(days=HISTORY_DAYS - 1)).isoformat(),
        "training_end": training_end.isoformat(),
        "window_start": window_start.isoformat(),
        "window_end": LAST_DAY.isoformat(),
    }


def build_features(path: Path, n_series: int, window_days: int) -> int:
    """The long features table (``USAGE_DATE, SERIES, VALUE``) as the emulator's ``SNOWSTORM`` database file; rows."""
    import duckdb

    from airflow_provider_snowstorm.datasets import generate_cost_series

    plan = features_plan(window_days)
    days = HISTORY_DAYS + window_days
    wide = generate_cost_series(n_series, days, seed=SEED, start=plan["training_start"]).values
    wide.columns = [f"S{number:06d}" for number in range(n_series)]
    long = (
        wide.rename_axis("USAGE_DATE")
        .reset_index()
        .melt("USAGE_DATE", var_name="SERIES", value_name="VALUE")
        .assign(USAGE_DATE=lambda frame: frame["USAGE_DATE"].dt.date)
    )
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as connection:
        connection.execute(f"CREATE SCHEMA {SCHEMA}")
        connection.execute(
            f"CREATE TABLE {SCHEMA}.SCALE_FEATURES_LONG (USAGE_DATE DATE, SERIES VARCHAR, VALUE DOUBLE)"
        )
        connection.register("long_rows", long)
        connection.execute(
            f"INSERT INTO {SCHEMA}.SCALE_FEATURES_LONG SELECT USAGE_DATE, SERIES, VALUE FROM long_rows "
            "ORDER BY SERIES, USAGE_DATE"
        )
    return len(long)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_cpu_seconds(groups: set[int]) -> float:
    """CPU seconds of the live processes of these process groups, with their reaped children's (a Celery worker's
    pool processes hold the CPU of the task processes they waited for)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) in groups:
            total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle so far (``/proc/stat``), whoever ran."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# What BatchScoreOperator logs at each step of a chunk (model loaded, features read, table written, done).
PHASE_EVENTS = (
    ("model", "Scoring '"),
    ("read", "Reading features for "),
    ("write", "Running statement: CREATE TABLE IF NOT EXISTS"),
    ("written", "Wrote "),
)


def task_phases(log: Path) -> dict[str, float]:
    """Seconds of a scoring try's steps, from its log's event times: ``start`` (task start-up, imports and model
    load), ``read`` (reading the chunk's features and ``detect``), ``write`` (the bulk write), ``total``."""
    times: dict[str, datetime] = {}
    first = last = None
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        stamp = _instant(event["timestamp"])
        first, last = first or stamp, stamp
        for name, prefix in PHASE_EVENTS:
            if name not in times and str(event.get("event", "")).startswith(prefix):
                times[name] = stamp
    if first is None or last is None or len(times) < len(PHASE_EVENTS):
        return {}
    return {
        "start": (times["model"] - first).total_seconds(),
        "read": (times["write"] - times["read"]).total_seconds(),
        "write": (times["written"] - times["write"]).total_seconds(),
        "total": (last - first).total_seconds(),
    }


def run_configuration(name: str, home: Path, features_db: Path, models: Path, conf: dict[str, Any]) -> dict:
    """Start the cluster of configuration ``name``, train the chunks' models unless ``models`` holds them, run the
    scoring DAG once, measure it, stop everything. Runs in a fresh process (Airflow reads its configuration on
    first import)."""
    from airflow_provider_snowstorm.local.cluster import (
        Cluster,
        Worker,
        connect,
        fresh_home,
        run_path,
        set_paused,
        start_cluster,
        task_instances,
        task_log,
        trigger,
        wait_run,
    )
    from airflow_provider_snowstorm.local.pipeline import LocalSetup
    from airflow_provider_snowstorm.local.snowflake import emulator_status

    fresh_home(home)
    dags = home / "dags"
    shutil.rmtree(dags, ignore_errors=True)
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    data = home / "snowflake" / "data"
    data.mkdir(parents=True, exist_ok=True)
    shutil.copy(features_db, data / f"{DATABASE}.db")
    setup = LocalSetup(home=home, dags_folder=dags)
    trained = models.is_dir()
    if trained:
        shutil.copytree(models, setup.model_store)
    workers = tuple(Worker(worker, (QUEUE,)) for worker in CONFIGURATIONS[name])
    cluster = Cluster(home=home, workers=workers, concurrency=CONCURRENCY, dag_ids=(TRAIN_DAG, SCORE_DAG))
    result: dict[str, Any] = {"configuration": name, "workers": [worker.name for worker in workers]}
    try:
        start_cluster(cluster, setup)
        os.environ.clear()
        os.environ.update(cluster.env)
        connect(cluster)
        for dag_id in (TRAIN_DAG, SCORE_DAG):
            set_paused(cluster, dag_id, False)
        if not trained:
            run_id = trigger(cluster, TRAIN_DAG, conf)
            result["training_s"] = wait_run(cluster, TRAIN_DAG, run_id)
            shutil.copytree(setup.model_store, models)
        emulator = emulator_status(home)
        if emulator is None:
            raise RuntimeError(f"the emulator of {home} is not running")
        result["load_average_at_scoring"] = os.getloadavg()
        # Every component and the emulator run in their own process group (session).
        groups = {process.pid for process in cluster.processes.values()} | {emulator.pid}
        emulator_cpu, machine_busy = _cpu_seconds(emulator.pid), _machine_busy_seconds()
        cluster_cpu = _group_cpu_seconds(groups)
        started = time.perf_counter()
        run_id = trigger(cluster, SCORE_DAG, conf)
        wait_run(cluster, SCORE_DAG, run_id)
        result["measured_s"] = time.perf_counter() - started
        result["emulator_cpu_s"] = _cpu_seconds(emulator.pid) - emulator_cpu
        result["machine_busy_s"] = _machine_busy_seconds() - machine_busy
        result["cluster_cpu_s"] = _group_cpu_seconds(groups) - cluster_cpu
        run = cluster.request("GET", run_path(SCORE_DAG, run_id))
        result["dag_run_s"] = (_instant(run["end_date"]) - _instant(run["start_date"])).total_seconds()
        scoring = [ti for ti in task_instances(cluster, SCORE_DAG, run_id) if ti["task_id"] == SCORE_TASK]
        result["chunks"] = [
            {
                "map_index": ti["map_index"],
                "worker": (ti["hostname"] or "").split("@")[0],
                "state": ti["state"],
                "start": ti["start_date"],
                "end": ti["end_date"],
                "duration_s": ti["duration"],
                "phases": task_phases(task_log(cluster, SCORE_DAG, run_id, ti)),
            }
            for ti in scoring
        ]
        first = min(_instant(ti["start_date"]) for ti in scoring)
        last = max(_instant(ti["end_date"]) for ti in scoring)
        result["scoring_s"] = (last - first).total_seconds()
        result["rows"] = _prediction_counts()
    finally:
        cluster.stop()
    return result


def _prediction_counts() -> dict[str, int]:
    """Rows of the predictions table, and its distinct series, days and (day, series) keys."""
    from airflow.sdk import BaseHook

    from airflow_provider_snowstorm.utils.sql import read_dataframe

    hook = BaseHook.get_connection("snowflake_default").get_hook()
    frame = read_dataframe(
        hook,
        "SELECT COUNT(*) AS ROWS_, COUNT(DISTINCT SERIES) AS SERIES_, COUNT(DISTINCT USAGE_DATE) AS DAYS_, "
        f"COUNT(DISTINCT SERIES || '/' || CAST(USAGE_DATE AS VARCHAR)) AS KEYS_ FROM {RESULTS_TABLE}",
    )
    return {column.strip("_").lower(): int(frame[column].iloc[0]) for column in frame.columns}


def _run_in_fresh_process(
    name: str, home: Path, features_db: Path, models: Path, conf: dict[str, Any]
) -> dict:
    """``run_configuration`` in a new interpreter; its progress lines go to this terminal, its result is returned."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "WANDB_"))}
    arguments = ["--configuration", name, "--home", str(home), "--features-db", str(features_db)]
    arguments += ["--models", str(models), "--conf", json.dumps(conf)]
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.cluster_speedup", *arguments],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(
            f"configuration {name} failed (exit {completed.returncode}); logs in {home / 'logs'}"
        )
    return json.loads(lines[-1])


def report(results: list[dict[str, Any]], setting: dict[str, Any]) -> str:
    """The runs' table, then each configuration's median and the speed-up (A's time / B's time)."""
    lines = [
        f"{setting['chunks']} chunks x {setting['series_per_chunk']:,} series ({setting['series']:,} series, "
        f"{HISTORY_DAYS} days of training history, {setting['window_days']} day(s) scored: "
        f"{setting['window_start']} to {setting['window_end']}; {setting['feature_rows']:,} feature rows); "
        f"{os.cpu_count()} cores, shared. Worker concurrency {CONCURRENCY}. Scoring phase: first scoring task's "
        "start to the last one's end; DAG run: its start to its end. Emulator and machine CPU: during the scoring "
        "DAG run (from its trigger until it was seen finished). Cluster CPU: the emulator, the Airflow components and "
        "the workers with their tasks. Machine CPU: all processes, other users' too.",
        "",
        "| Run | Config | Workers | Load avg at start (1/5/15 min) | DAG run (s) | Scoring phase (s) | Chunks per "
        "worker | Task seconds (sum) | Rows written | Emulator CPU (s) | Emulator CPU / scoring phase | Cluster "
        "CPU (s) | Machine CPU busy (of 2 cores) | Of it, not the cluster's |",
        "|--:|---|--:|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for number, run in enumerate(results, 1):
        per_worker: dict[str, int] = {}
        for chunk in run["chunks"]:
            per_worker[chunk["worker"]] = per_worker.get(chunk["worker"], 0) + 1
        split = ", ".join(f"{worker} {count}" for worker, count in sorted(per_worker.items()))
        load = "/".join(f"{value:.2f}" for value in run["load_average_at_start"])
        task_seconds = sum(chunk["duration_s"] or 0.0 for chunk in run["chunks"])
        capacity = run["measured_s"] * (os.cpu_count() or 1)
        busy = run["machine_busy_s"] / capacity
        others = max(0.0, run["machine_busy_s"] - run["cluster_cpu_s"]) / capacity
        lines.append(
            f"| {number} | {run['configuration']} | {len(run['workers'])} x {CONCURRENCY} | {load} | "
            f"{run['dag_run_s']:.1f} | {run['scoring_s']:.1f} | {split} | {task_seconds:.1f} | "
            f"{run['rows']['rows']:,} | {run['emulator_cpu_s']:.1f} | "
            f"{run['emulator_cpu_s'] / run['scoring_s']:.2f} | {run['cluster_cpu_s']:.1f} | {busy:.0%} | "
            f"{others:.0%} |"
        )
    lines += [
        "",
        "Where a chunk's time goes (medians over the run's chunks, seconds, from the task logs): start-up (task "
        "process, imports, model load), read (the chunk's features from the emulator, and detect), write (bulk "
        "write to the emulator).",
        "",
        "| Run | Config | Start-up | Read + detect | Write | Task |",
        "|--:|---|--:|--:|--:|--:|",
    ]
    for number, run in enumerate(results, 1):
        phases = [chunk["phases"] for chunk in run["chunks"] if chunk.get("phases")]
        cells = [
            f"{statistics.median(phase[key] for phase in phases):.1f}" if phases else ""
            for key in ("start", "read", "write", "total")
        ]
        lines.append(f"| {number} | {run['configuration']} | {' | '.join(cells)} |")
    medians = {}
    for name in CONFIGURATIONS:
        runs = [run for run in results if run["configuration"] == name]
        medians[name] = {
            key: statistics.median(run[key] for run in runs)
            for key in ("scoring_s", "dag_run_s", "emulator_cpu_s")
        }
    lines.append("")
    for name, values in medians.items():
        lines.append(
            f"{name} ({len(CONFIGURATIONS[name])} worker(s) x {CONCURRENCY}): median scoring phase "
            f"{values['scoring_s']:.1f} s, DAG run {values['dag_run_s']:.1f} s, emulator CPU "
            f"{values['emulator_cpu_s']:.1f} s"
        )
    pairs = [
        f"{a['scoring_s'] / b['scoring_s']:.2f}x"
        for a, b in zip(
            [run for run in results if run["configuration"] == "A"],
            [run for run in results if run["configuration"] == "B"],
            strict=False,
        )
    ]
    lines.append(
        f"Speed-up B over A (A's time / B's time, medians): scoring phase "
        f"{medians['A']['scoring_s'] / medians['B']['scoring_s']:.2f}x, DAG run "
        f"{medians['A']['dag_run_s'] / medians['B']['dag_run_s']:.2f}x; scoring phase per round (A_i / B_i): "
        f"{', '.join(pairs)}"
    )
    return "\n".join(lines)


def _raise_on_terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="4 chunks of 100 series, 2 days scored, A then B once"
    )
    parser.add_argument("--chunks", type=int, default=None, help="chunks, one mapped task each (default 8)")
    parser.add_argument("--series-per-chunk", type=int, default=None, help="series per chunk (default 2,500)")
    parser.add_argument("--window-days", type=int, default=None, help="days scored (default 7)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of A then B (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs) after a success")
    # One configuration's cluster, in its own process (what the runs above start).
    parser.add_argument("--configuration", choices=sorted(CONFIGURATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--features-db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--conf", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.configuration:
        signal.signal(signal.SIGTERM, _raise_on_terminate)  # unwind through the cluster's cleanup
        print(
            json.dumps(
                run_configuration(args.configuration, args.home, args.features_db, args.models, args.conf)
            )
        )
        return 0

    chunks = args.chunks or (4 if args.quick else 8)
    per_chunk = args.series_per_chunk or (100 if args.quick else 2_500)
    window_days = args.window_days or (2 if args.quick else 7)
    rounds = args.rounds or (1 if args.quick else 2)
    if min(chunks, per_chunk, window_days, rounds) < 1:
        parser.error("--chunks, --series-per-chunk, --window-days and --rounds must be 1 or more")
    workdir = Path(tempfile.mkdtemp(prefix="snowstorm-speedup-"))
    plan = features_plan(window_days)
    conf = {"chunks": chunks, **plan}
    started = time.perf_counter()
    feature_rows = build_features(workdir / "features.db", chunks * per_chunk, window_days)
    print(
        f"(set-up: {feature_rows:,} feature rows built in {time.perf_counter() - started:.0f} s)", flush=True
    )
    results = []
    for round_number in range(1, rounds + 1):
        for name in CONFIGURATIONS:
            load = os.getloadavg()
            print(
                f"round {round_number}, {name}: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
                flush=True,
            )
            result = _run_in_fresh_process(
                name, workdir / "cluster", workdir / "features.db", workdir / "model-store", conf
            )
            result["load_average_at_start"] = load
            results.append(result)
            print(
                f"  scoring phase {result['scoring_s']:.1f} s, DAG run {result['dag_run_s']:.1f} s, "
                f"{result['rows']['rows']:,} rows",
                flush=True,
            )
    setting = {
        "chunks": chunks,
        "series_per_chunk": per_chunk,
        "series": chunks * per_chunk,
        "window_days": window_days,
        "feature_rows": feature_rows,
        **plan,
    }
    print()
    print(report(results, setting))
    if args.json:
        args.json.write_text(json.dumps({"setting": setting, "runs": results}, indent=2))
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
