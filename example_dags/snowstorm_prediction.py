"""Prediction, alerting and monitoring: score the latest days of every cost category with its production model,
score the challenger in shadow, send one grouped report, and trigger retraining when a model drifts.

Runs daily (midnight UTC) and whenever new features or a new model arrive. Scoring uses each category's
``production`` registry model (moved only by ``snowstorm_promotion``) and replaces the window's rows in the
predictions table (idempotent); every row names the model version and the W&B run that trained it. The
``challenger`` model scores the same window into the shadow table: kept apart, never alerted on. The report groups
anomalies into incidents, in the one monitored currency, says which days are still settling and which were
re-scored, and is always written to a file; it goes to Slack when the ``slack_api_default`` connection exists. Days
that Snowflake restated after they were scored (month-close corrections, recorded by data engineering) are re-scored
with the production model, so the predictions follow the corrected data. Monitoring checks data drift (level, weekly
profile, missing or late days, new usage types), score drift
(alarm rate against the budget) and model age; on drift it emits the drift Asset and triggers ``snowstorm_training``
with the reason in its conf.

With ``SNOWSTORM_SERIES_LEVEL=account`` every category is scored per account (``PROD:compute``, ...), in batches of
``SNOWSTORM_SERIES_PER_TASK`` series per mapped task, and each incident's root cause is its account's usage.

A run with a logical date (scheduled, or one of ``airflow backfill create``'s runs) scores the window ending on that
day; a backfill run writes rows only (no report, no monitoring), equal to the daily runs' rows for the same days.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import (
    DAG,
    AssetOrTimeSchedule,
    BaseHook,
    CronTriggerTimetable,
    Param,
    get_current_context,
    task,
)

from airflow_provider_snowstorm.core.report import data_notes
from airflow_provider_snowstorm.example_pipeline import (
    CHALLENGER_ALIAS,
    CURRENCY,
    DEFAULT_ARGS,
    FEATURES_LAYOUT,
    FEATURES_TABLE,
    FEEDBACK_TABLE,
    PREDICTIONS_TABLE,
    RAW_USAGE_TABLE,
    REPORT_PATH,
    RESTATEMENTS_TABLE,
    ROOT_CAUSES_TABLE,
    SCORING_QUEUE,
    SERIES_LABEL,
    SETTLE_DAYS,
    SHADOW_PREDICTIONS_TABLE,
    SLACK_CHANNEL,
    SLACK_CONN_ID,
    SNOWFLAKE_CONN_ID,
    WANDB_CONN_ID,
    cost_models,
    cost_models_param,
    drift,
    features,
    isolation_forest_model,
    series_batches,
)
from airflow_provider_snowstorm.notifications.anomaly_report import send_anomaly_report
from airflow_provider_snowstorm.notifications.base import as_result_list
from airflow_provider_snowstorm.operators.monitor import ModelDriftOperator
from airflow_provider_snowstorm.operators.score import BatchScoreOperator, results_table_ddl
from airflow_provider_snowstorm.pipeline_tasks import (
    create_restatements_table_sql,
    monitored_currency,
    read_report_usage,
    restated_days_to_rescore,
    settling_days,
    write_root_causes,
)
from airflow_provider_snowstorm.registry import PRODUCTION_ALIAS

BASELINE_WEEKS = 4  # the report's root cause: same weekday, this many weeks before each incident
# A run with a logical date (scheduled or backfilled) scores the window ending that day; others the last feature day.
WINDOW_END = (
    "{{ params.window_end or (dag_run.logical_date.strftime('%Y-%m-%d') if dag_run.logical_date else '') }}"
)
# The last feature day a run should find: its day minus the days feature engineering leaves to settle (later is drift).
EXPECTED_LAST_FEATURE_DAY = (
    "{{ macros.ds_add((dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d'), -"
    + str(SETTLE_DAYS)
    + ") }}"
)
# A backfill run writes predictions only: no W&B run per day, no shadow scoring, no report, no monitoring.
NOT_BACKFILL = "{{ dag_run.run_type != 'backfill' }}"

with DAG(
    dag_id="snowstorm_prediction",
    description="Batch-score recent days and report cost anomalies",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 0 * * *", timezone="UTC"),
        assets=(features | isolation_forest_model),
    ),
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
        "drift_days": Param(
            28, type="integer", minimum=7, description="Days the drift check looks back over."
        ),
    },
    tags=["snowstorm", "prediction", "alerting"],
    doc_md=__doc__,
) as dag:
    # The series of the categories, and what each mapped scoring task takes (a category, or a batch of series).
    modelled = cost_models()
    batches = series_batches(modelled)
    # Scoring, shadow scoring and re-scoring differ only in the model, the table and the window.
    scoring = {
        "map_index_template": SERIES_LABEL,  # the UI shows the cost category, not 0, 1, ...
        "queue": SCORING_QUEUE,
        "conn_id": SNOWFLAKE_CONN_ID,
        "features_table": FEATURES_TABLE,
        "features_layout": FEATURES_LAYOUT,
        "wandb_conn_id": WANDB_CONN_ID,
    }
    scored = BatchScoreOperator.partial(
        task_id="score",
        results_table=PREDICTIONS_TABLE,
        model_alias=PRODUCTION_ALIAS,
        window_days="{{ params.window_days }}",
        window_end=WINDOW_END,
        log_to_wandb=NOT_BACKFILL,
        **scoring,
    ).expand(series=batches)
    # The challenger in shadow: same window, its own table, never in the report; skipped where none was trained.
    shadow = BatchScoreOperator.partial(
        task_id="shadow_score",
        results_table=SHADOW_PREDICTIONS_TABLE,
        model_alias=CHALLENGER_ALIAS,
        skip_missing_model=True,
        window_days="{{ params.window_days }}",
        window_end=WINDOW_END,
        **scoring,
    ).expand(series=batches)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def alerting_run(dag_run: Any = None) -> bool:
        """A backfill run writes predictions only: no shadow scoring, report or monitoring (each day had them)."""
        return dag_run.run_type != "backfill"

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
    def report(restated: dict[str, Any], check: dict[str, Any], ti: Any = None) -> dict[str, Any]:
        """One report for every category: each incident's root cause from the per-account usage rows, the drift
        that triggers retraining, and how to mark incidents real or false alarms (the evaluation's labels)."""
        # Pulled once, for the root causes and the report alike (one category's result arrives unwrapped).
        results = as_result_list(
            ti.xcom_pull(task_ids="score", key="return_value"), "the return value (XCom) of task 'score'"
        )
        scored = [result for result in results if result]
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        currency, other_currencies = monitored_currency(hook, RAW_USAGE_TABLE, CURRENCY)
        usage = None
        if scored:
            # The scored window and the weeks before it: each account and usage type's own baseline.
            usage = read_report_usage(hook, RAW_USAGE_TABLE, scored, BASELINE_WEEKS, currency=currency)
        notes = data_notes(
            settling=settling_days(hook, RAW_USAGE_TABLE, FEATURES_TABLE),
            restated=restated["days"],
            other_currencies=other_currencies,
            drift=check["reason"] if check["drifted"] else None,
        )
        delivery = send_anomaly_report(
            get_current_context(),
            results=results,
            report_path=REPORT_PATH or None,
            slack_conn_id=SLACK_CONN_ID,
            channel=SLACK_CHANNEL,
            currency=currency,
            usage=usage,
            notes=notes,
            feedback_table=FEEDBACK_TABLE,
        )
        if scored:
            write_root_causes(hook, ROOT_CAUSES_TABLE, scored, usage)
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
        results_table=PREDICTIONS_TABLE,
        model_alias=PRODUCTION_ALIAS,
        window_start="{{ ti.xcom_pull(task_ids='restated_days')['start'] }}",
        window_end="{{ ti.xcom_pull(task_ids='restated_days')['end'] }}",
        **scoring,
    ).expand(series=batches)

    monitor = ModelDriftOperator(
        task_id="monitor",
        series=modelled,
        conn_id=SNOWFLAKE_CONN_ID,
        features_table=FEATURES_TABLE,
        features_layout=FEATURES_LAYOUT,
        results_table=PREDICTIONS_TABLE,
        window_days="{{ params.drift_days }}",
        window_end=WINDOW_END,
        limits={"max_age_days": "{{ params.retrain_after_days }}"},
        expected_last_day=EXPECTED_LAST_FEATURE_DAY,
        drift_asset=drift,
        wandb_conn_id=WANDB_CONN_ID,
    )

    @task.short_circuit
    def drifted(check: dict[str, Any]) -> bool:
        """Continue to the retraining trigger only when something drifted past its limits (the monitor logs why)."""
        return bool(check["drifted"]) and bool(check["cost_models"])

    retrain = TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id="snowstorm_training",
        conf={
            "cost_models": "{{ ti.xcom_pull(task_ids='monitor')['cost_models'] }}",
            "reason": "{{ ti.xcom_pull(task_ids='monitor')['reason'] }}",
        },
        wait_for_completion=False,
    )

    gate = alerting_run()
    restated = restated_days()
    scored >> gate >> [shadow, restated, monitor]
    report(restated, monitor.output)
    any_restated(restated) >> rescored
    drifted(monitor.output) >> retrain
