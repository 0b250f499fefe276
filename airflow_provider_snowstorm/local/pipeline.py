"""Run the whole example pipeline on one machine: the embedded default, through the production code paths.

``python -m airflow_provider_snowstorm.local.pipeline`` (what ``bash scripts/run_pipeline.sh`` calls):

1. starts the local Snowflake emulation (fakesnow over TLS) and seeds ``SNOWFLAKE.ORGANIZATION_USAGE.
   USAGE_IN_CURRENCY_DAILY`` with two years of synthetic organisation usage with labelled anomalies, as a real
   organisation's statement (``datasets.statement``: adjustment lines, an overage period, support lines, upper-case
   values, two days still loading, a day of last month restated after the first load);
2. runs the four example DAGs in order with ``dag.test()`` on real Airflow (SQLite), each for the demo's run day:
   data engineering (yesterday's full load, then today's, which picks up the restated day), feature engineering,
   training (W&B offline, models in the local model store), prediction and alerting;
3. prints where the report, chart, W&B runs and model store are, the incidents next to the injected anomalies of
   the scored window, and how to open the Airflow UI on the same set-up.

Airflow reads its configuration when first imported, so the environment (``AIRFLOW_HOME``, connections) is set
before anything imports Airflow: run this module as a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

# The demo organisation's usage: fixed dates and seed, so the report (and the README's snippet of it) is reproducible.
DEMO_START = date(2024, 11, 22)
DEMO_DAYS = 735
DEMO_SEED = 18
DEMO_ACCOUNTS = 3
SCORED_DAYS = 14
BACKFILL_DAYS = 28
DEMO_COST_MODELS = ["total_usage", "compute"]
# The day the demo runs for: the day after the last day of usage (the last two days are still loading then).
DEMO_RUN_DAY = DEMO_START + timedelta(days=DEMO_DAYS)
SETTLE_DAYS = 3  # the feature DAG's default


@dataclass(frozen=True)
class LocalSetup:
    home: Path
    dags_folder: Path

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def model_store(self) -> Path:
        return self.home / "model-store"

    @property
    def wandb_dir(self) -> Path:
        return self.home / "wandb"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def env_file(self) -> Path:
        return self.home / "env.sh"


def wandb_connection(setup: LocalSetup) -> str:
    """W&B offline: runs under ``wandb_dir`` (``wandb sync`` uploads them later), models in the local store."""
    extra = {
        "mode": "offline",
        "entity": "snowstorm-local",
        "project": "snowstorm",
        "model_store": str(setup.model_store),
        "run_dir": str(setup.wandb_dir),
    }
    return json.dumps({"conn_type": "wandb", "extra": extra})


LOGGING_LEVEL_VARIABLE = "AIRFLOW__LOGGING__LOGGING_LEVEL"
# PyJWT warns on every token signed with an HMAC key shorter than the hash (64 bytes for Airflow's HS512).
JWT_SECRET_BYTES = 64


def airflow_settings(setup: LocalSetup) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(setup.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(setup.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW_CONN_WANDB_DEFAULT": wandb_connection(setup),
        "SNOWSTORM_REPORT_PATH": str(setup.reports),
        # Task logs stay in Airflow's log folder; the terminal gets the runner's summary (override to see them).
        LOGGING_LEVEL_VARIABLE: os.environ.get(LOGGING_LEVEL_VARIABLE, "WARNING"),
        "WANDB_SILENT": "true",
        "MPLBACKEND": "Agg",
    }


UI_PORT_VARIABLE = "SNOWSTORM_UI_PORT"
SLACK_CONNECTION_VARIABLE = "AIRFLOW_CONN_SLACK_API_DEFAULT"
DEFAULT_UI_PORT = 8080


def dag_settings() -> dict[str, str]:
    """The example DAGs' settings of this run, written to ``env.sh`` too so that the UI's runs match it: the series
    level (``--series-level``), and no Slack unless a Slack connection is configured (the report goes to its file,
    without a "connection not defined" warning on every run)."""
    settings = {"SNOWSTORM_SERIES_LEVEL": os.environ.get("SNOWSTORM_SERIES_LEVEL", "organization")}
    if SLACK_CONNECTION_VARIABLE not in os.environ:
        settings["SNOWSTORM_SLACK_CONN_ID"] = ""
    return settings


QUIET_WARNING = "ignore:Using `httpx` with `starlette.testclient` is deprecated"


def venv_bin() -> Path:
    """The folder of the interpreter running this (the venv's ``bin``), not resolved through its symlinks."""
    return Path(os.path.abspath(sys.executable)).parent


def shell_settings(setup: LocalSetup) -> dict[str, str]:
    """What ``env.sh`` gives a fresh shell: this run's Airflow and DAG settings, but Airflow's own log level, so
    that the UI's task logs and ``airflow dags test`` show what they did (the quiet level is this run's terminal's)."""
    settings = {key: value for key, value in airflow_settings(setup).items() if key != LOGGING_LEVEL_VARIABLE}
    # The UI's scheduler and a CLI command beside it write the same SQLite file: they wait for each other.
    settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = (
        "airflow_provider_snowstorm.local.sqlite.CONNECT_ARGS"
    )
    return {**settings, **dag_settings()}


def strengthen_jwt_secret(config: Path) -> bool:
    """Give ``[api_auth] jwt_secret`` in Airflow's ``airflow.cfg`` at least ``JWT_SECRET_BYTES``; True if it changed.

    Airflow 3.3 generates a 24-character secret, and PyJWT then warns ("The HMAC key is 24 bytes long ...") on
    every token the API server signs: eleven times in the UI's first five minutes. The secret stays where Airflow
    keeps it, replaced once by a longer random one.
    """
    text = config.read_text()
    found = re.search(r"^jwt_secret = (.*)$", text, flags=re.MULTILINE)
    if found is None or len(found.group(1).strip().encode()) >= JWT_SECRET_BYTES:
        return False
    secret = secrets.token_urlsafe(JWT_SECRET_BYTES)
    config.write_text(text[: found.start(1)] + secret + text[found.end(1) :])
    return True


def write_env_file(setup: LocalSetup, environment: Mapping[str, str]) -> None:
    """``source .snowstorm/env.sh`` gives a fresh shell (``airflow standalone``, ``airflow dags test``) the set-up.

    It also puts the venv's ``bin`` first on ``PATH``: ``airflow standalone`` starts its scheduler, API server,
    DAG processor and triggerer as ``airflow ...`` from ``PATH``, so without it they die with FileNotFoundError.
    The UI port is ``$SNOWSTORM_UI_PORT`` (default 8080); the task runners reach the execution API on it.
    """
    lines = [
        "# Generated by python -m airflow_provider_snowstorm.local.pipeline: the local Snowstorm set-up.",
        f'export PATH={shlex.quote(str(venv_bin()))}:"$PATH"',
        f'export AIRFLOW__API__PORT="${{{UI_PORT_VARIABLE}:-{DEFAULT_UI_PORT}}}"',
        'export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:${AIRFLOW__API__PORT}/execution/"',
        # Airflow's in-process API client uses Starlette's TestClient, which warns on every start: not ours to fix.
        'export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}'
        + QUIET_WARNING.replace("`", "\\`")
        + '"',
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(environment.items())]
    setup.env_file.write_text("\n".join(lines) + "\n")
    setup.env_file.chmod(0o600)


def run_example_dag(
    dag_id: str,
    dags_folder: Path,
    conf: Mapping[str, Any] | None = None,
    *,
    day: date | None = None,
    hour: datetime | None = None,
) -> Any:
    """Run one example DAG with ``dag.test()`` for ``day`` (its logical date; default now), or within ``hour`` (UTC);
    raise if the DAG files do not import or the run does not succeed."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise RuntimeError(f"example DAGs failed to import: {bag.import_errors}")
    started = time.perf_counter()
    # The day at the current time of day: a new run each time (dag.test() deletes a run with the same logical date,
    # and SQLAlchemy warns while deleting one whose DAG has several versions).
    when = (
        {} if day is None else {"logical_date": datetime.combine(day, datetime.now(UTC).time(), tzinfo=UTC)}
    )
    if hour is not None:
        now = datetime.now(UTC)
        when = {"logical_date": hour.replace(minute=now.minute, second=now.second, microsecond=0, tzinfo=UTC)}
    run = bag.get_dag(dag_id).test(run_conf=dict(conf or {}), **when)
    seconds = time.perf_counter() - started
    if run.state != DagRunState.SUCCESS:
        raise RuntimeError(f"{dag_id} finished {run.state}: see the task logs above")
    print(f"  {dag_id}: {run.state} in {seconds:.1f} s", flush=True)
    return run


def xcom_values(run: Any, task_id: str, key: str = "return_value", map_index: int = -1) -> list[Any]:
    """The XCom values a task of a finished DAG run stored under ``key`` (one per matching task instance)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(
        run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key, map_indexes=map_index
    )
    with create_session() as session:
        return [XComModel.deserialize_value(row) for row in session.scalars(query).all()]


def seed_feedback(hook: Any, table: str, labels: pd.DataFrame, *, per_account: bool = False) -> int:
    """The generator's labels as user feedback (``real`` incidents), for its series and for the total of all usage
    (``per_account``: for the account's series and the account's total, ``PROD:compute`` and ``PROD:total_usage``).

    What people do by hand in production (README, "Feedback"); replaced on every run (the generator's rows only).
    """
    from airflow_provider_snowstorm.core.features import series_name
    from airflow_provider_snowstorm.core.schema import FEEDBACK_COLUMNS, REAL_INCIDENT, TOTAL_USAGE
    from airflow_provider_snowstorm.operators.evaluate import feedback_table_ddl
    from airflow_provider_snowstorm.utils.sql import replace_rows

    hook.run(f"CREATE SCHEMA IF NOT EXISTS {table.rsplit('.', 1)[0]}")
    hook.run(feedback_table_ddl(table))
    rows = [
        (series, label.start, label.end, REAL_INCIDENT, f"injected {label.kind}", "generator", None)
        for label in labels.itertuples()
        for series in dict.fromkeys(
            series_name(name, label.account_name if per_account else None)
            for name in (label.series, TOTAL_USAGE)
        )
    ]
    columns = [name.upper() for name in FEEDBACK_COLUMNS]
    return replace_rows(
        hook, table, columns, rows, where=f"REPORTED_BY = {hook.placeholder}", where_parameters=["generator"]
    )


def promote(
    dags_folder: Path,
    category: str,
    version: str,
    reason: str,
    *,
    may_refuse: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Run the promotion DAG and return its decision; a refusal raises unless ``may_refuse``."""
    from airflow.dag_processing.dagbag import DagBag

    conf = {"category": category, "version": version, "reason": reason, "force": force}
    started = time.perf_counter()
    run = DagBag(dag_folder=str(dags_folder)).get_dag("snowstorm_promotion").test(run_conf=conf)
    (decision,) = xcom_values(run, "promote", key="decision")
    state = "promoted" if decision["accepted"] or decision["forced"] else "refused"
    if run.state != "success" or (state == "refused" and not may_refuse):
        raise RuntimeError(f"snowstorm_promotion finished {run.state} ({state}): see the task logs above")
    print(
        f"  snowstorm_promotion ({category} {version}): {state} in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return decision


def backfill_predictions(
    dags_folder: Path, hook: Any, start: date, end: date, scored_from: date
) -> dict[str, Any]:
    """Re-score ``start``..``end`` with the production models through ``airflow backfill create`` (one run per day),
    and compare its rows with those the prediction run wrote for the days from ``scored_from``."""
    from airflow_provider_snowstorm.core.schema import DATE, RESULT_COLUMNS, SCORED_AT, SERIES
    from airflow_provider_snowstorm.example_pipeline import PREDICTIONS_TABLE
    from airflow_provider_snowstorm.local.backfill import backfill_command, run_backfill
    from airflow_provider_snowstorm.utils.sql import read_dataframe

    columns = [c.upper() for c in RESULT_COLUMNS if c != SCORED_AT]
    key = [DATE.upper(), SERIES.upper()]

    def rows(first: date) -> pd.DataFrame:
        query = f"SELECT {', '.join(columns)} FROM {PREDICTIONS_TABLE} WHERE {DATE.upper()} BETWEEN %s AND %s"  # noqa: S608
        frame = read_dataframe(hook, query, [first, end])
        frame[DATE.upper()] = pd.to_datetime(frame[DATE.upper()])
        return frame.sort_values(key, ignore_index=True)

    before = rows(scored_from)
    conf = {"window_days": 1}
    started = time.perf_counter()
    runs = run_backfill("snowstorm_prediction", dags_folder, start, end, conf)
    failed = [run.run_id for run in runs if run.state != "success"]
    if failed:
        raise RuntimeError(f"backfill runs failed: {failed}")
    print(
        f"  snowstorm_prediction backfill ({len(runs)} runs): success in {time.perf_counter() - started:.1f} s"
    )
    after = rows(start)
    days = before[DATE.upper()].drop_duplicates()
    compared = after[after[DATE.upper()].isin(days)].reset_index(drop=True)
    pd.testing.assert_frame_equal(compared, before, check_dtype=False)
    if after.duplicated(key).any():
        raise RuntimeError("the backfill duplicated prediction rows")
    return {
        "command": shlex.join(backfill_command("snowstorm_prediction", start, end, conf)),
        "runs": len(runs),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rows": len(after),
        "equal_days": int(days.size),
    }


def lifecycle_summary(
    models: Sequence[Mapping[str, Any]],
    promotions: Sequence[Mapping[str, Any]],
    drift: Mapping[str, Any],
    backfill: Mapping[str, Any],
) -> str:
    """The model lifecycle of the run: candidates and their evaluation, promotions, the drift check."""
    lines = [
        "## Model lifecycle",
        "",
        "Candidates trained side by side and evaluated on the same labelled span:",
        "",
    ]
    lines += [
        "| Category | Configuration | Model | Span | Incidents found | False alarms / month | F1 | AP |"
    ]
    lines += ["|---|---|---|---|--:|--:|--:|--:|"]
    for model in models:
        e = model["evaluation"]
        ap = "n/a" if e["average_precision"] is None else f"{e['average_precision']:.2f}"
        lines.append(
            f"| {model['series']} | {model['configuration']} | {model['model_name']} {model['model_version']} "
            f"| {e['span_start']} → {e['span_end']} | {e['found']}/{e['incidents']} "
            f"| {e['false_alarms_per_month']:.2f} | {e['f1']:.2f} | {ap} |"
        )
    lines += ["", "Promotions (snowstorm_promotion):", ""]
    for p in promotions:
        outcome = "promoted" if p["accepted"] or p["forced"] else "refused"
        moved = f"{p['from'] or 'none'} → {p['to']}"
        lines.append(
            f"- {p['model_name']} {moved}: {outcome} ({p['comparison']}); by {p['by']}: {p['reason']}"
        )
        if p.get("shadow_comparison"):
            lines.append(f"  in shadow beside the champion, {p['shadow_comparison']}")
    lines += [
        "",
        f"Drift check ({drift['window_start']} → {drift['window_end']}, production models "
        + ", ".join(f"{s} {v}" for s, v in drift["model_versions"].items())
        + f"): {drift['reason']}",
        "",
        f"Backfill {backfill['start']} → {backfill['end']}: {backfill['runs']} daily runs of snowstorm_prediction "
        f"through Airflow's backfill, {backfill['rows']} prediction rows, no duplicates; the rows of the "
        f"{backfill['equal_days']} days the prediction run had scored are unchanged (every column but scored_at).",
        f"  {backfill['command']}",
    ]
    return "\n".join(lines) + "\n"


def _injected_in_window(labels: pd.DataFrame, start: date, series: Sequence[str]) -> pd.DataFrame:
    window = labels[pd.to_datetime(labels["end"]) >= pd.Timestamp(start)]
    return window.assign(modelled=window["series"].isin(series))


@dataclass(frozen=True)
class DemoRuns:
    """The example DAGs' runs for the demo's run day, and what their first steps reported."""

    runs: dict[str, Any]
    """``data_engineering`` (the run day's load), ``features``, ``training`` and ``prediction``."""
    loaded: dict[str, Any]
    built: dict[str, Any]
    scored_until: date
    """The last complete day: the features' cutoff, the scored window's end."""
    training_end: date
    models: list[dict[str, Any]]
    """Every trained candidate (category x configuration), as the training DAG published them."""
    promotions: list[dict[str, Any]]
    """The first production models: each category's default configuration."""


def run_demo_dags(hook: Any, dags_folder: Path, statement: Any) -> DemoRuns:
    """Seed ``statement`` and run the example DAGs as the demo's nights go: yesterday's full load of the
    preliminary figures, Snowflake's correction overnight, then the run day's load, features, training (up to
    ``SCORED_DAYS`` before the last complete day), the first promotion of each category's default configuration
    (scoring uses the ``production`` alias) and prediction."""
    from airflow_provider_snowstorm.local.seed import seed_usage

    seeded = seed_usage(hook, statement.preliminary_rows)
    print(
        f"  seeded {seeded:,} billing lines, {DEMO_START} to {DEMO_RUN_DAY - timedelta(days=1)}", flush=True
    )
    yesterday = DEMO_RUN_DAY - timedelta(days=1)
    run_example_dag("snowstorm_data_engineering", dags_folder, {"full_refresh": True}, day=yesterday)
    seed_usage(hook, statement.rows)  # overnight, Snowflake corrects a day of last month
    runs = {"data_engineering": run_example_dag("snowstorm_data_engineering", dags_folder, day=DEMO_RUN_DAY)}
    runs["features"] = run_example_dag("snowstorm_feature_engineering", dags_folder, day=DEMO_RUN_DAY)
    (loaded,) = xcom_values(runs["data_engineering"], "extract_usage")
    (built,) = xcom_values(runs["features"], "build_features")
    scored_until = date.fromisoformat(built["cutoff_date"])
    training_end = scored_until - timedelta(days=SCORED_DAYS)
    runs["training"] = run_example_dag(
        "snowstorm_training",
        dags_folder,
        {"cost_models": DEMO_COST_MODELS, "training_end": training_end.isoformat()},
        day=DEMO_RUN_DAY,
    )
    (models,) = xcom_values(runs["training"], "publish_models")
    # The first production models: the default configuration of each category (nothing to compare with yet).
    first = {m["series"]: m["model_version"] for m in models if m["configuration"] == "default"}
    promotions = [
        promote(dags_folder, category, version, "first production model: the default configuration")
        for category, version in first.items()
    ]
    runs["prediction"] = run_example_dag(
        "snowstorm_prediction",
        dags_folder,
        {"cost_models": DEMO_COST_MODELS, "window_days": SCORED_DAYS},
        day=DEMO_RUN_DAY,
    )
    return DemoRuns(runs, loaded, built, scored_until, training_end, models, promotions)


def billing_summary(statement: Any, loaded: Mapping[str, Any], built: Mapping[str, Any]) -> str:
    """What the seeded statement had besides consumption, and what the pipeline made of it."""
    rows = statement.rows
    usage_types = rows["USAGE_TYPE"].str.lower()
    restated = ", ".join(loaded.get("restated_days") or []) or "none"
    return "\n".join(
        [
            "Real billing lines in the seeded statement, and what the pipeline did with them:",
            f"  - {int(rows['IS_ADJUSTMENT'].sum()):,} adjustment lines (adj for incl cloud services): netted into "
            "cloud_services",
            f"  - overage from {statement.overage_start} ({int(usage_types.str.startswith('overage-').sum()):,} "
            "overage- lines, some upper case): kept in their base categories",
            f"  - {int((rows['BILLING_TYPE'].str.lower() != 'consumption').sum())} support lines (priority support, "
            "support credit): left out (consumption only)",
            f"  - still loading: {', '.join(built['settling_days']) or 'none'}; features end {built['cutoff_date']}",
            f"  - restated since the last load (window from {loaded['window_start']}): {restated}",
            f"  - currency: {built['currency']}",
            "",
        ]
    )


def run(setup: LocalSetup) -> int:
    from airflow_provider_snowstorm.datasets import generate_organization_usage
    from airflow_provider_snowstorm.datasets.statement import billing_statement
    from airflow_provider_snowstorm.local.snowflake import airflow_environment, start_emulator

    started = time.perf_counter()
    from airflow_provider_snowstorm.core.features import series_parts

    print(f"Snowstorm local pipeline in {setup.home}", flush=True)
    # Every run starts the model lifecycle afresh (v0, nothing in production), as it re-seeds the usage.
    shutil.rmtree(setup.model_store, ignore_errors=True)
    handle = start_emulator(setup.home, timeout=90.0)
    os.environ.update(airflow_environment(handle))
    write_env_file(setup, {**shell_settings(setup), **airflow_environment(handle)})
    print(f"  Snowflake emulation: {handle.url}", flush=True)

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    strengthen_jwt_secret(setup.airflow_home / "airflow.cfg")
    from airflow.sdk import BaseHook

    usage = generate_organization_usage(DEMO_START, DEMO_DAYS, accounts=DEMO_ACCOUNTS, seed=DEMO_SEED)
    statement = billing_statement(usage, seed=DEMO_SEED)
    hook = BaseHook.get_connection("snowflake_default").get_hook()
    from airflow_provider_snowstorm.example_pipeline import FEATURES_TABLE, FEEDBACK_TABLE, PER_ACCOUNT

    if PER_ACCOUNT:
        print(f"  series: one per account and cost category (long features in {FEATURES_TABLE})", flush=True)

    feedback = seed_feedback(hook, FEEDBACK_TABLE, usage.labels, per_account=PER_ACCOUNT)
    print(
        f"  feedback: {feedback} labelled incidents marked real in {FEEDBACK_TABLE} (the generator's labels)"
    )
    demo = run_demo_dags(hook, setup.dags_folder, statement)
    prediction, training_end, last_day = demo.runs["prediction"], demo.training_end, demo.scored_until
    models, promotions = demo.models, list(demo.promotions)
    (result,) = xcom_values(prediction, "report")
    (drift,) = xcom_values(prediction, "monitor")
    backfill = backfill_predictions(
        setup.dags_folder,
        hook,
        last_day - timedelta(days=BACKFILL_DAYS - 1),
        last_day,
        training_end + timedelta(days=1),
    )
    # The challenger of compute (at account level, that of the account with most labelled incidents), scored in
    # shadow beside the champion: promoted only if it evaluates at least as well.
    challenger = max(
        (
            m
            for m in models
            if series_parts(m["series"])[1] == "compute" and m["configuration"] == "challenger"
        ),
        key=lambda m: m["evaluation"]["incidents"],
    )
    promotions.append(
        promote(
            setup.dags_folder,
            challenger["series"],
            challenger["model_version"],
            "challenger after its shadow period",
            may_refuse=True,
        )
    )
    report = Path(result["report"])
    injected = _injected_in_window(usage.labels, training_end + timedelta(days=1), DEMO_COST_MODELS)

    slack_note = (
        f"posted to {result['slack_channel']}"
        if result.get("slack_channel")
        else f"not configured (export {SLACK_CONNECTION_VARIABLE} to post the report)"
    )
    print(f"\nDone in {time.perf_counter() - started:.0f} s.\n")
    print(report.read_text())
    print(billing_summary(statement, demo.loaded, demo.built))
    print(lifecycle_summary(models, promotions, drift, backfill))
    print("Injected anomalies in the scored window (from the generator's labels):")
    for label in injected.itertuples():
        note = "" if label.modelled else "  (not a modelled category; also part of total_usage)"
        print(
            f"  - {label.kind} in {label.series}, {label.start} to {label.end}, {label.extra_cost:+,.2f}{note}"
        )
    print(
        f"\nReport:        {report}\n"
        f"Slack:         {slack_note}\n"
        f"Chart:         {result['chart'] or 'none (no anomalies)'}\n"
        f"W&B runs:      {setup.wandb_dir / 'wandb'} (offline; upload with `wandb sync <run folder>`)\n"
        f"Model store:   {setup.model_store}\n"
        f"Airflow home:  {setup.airflow_home}\n\n"
        "Open the Airflow UI on the same set-up (the emulator keeps running; Browse > Cost anomalies shows this\n"
        "report, and each task's W&B Run button its offline run):\n"
        f"  source {setup.env_file} && .venv/bin/airflow standalone   # then http://localhost:8080\n"
        "Stop the emulator: .venv/bin/python -m airflow_provider_snowstorm.local snowflake stop "
        f"--home {setup.home}"
    )
    from airflow_provider_snowstorm.local.hourly import run_hourly_path

    run_hourly_path(hook, setup)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_snowstorm.local.pipeline", description=__doc__
    )
    parser.add_argument("--home", default=".snowstorm", help="state directory (default: ./.snowstorm)")
    parser.add_argument(
        "--dags-folder", default="example_dags", help="the example DAGs (default: ./example_dags)"
    )
    parser.add_argument(
        "--series-level",
        choices=("organization", "account"),
        default=os.environ.get("SNOWSTORM_SERIES_LEVEL", "organization"),
        help="a series per cost category (organization, the default) or per account and cost category "
        "(account: sets SNOWSTORM_SERIES_LEVEL for the DAGs)",
    )
    arguments = parser.parse_args(argv)
    os.environ["SNOWSTORM_SERIES_LEVEL"] = arguments.series_level
    setup = LocalSetup(home=Path(arguments.home).resolve(), dags_folder=Path(arguments.dags_folder).resolve())
    setup.home.mkdir(parents=True, exist_ok=True)
    # dag.test() runs the execution API in process through Starlette's test client, which warns about httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    if "airflow" in sys.modules:
        raise RuntimeError(
            "run the local pipeline in a fresh process: Airflow was imported before its set-up"
        )
    os.environ.update(airflow_settings(setup))
    os.environ.update(dag_settings())
    return run(setup)


if __name__ == "__main__":
    sys.exit(main())
