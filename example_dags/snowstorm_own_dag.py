"""A DAG of your own: daily cost features from any Airflow SQL connection, train, score, and report the anomalies.

Copy this file into your DAGs folder and point it at your data; nothing else of the example pipeline is needed.

- **Features**: one row per day, a date column (``USAGE_DATE``) and one numeric column per cost series, read
  through any Airflow SQL connection (Snowflake, PostgreSQL, SQLite, ...; a database other than Snowflake needs its
  own Airflow provider installed). Name a table (``SNOWSTORM_OWN_FEATURES_TABLE``) or give a query
  (``SNOWSTORM_OWN_FEATURES_SQL``, which wins when set).
- **Train**: ``DecomposeIsolationForestOperator``, one model per series (mapped; W&B offline without an account).
- **Score**: ``BatchScoreOperator`` scores the last ``window_days`` days with each series' ``latest`` model and
  replaces that window's rows in the predictions table.
- **Notify**: ``send_anomaly_report`` (the ``AnomalyReportNotifier`` called from a task, so a failed delivery fails
  the task and its retry resumes where Slack stopped) writes the markdown report and chart, posts to Slack when the
  Slack connection exists, and emails it when ``SNOWSTORM_OWN_EMAIL_TO`` is set.

Settings are environment variables read when the file is parsed: ``SNOWSTORM_OWN_CONN_ID`` (``snowflake_default``),
``SNOWSTORM_OWN_FEATURES_TABLE``, ``SNOWSTORM_OWN_FEATURES_SQL``, ``SNOWSTORM_OWN_PREDICTIONS_TABLE``,
``SNOWSTORM_OWN_SERIES`` (comma separated, ``total_usage,compute``), ``SNOWSTORM_OWN_EMAIL_TO``, and the example
pipeline's ``SNOWSTORM_WANDB_CONN_ID``, ``SNOWSTORM_SLACK_CONN_ID``, ``SNOWSTORM_SLACK_CHANNEL``,
``SNOWSTORM_REPORT_PATH``. Trigger it by hand (params ``training_end``, ``window_end``, ``window_days``) or give it a
schedule.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_snowstorm.notifications.anomaly_report import send_anomaly_report
from airflow_provider_snowstorm.operators.score import BatchScoreOperator
from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator

CONN_ID = os.environ.get("SNOWSTORM_OWN_CONN_ID", "snowflake_default")
FEATURES_SQL = os.environ.get("SNOWSTORM_OWN_FEATURES_SQL", "").strip() or None
FEATURES_TABLE = (
    None
    if FEATURES_SQL
    else os.environ.get("SNOWSTORM_OWN_FEATURES_TABLE", "SNOWSTORM.ANALYTICS.DAILY_COST_FEATURES")
)
PREDICTIONS_TABLE = os.environ.get(
    "SNOWSTORM_OWN_PREDICTIONS_TABLE", "SNOWSTORM.ANALYTICS.OWN_COST_ANOMALY_PREDICTIONS"
)
SERIES = [
    name.strip()
    for name in os.environ.get("SNOWSTORM_OWN_SERIES", "total_usage,compute").split(",")
    if name.strip()
]
WANDB_CONN_ID = os.environ.get("SNOWSTORM_WANDB_CONN_ID", "wandb_default")
SLACK_CONN_ID = os.environ.get("SNOWSTORM_SLACK_CONN_ID", "slack_api_default")
SLACK_CHANNEL = os.environ.get("SNOWSTORM_SLACK_CHANNEL", "#snowflake-costs")
EMAIL_TO = os.environ.get("SNOWSTORM_OWN_EMAIL_TO") or None
REPORT_PATH = (
    os.environ.get("SNOWSTORM_REPORT_PATH") or None
)  # None: $AIRFLOW_HOME/snowstorm/reports/<dag>/<run>
MODEL_PREFIX = "own-costs"  # registry names own-costs-<series>: apart from the example pipeline's models

# Where the features come from: the same for training and scoring.
FEATURE_SOURCE: dict[str, Any] = {"conn_id": CONN_ID, "features_table": FEATURES_TABLE, "sql": FEATURES_SQL}

with DAG(
    dag_id="snowstorm_own_dag",
    description="Your own cost anomaly DAG: features from any SQL connection, train, score, report",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,  # window_days renders to an int
    params={
        "training_end": Param(
            None, type=["null", "string"], format="date", description="Last training day (default: all)."
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last scored day (default: last feature day).",
        ),
        "window_days": Param(7, type="integer", minimum=1, description="Days scored, ending at window_end."),
    },
    tags=["snowstorm", "example"],
    doc_md=__doc__,
) as dag:
    train = DecomposeIsolationForestOperator.partial(
        task_id="train",
        map_index_template="{{ task.series }}",
        **FEATURE_SOURCE,
        training_end="{{ params.training_end or '' }}",
        detector_params={"alarm_budget": 0.1, "random_state": 0},
        model_prefix=MODEL_PREFIX,
        wandb_conn_id=WANDB_CONN_ID,
    ).expand(series=SERIES)

    score = BatchScoreOperator.partial(
        task_id="score",
        map_index_template="{{ task.series }}",
        **FEATURE_SOURCE,
        results_table=PREDICTIONS_TABLE,
        window_end="{{ params.window_end or '' }}",
        window_days="{{ params.window_days }}",
        model_prefix=MODEL_PREFIX,
        wandb_conn_id=WANDB_CONN_ID,
    ).expand(series=SERIES)

    @task
    def notify() -> dict[str, Any]:
        """One report for every series: the file always, Slack when its connection exists, email when asked."""
        delivery = send_anomaly_report(
            get_current_context(),
            score_task_id="score",
            report_path=REPORT_PATH,
            slack_conn_id=SLACK_CONN_ID,
            channel=SLACK_CHANNEL,
            email_to=EMAIL_TO,
        )
        return {
            "report": delivery.markdown_path,
            "chart": delivery.chart_path,
            "incidents": delivery.incidents,
            "slack_channel": delivery.slack_channel,
        }

    train >> score >> notify()
