"""Prediction, alerting and monitoring: score the latest days of every cost category, send one grouped report,
and trigger retraining when a model has grown stale.

Scheduled whenever new features or a new model arrive. Scoring uses each category's ``latest`` registry model and
replaces the window's rows in the predictions table (idempotent). The report groups anomalies into incidents and is
always written to a file; it goes to Slack when the ``slack_api_default`` connection exists. When a model's training
data ends more than ``retrain_after_days`` before the scored window's end, ``snowstorm_training`` is triggered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, BaseHook, Param, get_current_context, task

from airflow_provider_snowstorm.example_pipeline import (
    DEFAULT_ARGS,
    FEATURES_TABLE,
    PREDICTIONS_TABLE,
    RAW_USAGE_TABLE,
    REPORT_PATH,
    ROOT_CAUSES_TABLE,
    SLACK_CHANNEL,
    SLACK_CONN_ID,
    SNOWFLAKE_CONN_ID,
    WANDB_CONN_ID,
    cost_models,
    cost_models_param,
    features,
    isolation_forest_model,
)
from airflow_provider_snowstorm.notifications.anomaly_report import send_anomaly_report
from airflow_provider_snowstorm.operators.score import BatchScoreOperator
from airflow_provider_snowstorm.pipeline_tasks import read_report_usage, stale_models, write_root_causes

BASELINE_WEEKS = 4  # the report's root cause: same weekday, this many weeks before each incident

with DAG(
    dag_id="snowstorm_prediction",
    description="Batch-score recent days and report cost anomalies",
    schedule=(features | isolation_forest_model),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    params={
        "cost_models": cost_models_param(),
        "window_days": Param(7, type="integer", minimum=1, description="Days scored, ending at window_end."),
        "window_end": Param(
            None, type=["null", "string"], format="date", description="Default: last feature day."
        ),
        "retrain_after_days": Param(
            35,
            type="integer",
            minimum=1,
            description="Retrain when a model's training data is older than this.",
        ),
    },
    tags=["snowstorm", "prediction", "alerting"],
    doc_md=__doc__,
) as dag:
    scored = BatchScoreOperator.partial(
        task_id="score",
        map_index_template="{{ task.series }}",  # the UI shows the cost category, not 0, 1, ...
        conn_id=SNOWFLAKE_CONN_ID,
        features_table=FEATURES_TABLE,
        results_table=PREDICTIONS_TABLE,
        window_days="{{ params.window_days }}",
        window_end="{{ params.window_end or '' }}",
        wandb_conn_id=WANDB_CONN_ID,
    ).expand(series=cost_models())

    @task
    def report(ti: Any = None) -> dict[str, Any]:
        """One report for every category; each incident's root cause from the per-account usage rows."""
        results = [result for result in ti.xcom_pull(task_ids="score", key="return_value") or [] if result]
        usage = None
        if results:
            hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
            # The scored window and the weeks before it: each account and usage type's own baseline.
            usage = read_report_usage(hook, RAW_USAGE_TABLE, results, BASELINE_WEEKS)
        delivery = send_anomaly_report(
            get_current_context(),
            score_task_id="score",
            report_path=REPORT_PATH or None,
            slack_conn_id=SLACK_CONN_ID,
            channel=SLACK_CHANNEL,
            usage=usage,
        )
        if results:
            write_root_causes(hook, ROOT_CAUSES_TABLE, results, usage)
        return {
            "report": str(delivery.markdown_path),
            "chart": str(delivery.chart_path) if delivery.chart_path else None,
            "incidents": delivery.incidents,
            "slack_channel": delivery.slack_channel,
        }

    @task.short_circuit
    def models_are_stale(params: dict[str, Any], ti: Any = None) -> bool:
        """Monitoring: continue to the retraining trigger only when some model's training data is too old."""
        results = ti.xcom_pull(task_ids="score", key="return_value")
        stale, message = stale_models(results, params["retrain_after_days"])
        print(message)
        return bool(stale)

    retrain = TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id="snowstorm_training",
        conf={"cost_models": "{{ params.cost_models }}"},
        wait_for_completion=False,
    )

    scored >> report()
    scored >> models_are_stale() >> retrain
