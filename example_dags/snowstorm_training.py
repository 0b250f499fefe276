"""Training: one DecomposeIsolationForest model per cost category, in parallel with dynamic task mapping.

Triggered manually, or by monitoring: ``snowstorm_prediction`` triggers it when a model is older than its
``retrain_after_days``. The categories come from the model Asset's ``cost_models`` extra, overridable by the
``cost_models`` param. Every model of one run shares the W&B group (the DAG run id), is registered with the aliases
``latest`` and the DAG run id, and a retry replaces its own version. Emits the model Asset, which schedules
prediction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_snowstorm.example_pipeline import (
    DEFAULT_ARGS,
    FEATURES_TABLE,
    SNOWFLAKE_CONN_ID,
    WANDB_CONN_ID,
    cost_models,
    cost_models_param,
    isolation_forest_model,
)
from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator

with DAG(
    dag_id="snowstorm_training",
    description="Train one anomaly model per cost category and register it in W&B",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    params={
        "cost_models": cost_models_param(),
        "training_end": Param(None, type=["null", "string"], format="date", description="Last training day."),
        "alarm_budget": Param(
            0.1,
            type="number",
            exclusiveMinimum=0,
            description="False alarms per cost category per month accepted on normal data.",
        ),
    },
    tags=["snowstorm", "training", "mlops"],
    doc_md=__doc__,
) as dag:
    trained = DecomposeIsolationForestOperator.partial(
        task_id="train",
        map_index_template="{{ task.series }}",  # the UI shows the cost category, not 0, 1, ...
        conn_id=SNOWFLAKE_CONN_ID,
        features_table=FEATURES_TABLE,
        training_end="{{ params.training_end or '' }}",
        detector_params={"alarm_budget": "{{ params.alarm_budget }}", "random_state": 0},
        wandb_conn_id=WANDB_CONN_ID,
    ).expand(series=cost_models())

    @task(outlets=[isolation_forest_model])
    def publish_models(summaries: list[dict[str, Any]], outlet_events: Any = None) -> list[dict[str, Any]]:
        # One slice request: iterating the lazy XCom sequence reads until a miss, which Airflow logs as an error.
        models = list(summaries[:])
        outlet_events[isolation_forest_model].extra = {
            "cost_models": [model["series"] for model in models],
            "models": {model["series"]: model["model_version"] for model in models},
            "training_end": max(model["training_end"] for model in models),
        }
        return models

    publish_models(trained.output)
