"""Prediction, alerting and monitoring: score the latest days of every cost category, send one grouped report,
and trigger retraining when a model has grown stale.

Scheduled whenever new features or a new model arrive. Scoring uses each category's ``latest`` registry model and
replaces the window's rows in the predictions table (idempotent). The report groups anomalies into incidents and is
always written to a file; it goes to Slack when the ``slack_api_default`` connection exists. When a model's training
data ends more than ``retrain_after_days`` before the scored window's end, ``snowstorm_training`` is triggered.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, BaseHook, Param, get_current_context, task

from airflow_provider_snowstorm.core.report import ROOT_CAUSE_COLUMNS, build_report, root_cause_records
from airflow_provider_snowstorm.notifications.anomaly_report import send_anomaly_report
from airflow_provider_snowstorm.operators.score import BatchScoreOperator
from airflow_provider_snowstorm.pipeline import (
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
from airflow_provider_snowstorm.utils.sql import read_dataframe, replace_rows

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

    def write_root_causes(results: list[dict[str, Any]], usage: Any) -> None:
        """The report's root causes beside the predictions, replaced per scored window (idempotent)."""
        report = build_report(results, usage=usage)
        start = min(r["window_start"] for r in results)
        end = max(r["window_end"] for r in results)
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        hook.run(
            f"""CREATE TABLE IF NOT EXISTS {ROOT_CAUSES_TABLE} (
                WINDOW_START DATE NOT NULL, WINDOW_END DATE NOT NULL, INCIDENT_START DATE, INCIDENT_END DATE,
                FIRST_ALARM DATE, SERIES VARCHAR, CATEGORIES VARCHAR, DIRECTION VARCHAR, ACCOUNT_NAME VARCHAR,
                USAGE_TYPE VARCHAR, ACTUAL FLOAT, EXPECTED FLOAT, EXTRA_COST FLOAT, SHARE FLOAT, CURRENCY VARCHAR
            )"""
        )
        window = (date.fromisoformat(start), date.fromisoformat(end))
        rows = [(*window, *(record[c] for c in ROOT_CAUSE_COLUMNS)) for record in root_cause_records(report)]
        replace_rows(
            hook,
            ROOT_CAUSES_TABLE,
            ["WINDOW_START", "WINDOW_END", *(c.upper() for c in ROOT_CAUSE_COLUMNS)],
            rows,
            where=f"WINDOW_START = {hook.placeholder} AND WINDOW_END = {hook.placeholder}",
            where_parameters=window,
        )

    @task
    def report(ti: Any = None) -> dict[str, Any]:
        """One report for every category; each incident's root cause from the per-account usage rows."""
        results = [result for result in ti.xcom_pull(task_ids="score", key="return_value") or [] if result]
        usage = None
        if results:
            # The scored window and the weeks before it: each account and usage type's own baseline.
            first = min(date.fromisoformat(r["window_start"]) for r in results) - timedelta(
                weeks=BASELINE_WEEKS + 1
            )
            last = max(date.fromisoformat(r["window_end"]) for r in results)
            usage = read_dataframe(
                BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook(),
                "SELECT USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, CURRENCY, SUM(USAGE_IN_CURRENCY) AS USAGE_IN_CURRENCY "  # noqa: S608
                f"FROM {RAW_USAGE_TABLE} WHERE USAGE_DATE BETWEEN %(first)s AND %(last)s "
                "GROUP BY USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, CURRENCY",
                {"first": first, "last": last},
            )
        delivery = send_anomaly_report(
            get_current_context(),
            score_task_id="score",
            report_path=REPORT_PATH or None,
            slack_conn_id=SLACK_CONN_ID,
            channel=SLACK_CHANNEL,
            usage=usage,
        )
        if results:
            write_root_causes(results, usage)
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
        ages = {
            result["series"]: (
                date.fromisoformat(result["window_end"]) - date.fromisoformat(result["training_end"])
            )
            for result in results
        }
        stale = sorted(series for series, age in ages.items() if age.days > params["retrain_after_days"])
        limit = params["retrain_after_days"]
        ages_text = ", ".join(f"{series} {age.days} days" for series, age in sorted(ages.items()))
        print(
            f"Model age at the window's end: {ages_text}; "
            + (f"older than {limit} days: {', '.join(stale)}" if stale else f"none older than {limit} days")
        )
        return bool(stale)

    retrain = TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id="snowstorm_training",
        conf={"cost_models": "{{ params.cost_models }}"},
        wait_for_completion=False,
    )

    scored >> report()
    scored >> models_are_stale() >> retrain
