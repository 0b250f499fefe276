"""Settings and Assets of the Snowstorm example pipeline (the DAGs in ``example_dags``), shared with its local runner.

(Formerly ``airflow_provider_snowstorm.pipeline``, which still imports with a ``DeprecationWarning``; the local
runner is ``airflow_provider_snowstorm.local.pipeline``. The DAGs' reusable steps are in ``pipeline_tasks``.)

Deployments configure the DAGs with environment variables (read when the DAG files are parsed), so the same files run
against the local emulation and against a real Snowflake account: only connections and these names change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, task

from airflow_provider_snowstorm.utils.sql import validate_identifier, validate_table_name

__all__ = [
    "CHALLENGER_ALIAS",
    "CURRENCY",
    "DATABASE",
    "DEFAULT_ARGS",
    "DEFAULT_COST_MODELS",
    "EVALUATIONS_TABLE",
    "FEATURES_LAYOUT",
    "FEATURES_TABLE",
    "FEEDBACK_TABLE",
    "MODEL_CONFIGURATIONS",
    "PER_ACCOUNT",
    "PREDICTIONS_TABLE",
    "RAW_USAGE_TABLE",
    "REPORT_PATH",
    "RESTATEMENTS_TABLE",
    "ROOT_CAUSES_TABLE",
    "SCHEMA",
    "SCORING_QUEUE",
    "SERIES_LABEL",
    "SERIES_LEVEL",
    "SERIES_PER_TASK",
    "SHADOW_PREDICTIONS_TABLE",
    "SLACK_CHANNEL",
    "SLACK_CONN_ID",
    "SNOWFLAKE_CONN_ID",
    "SOURCE_TABLE",
    "TRAINING_QUEUE",
    "WANDB_CONN_ID",
    "batch_series",
    "cost_models",
    "cost_models_param",
    "drift",
    "features",
    "isolation_forest_model",
    "modelled_series",
    "raw_usage",
    "run_day",
    "run_hour",
    "series_batches",
    "warehouse_features",
    "warehouse_models",
]


def _setting(name: str, default: str) -> str:
    return os.environ.get(f"SNOWSTORM_{name}", default)


SNOWFLAKE_CONN_ID = _setting("SNOWFLAKE_CONN_ID", "snowflake_default")
WANDB_CONN_ID = _setting("WANDB_CONN_ID", "wandb_default")
SLACK_CONN_ID = _setting("SLACK_CONN_ID", "slack_api_default")
SLACK_CHANNEL = _setting("SLACK_CHANNEL", "#snowflake-costs")
DATABASE = validate_identifier(_setting("DATABASE", "SNOWSTORM"), what="SNOWSTORM_DATABASE")
SCHEMA = validate_identifier(_setting("SCHEMA", "ANALYTICS"), what="SNOWSTORM_SCHEMA")
SOURCE_TABLE = validate_table_name(
    _setting("SOURCE_TABLE", "SNOWFLAKE.ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY"),
    what="SNOWSTORM_SOURCE_TABLE",
)
REPORT_PATH = _setting("REPORT_PATH", "")  # empty: $AIRFLOW_HOME/snowstorm/reports/<dag>/<run id>
# The one currency modelled and reported; empty: the one with most spend. Amounts in two currencies are never added:
# an organisation billed in several runs one pipeline per currency (each with its own SNOWSTORM_SCHEMA).
CURRENCY = _setting("CURRENCY", "").strip().upper() or None
# Worker queues: training (heavy: decompositions, forests) on an ML queue, scoring on Airflow's default queue. Queues
# matter with the Celery or Kubernetes executors (a worker started with `airflow celery worker --queues ml`); the
# local executor and dag.test() run every queue.
TRAINING_QUEUE = _setting("TRAINING_QUEUE", "ml")
SCORING_QUEUE = _setting("SCORING_QUEUE", "default")

# Days before a run's day whose usage is still arriving (the view's latency is up to 72 hours): feature engineering
# leaves them out, and monitoring expects the features to reach the day before them.
SETTLE_DAYS = 3


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _setting(name, default).strip().lower()
    if value not in choices:
        raise ValueError(f"SNOWSTORM_{name} must be one of {list(choices)}, got {value!r}")
    return value


def _count(name: str, default: int) -> int:
    value = _setting(name, str(default)).strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SNOWSTORM_{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


# What one series is: a cost category summed across accounts ("organization": compute, total_usage), or an account's
# cost category ("account": PROD:compute, PROD:total_usage, one series per account and category, so an organisation
# with hundreds of accounts has thousands of series). Account-level features are long rows (date, series, value) in
# their own table, and each mapped training or scoring task takes SNOWSTORM_SERIES_PER_TASK series.
SERIES_LEVEL = _choice("SERIES_LEVEL", "organization", ("organization", "account"))
PER_ACCOUNT = SERIES_LEVEL == "account"
FEATURES_LAYOUT = "long" if PER_ACCOUNT else "wide"
SERIES_PER_TASK = _count("SERIES_PER_TASK", 50)

RAW_USAGE_TABLE = f"{DATABASE}.{SCHEMA}.USAGE_IN_CURRENCY_DAILY"
FEATURES_TABLE = f"{DATABASE}.{SCHEMA}." + (
    "DAILY_ACCOUNT_COST_FEATURES" if PER_ACCOUNT else "DAILY_COST_FEATURES"
)
PREDICTIONS_TABLE = f"{DATABASE}.{SCHEMA}.COST_ANOMALY_PREDICTIONS"
ROOT_CAUSES_TABLE = f"{DATABASE}.{SCHEMA}.COST_ANOMALY_ROOT_CAUSES"
RESTATEMENTS_TABLE = f"{DATABASE}.{SCHEMA}.USAGE_RESTATEMENTS"
# The challenger's predictions: scored beside production's, kept apart, never alerted on.
SHADOW_PREDICTIONS_TABLE = f"{DATABASE}.{SCHEMA}.COST_ANOMALY_SHADOW_PREDICTIONS"
# Incidents people mark real or false alarm (the labels of evaluation), and every evaluation's metrics.
FEEDBACK_TABLE = f"{DATABASE}.{SCHEMA}.COST_ANOMALY_FEEDBACK"
EVALUATIONS_TABLE = f"{DATABASE}.{SCHEMA}.MODEL_EVALUATIONS"

DEFAULT_COST_MODELS = ["total_usage", "compute"]
# Model configurations trained side by side for every category (detector parameters); each new version is a
# candidate aliased with its configuration's name. Production scores with the version promotion put in
# `production`; the newest `challenger` scores in shadow.
CHALLENGER_ALIAS = "challenger"
MODEL_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default": {"random_state": 0},
    CHALLENGER_ALIAS: {"random_state": 0, "scorer": "forest"},
}

raw_usage = Asset(f"snowstorm_raw_usage__{DATABASE.lower()}_{SCHEMA.lower()}")
features = Asset(f"snowstorm_features__{DATABASE.lower()}_{SCHEMA.lower()}")
# Which cost categories get a model: change the extra to train more (as the seed's cost_models).
isolation_forest_model = Asset(
    f"snowstorm_isolation_forest_model__{DATABASE.lower()}_{SCHEMA.lower()}",
    extra={"cost_models": DEFAULT_COST_MODELS},
)

# Monitoring emits an event of this Asset when a model's data, scores or age drift past their limits (extra: the
# reason and the drifted categories); the retraining it triggers carries the same reason in its conf.
drift = Asset(f"snowstorm_model_drift__{DATABASE.lower()}_{SCHEMA.lower()}")


def _seconds(name: str, default: int) -> timedelta:
    value = _setting(name, str(default))
    if not value.strip().isdigit():
        raise ValueError(f"SNOWSTORM_{name} must be a whole number of seconds, got {value!r}")
    return timedelta(seconds=int(value))


# One retry after a minute; a cluster that wants a lost task back sooner shortens the delay (scripts/cluster.sh: 5 s).
RETRY_DELAY = _seconds("RETRY_DELAY_SECONDS", 60)
DEFAULT_ARGS = {"owner": "snowstorm", "retries": 1, "retry_delay": RETRY_DELAY}


def cost_models_param() -> Param:
    """The ``cost_models`` DAG param: which categories to train or score, by default the model Asset's extra."""
    return Param(
        isolation_forest_model.extra["cost_models"],
        type="array",
        minItems=1,
        items={"type": "string"},
        description="Cost categories to train or score a model for (at account level, every account's series of "
        "each; an entry may also name one account's series, PROD:compute).",
    )


def modelled_series(requested: Sequence[str]) -> list[str]:
    """The series of the requested categories: the categories themselves at organisation level; at account level
    every account's series of each (``compute`` -> ``PROD:compute``, ``DEV:compute``, ...; an ``ACCOUNT:category``
    asked for is kept as it is), read from the features table."""
    categories = list(dict.fromkeys(requested))
    if not PER_ACCOUNT:
        return categories
    from airflow.sdk import BaseHook

    from airflow_provider_snowstorm.pipeline_tasks import account_series

    hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
    return account_series(hook, FEATURES_TABLE, categories)


def batch_series(series: Sequence[str]) -> list[str] | list[list[str]]:
    """What each mapped training or scoring task takes: one category at organisation level (a task per category, as
    the UI lists them), lists of ``SERIES_PER_TASK`` series at account level (few tasks for many series)."""
    if not PER_ACCOUNT:
        return list(series)
    return [list(series[start : start + SERIES_PER_TASK]) for start in range(0, len(series), SERIES_PER_TASK)]


# A mapped task's label in the UI: its category, or its batch's size and first series.
SERIES_LABEL = (
    "{{ task.series if task.series is string "
    "else (task.series | length) ~ ' series from ' ~ task.series[0] }}"
)


@task
def cost_models(params: dict[str, Any]) -> list[str]:
    """The series of the ``cost_models`` param (``modelled_series``): what monitoring watches."""
    return modelled_series(params["cost_models"])


@task
def series_batches(series: list[str]) -> list[str] | list[list[str]]:
    """The series as mapped training or scoring tasks take them (``batch_series``)."""
    return batch_series(series)


def run_day(context: Mapping[str, Any]) -> date:
    """The day a run is for: its data interval's end, else its logical date, else when it was due to run.

    A run triggered by hand or through the REST API with ``logical_date: null`` has neither a data interval nor a
    logical date (Airflow 3 leaves both out of the context); every run has ``dag_run.run_after``.
    """
    return run_time(context).date()


def run_time(context: Mapping[str, Any]) -> datetime:
    """When a run is for: its data interval's end, else its logical date, else ``dag_run.run_after``."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if isinstance(value, datetime):
            return value
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None)
    if isinstance(run_after, datetime):
        return run_after
    raise ValueError(
        "the run has no data interval, logical date or run_after: cannot tell which day it is for"
    )


# -- The hourly warehouse path (issue 14): the snowstorm_warehouse_* DAGs ---------------------------------------------
# Hourly metering per warehouse (or the ORGANIZATION_USAGE twin across accounts).
METERING_SOURCE_TABLE = validate_table_name(
    _setting("METERING_SOURCE_TABLE", "SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY"),
    what="SNOWSTORM_METERING_SOURCE_TABLE",
)
# The account of an ACCOUNT_USAGE source's rows (it has no ACCOUNT_NAME column); empty: the connection's account.
METERING_ACCOUNT = _setting("METERING_ACCOUNT", "").strip().upper() or None
METERING_TABLE = f"{DATABASE}.{SCHEMA}.WAREHOUSE_METERING_HISTORY"
WAREHOUSE_FEATURES_TABLE = f"{DATABASE}.{SCHEMA}.WAREHOUSE_HOURLY_FEATURES"
WAREHOUSE_PREDICTIONS_TABLE = f"{DATABASE}.{SCHEMA}.WAREHOUSE_HOURLY_PREDICTIONS"
WAREHOUSE_INCIDENTS_TABLE = f"{DATABASE}.{SCHEMA}.WAREHOUSE_INCIDENTS"
# Warehouses trained per mapped task instance (one W&B run each): many warehouses, few task instances.
WAREHOUSE_CHUNK_SIZE = int(_setting("WAREHOUSE_CHUNK_SIZE", "25"))

warehouse_features = Asset(f"snowstorm_warehouse_features__{DATABASE.lower()}_{SCHEMA.lower()}")
warehouse_models = Asset(f"snowstorm_warehouse_models__{DATABASE.lower()}_{SCHEMA.lower()}")


def run_hour(context: Mapping[str, Any]) -> datetime:
    """The hour a run is for (UTC, naive): the start of the hour of its data interval's end, else of its logical
    date, else of ``run_after`` (``run_time``). Hours before it are complete."""
    value = run_time(context)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(minute=0, second=0, microsecond=0)
