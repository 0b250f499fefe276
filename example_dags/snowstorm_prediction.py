"""Prediction, alerting and monitoring: score the latest days of every cost category, send one grouped report,
and trigger retraining when a model has grown stale.

Scheduled whenever new features or a new model arrive. Scoring uses each category's ``latest`` registry model and
replaces the window's rows in the predictions table (idempotent). Days that Snowflake restated after they were
scored (month-close corrections, recorded by data engineering) are re-scored the same way, so the predictions follow
the corrected data. The report groups anomalies into incidents, in the one monitored currency, says which days are
still settling and which were re-scored, and is always written to a file; it goes to Slack when the
``slack_api_default`` connection exists. When a model's training data ends more than ``retrain_after_days`` before
the scored window's end, ``snowstorm_training`` is triggered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, BaseHook, Param, get_current_context, task

from airflow_provider_snowstorm.core.report import data_notes
from airflow_provider_snowstorm.example_pipeline import (
    CURRENCY,
    DEFAULT_ARGS,
    FEATURES_TABLE,
    PREDICTIONS_TABLE,
    RAW_USAGE_TABLE,
    REPORT_PATH,
    RESTATEMENTS_TABLE,
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
from airflow_provider_snowstorm.operators.score import BatchScoreOperator, results_table_ddl
from airflow_provider_snowstorm.pipeline_tasks import (
    create_restatements_table_sql,
    monitored_currency,
    read_report_usage,
    restated_days_to_rescore,
    settling_days,
    stale_models,
    write_root_causes,
)

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
    categories = cost_models()
    scored = BatchScoreOperator.partial(
        task_id="score",
        map_index_template="{{ task.series }}",  # the UI shows the cost category, not 0, 1, ...
        conn_id=SNOWFLAKE_CONN_ID,
        features_table=FEATURES_TABLE,
        results_table=PREDICTIONS_TABLE,
        window_days="{{ params.window_days }}",
        window_end="{{ params.window_end or '' }}",
        wandb_conn_id=WANDB_CONN_ID,
    ).expand(series=categories)

    @task
    def restated_days() -> dict[str, Any]:
        """Days restated after they were scored (the window just scored is newer, so never among them)."""
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        hook.run([create_restatements_table_sql(RESTATEMENTS_TABLE), results_table_ddl(PREDICTIONS_TABLE)])
        days = restated_days_to_rescore(hook, RESTATEMENTS_TABLE, PREDICTIONS_TABLE, FEATURES_TABLE)
        return {
            "days": [day.isoformat() for day in days],
            "start": days[0].isoformat() if days else None,
            "end": days[-1].isoformat() if days else None,
        }

    @task
    def report(restated: dict[str, Any], ti: Any = None) -> dict[str, Any]:
        """One report for every category; each incident's root cause from the per-account usage rows."""
        results = [result for result in ti.xcom_pull(task_ids="score", key="return_value") or [] if result]
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        currency, other_currencies = monitored_currency(hook, RAW_USAGE_TABLE, CURRENCY)
        usage = None
        if results:
            # The scored window and the weeks before it: each account and usage type's own baseline.
            usage = read_report_usage(hook, RAW_USAGE_TABLE, results, BASELINE_WEEKS, currency=currency)
        notes = data_notes(
            settling=settling_days(hook, RAW_USAGE_TABLE, FEATURES_TABLE),
            restated=restated["days"],
            other_currencies=other_currencies,
        )
        delivery = send_anomaly_report(
            get_current_context(),
            score_task_id="score",
            report_path=REPORT_PATH or None,
            slack_conn_id=SLACK_CONN_ID,
            channel=SLACK_CHANNEL,
            currency=currency,
            usage=usage,
            notes=notes,
        )
        if results:
            write_root_causes(hook, ROOT_CAUSES_TABLE, results, usage)
        return {
            "report": str(delivery.markdown_path),
            "chart": str(delivery.chart_path) if delivery.chart_path else None,
            "incidents": delivery.incidents,
            "slack_channel": delivery.slack_channel,
            "notes": notes,
        }

    @task.short_circuit
    def any_restated(restated: dict[str, Any]) -> bool:
        """Continue to re-scoring only when Snowflake restated days that were already scored."""
        return bool(restated["days"])

    rescored = BatchScoreOperator.partial(
        task_id="rescore_restated",
        map_index_template="{{ task.series }}",
        conn_id=SNOWFLAKE_CONN_ID,
        features_table=FEATURES_TABLE,
        results_table=PREDICTIONS_TABLE,
        window_start="{{ ti.xcom_pull(task_ids='restated_days')['start'] }}",
        window_end="{{ ti.xcom_pull(task_ids='restated_days')['end'] }}",
        wandb_conn_id=WANDB_CONN_ID,
    ).expand(series=categories)

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

    restated = restated_days()
    scored >> restated >> report(restated)
    any_restated(restated) >> rescored
    scored >> models_are_stale() >> retrain
