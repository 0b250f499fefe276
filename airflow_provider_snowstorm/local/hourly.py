"""The main job's hourly path: warehouse metering with injected runaways, alerted on within hours.

Called by ``local.pipeline`` after the daily DAGs (the credit price comes from the daily path's usage). Seeds
``SNOWFLAKE.ORGANIZATION_USAGE.WAREHOUSE_METERING_HISTORY`` (the view across accounts) with nine weeks of hourly
metering for seven warehouses in two accounts, two of them both named ``ETL_WH``, up to the demo's hour (Friday
2026-11-27 09:00 UTC) with three runaways, then runs the hourly DAGs as the scheduler would: data
engineering (a first load of everything), training (up to a week before), scoring the week since (catching up),
and one hour later data engineering and scoring again, which update the open incidents instead of reporting them
again. Prints the detection delay of each runaway and the incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from airflow_provider_snowstorm.local.pipeline import LocalSetup

HOURLY_START = datetime(2026, 9, 26)
HOURLY_DAYS = 63
HOURLY_SEED = 14
FIRST_HOUR = datetime(2026, 11, 27, 9)  # the first scoring run is for this hour: hours before it are complete
TRAINING_END = datetime(2026, 11, 20)
TRAINING_DAYS = 49
# Series ``ACCOUNT:WAREHOUSE``: ``ETL_WH`` is in both accounts, and stays two warehouses end to end.
WAREHOUSES = [
    ("PROD:BI_WH", "office", "M"),
    ("PROD:REPORTING_WH", "office", "S"),
    ("PROD:DATA_SCIENCE_WH", "office", "L"),
    ("PROD:ETL_WH", "etl", "L"),
    ("PROD:TRANSFORM_WH", "etl", "M"),
    ("PROD:TASK_WH", "task", "XS"),
    ("ANALYTICS:ETL_WH", "etl", "S"),
]


def demo_metering() -> Any:
    """The demo's metering: a warehouse left running over the weekend, a nightly one resized (one incident, not one
    a night), an XS one kept awake by a task (at most 1 credit an hour: less than 1 credit above its usual hours)."""
    from airflow_provider_snowstorm.datasets.warehouse import Runaway, generate_warehouse_metering

    runaways = [
        # Friday evening to Monday morning
        Runaway("PROD:REPORTING_WH", "left_running", "2026-11-20 18:00", 62),
        # up two sizes on Tuesday, still running
        Runaway("PROD:ETL_WH", "resized", "2026-11-24 01:00", 96),
        # a task looping every minute since Thursday
        Runaway("PROD:TASK_WH", "stuck_task", "2026-11-26 20:00", 40),
    ]
    return generate_warehouse_metering(
        HOURLY_START, HOURLY_DAYS, warehouses=WAREHOUSES, runaways=runaways, seed=HOURLY_SEED
    )


def detection_delays(labels: pd.DataFrame, incidents: list[dict[str, Any]], until: datetime) -> list[str]:
    """One line per injected runaway: when it started, the first alarm and the delay in hours (to the end of the
    alarm hour, when its data is complete)."""
    lines = []
    for label in labels.itertuples():
        alarms = [
            pd.Timestamp(incident["first_alarm"])
            for incident in incidents
            if incident["series"] == label.warehouse
            and label.start <= pd.Timestamp(incident["first_alarm"]) <= label.end
        ]
        running = "still running" if label.end >= pd.Timestamp(until) else f"until {label.end:%a %H:00}"
        if alarms:
            delay = (min(alarms) + pd.Timedelta(hours=1) - label.start) / pd.Timedelta(hours=1)
            found = f"first alarm {min(alarms):%a %Y-%m-%d %H:00}, detection delay {delay:.0f} h"
        else:
            found = "not detected"
        account, _, warehouse = label.warehouse.rpartition(":")
        lines.append(
            f"  - {warehouse} (account {account}): {label.kind.replace('_', ' ')} from {label.start:%a %Y-%m-%d %H:00} "
            f"({running}): {found}"
        )
    return lines


@dataclass(frozen=True)
class HourlyRuns:
    """The hourly DAGs' runs in the demo and what the two scoring runs returned."""

    metering: Any
    seeded: int
    runs: dict[str, Any]
    first: dict[str, Any]
    """The first scoring run's result (the week since training, at ``FIRST_HOUR``)."""
    second: dict[str, Any]
    """The next hour's."""


def run_hourly_dags(hook: DbApiHook, dags_folder: Path) -> HourlyRuns:
    """Seed the demo's metering up to ``FIRST_HOUR`` (included), drop the project's hourly tables, and run the hourly
    DAGs for ``FIRST_HOUR`` and the next hour."""
    from airflow_provider_snowstorm.example_pipeline import (
        METERING_TABLE,
        WAREHOUSE_FEATURES_TABLE,
        WAREHOUSE_INCIDENTS_TABLE,
        WAREHOUSE_PREDICTIONS_TABLE,
    )
    from airflow_provider_snowstorm.local.pipeline import run_example_dag, xcom_values
    from airflow_provider_snowstorm.local.seed import ORGANIZATION_METERING_TABLE, seed_metering

    # A fresh demo each time: the project's hourly tables from an earlier main job would carry its incidents over.
    tables = (
        METERING_TABLE,
        WAREHOUSE_FEATURES_TABLE,
        WAREHOUSE_PREDICTIONS_TABLE,
        WAREHOUSE_INCIDENTS_TABLE,
    )
    hook.run([f"DROP TABLE IF EXISTS {table}" for table in tables])
    metering = demo_metering()
    rows = metering.rows
    second_hour = FIRST_HOUR + timedelta(hours=1)
    # in the view by the second run
    seeded = seed_metering(hook, rows[rows["START_TIME"] < second_hour], ORGANIZATION_METERING_TABLE)
    source = {"source_table": ORGANIZATION_METERING_TABLE}
    catch_up = int((FIRST_HOUR - TRAINING_END) / timedelta(hours=1))
    runs = {
        "load": run_example_dag(
            "snowstorm_warehouse_data_engineering",
            dags_folder,
            {"backfill_days": HOURLY_DAYS, **source},
            hour=FIRST_HOUR,
        ),
        "training": run_example_dag(
            "snowstorm_warehouse_training",
            dags_folder,
            {"training_end": TRAINING_END.isoformat(), "training_days": TRAINING_DAYS},
            hour=FIRST_HOUR,
        ),
        "scoring": run_example_dag(
            "snowstorm_warehouse_scoring", dags_folder, {"window_hours": catch_up}, hour=FIRST_HOUR
        ),
        "next_load": run_example_dag(
            "snowstorm_warehouse_data_engineering", dags_folder, source, hour=second_hour
        ),
        "next_scoring": run_example_dag("snowstorm_warehouse_scoring", dags_folder, hour=second_hour),
    }
    (first,) = xcom_values(runs["scoring"], "score_and_alert")
    (second,) = xcom_values(runs["next_scoring"], "score_and_alert")
    return HourlyRuns(metering, seeded, runs, first, second)


def run_hourly_path(hook: DbApiHook, setup: LocalSetup) -> None:
    """The main job's hourly block: run the hourly DAGs, then print the report, delays and incidents."""
    print("\nHourly warehouse path:", flush=True)
    hourly = run_hourly_dags(hook, setup.dags_folder)
    print(
        f"  seeded {hourly.seeded:,} metering rows ({len(WAREHOUSES)} warehouses in "
        f"{len({name.partition(':')[0] for name, _, _ in WAREHOUSES})} accounts, {HOURLY_START:%Y-%m-%d} to "
        f"{FIRST_HOUR:%Y-%m-%d %H:00} UTC)",
        flush=True,
    )
    before, after = hourly.first, hourly.second
    labels = hourly.metering.labels
    labels = labels.assign(end=labels["end"].clip(upper=pd.Timestamp(after["scored_until"])))
    incidents = {incident["incident_id"]: incident for incident in before["incidents"] + after["incidents"]}
    print(f"\n{Path(after['report']).read_text()}")
    print("Injected runaways (from the generator's labels) and when the hourly path alarmed:")
    print("\n".join(detection_delays(labels, list(incidents.values()), after["scored_until"])))
    print("Incidents reported once, then updated while they continue:")
    for incident in after["incidents"]:
        state = "open" if incident["open"] else "ended"
        print(
            f"  - {incident['incident_id']} ({state}, {incident['episodes']} episode(s)): reported "
            f"{incident['reported_at']} UTC, {incident['updates']} update(s) since, "
            f"last at {incident['updated_at']} UTC"
        )
    print(f"\nHourly report: {after['report']}")
