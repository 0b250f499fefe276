"""Hourly warehouse models: one ``DecomposeIsolationForest`` per warehouse, trained by mapping over chunks.

Manual (retrain weekly, or after a warehouse changes for good). Reads ``training_days`` of hourly features up to
``training_end`` (default: the run's hour), splits the warehouses into chunks of ``SNOWSTORM_WAREHOUSE_CHUNK_SIZE``
(25) and trains each chunk in one mapped task (one W&B run per chunk): each warehouse gets its own model,
``snowstorm-warehouse-<name>`` in the registry, aliased ``latest``. The hourly defaults
(``core.warehouse.DEFAULT_HOURLY_PARAMS``: a 168-hour period holding the daily and the weekly pattern, rises only)
can be overridden with ``detector_params``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, BaseHook, Param, get_current_context, task

from airflow_provider_snowstorm.example_pipeline import (
    DEFAULT_ARGS,
    SNOWFLAKE_CONN_ID,
    WANDB_CONN_ID,
    WAREHOUSE_CHUNK_SIZE,
    WAREHOUSE_FEATURES_TABLE,
    run_hour,
    warehouse_models,
)
from airflow_provider_snowstorm.warehouse_tasks import (
    read_hourly_features,
    train_warehouses,
    warehouse_chunks,
)


def _training_window(params: dict[str, Any], context: Any) -> tuple[datetime, datetime]:
    end = datetime.fromisoformat(params["training_end"]) if params["training_end"] else run_hour(context)
    return end - timedelta(days=int(params["training_days"])), end - timedelta(hours=1)


with DAG(
    dag_id="snowstorm_warehouse_training",
    description="Train one hourly anomaly model per warehouse",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "training_days": Param(
            56, type="integer", minimum=21, description="Days of hourly history per model."
        ),
        "training_end": Param(
            None,
            type=["null", "string"],
            description="First hour not trained on (ISO, UTC); default the run's hour.",
        ),
        "detector_params": Param({}, type="object", description="Overrides of DEFAULT_HOURLY_PARAMS."),
    },
    tags=["snowstorm", "training", "hourly"],
    doc_md=__doc__,
) as dag:

    @task(task_id="warehouse_chunks")
    def chunk_warehouses(params: dict[str, Any], **context: Any) -> list[list[str]]:
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        _start, end = _training_window(params, context)
        names = list(read_hourly_features(hook, WAREHOUSE_FEATURES_TABLE, start=end, end=end).columns)
        return warehouse_chunks(names, WAREHOUSE_CHUNK_SIZE)

    @task(outlets=[warehouse_models], map_index_template="{{ warehouses_label }}")
    def train(warehouses: list[str], params: dict[str, Any], **context: Any) -> list[dict[str, Any]]:
        from airflow_provider_snowstorm.core.warehouse import DEFAULT_HOURLY_PARAMS
        from airflow_provider_snowstorm.hooks.wandb import WandbHook

        get_current_context()["warehouses_label"] = ", ".join(warehouses)
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        start, end = _training_window(params, context)
        features = read_hourly_features(
            hook, WAREHOUSE_FEATURES_TABLE, start=start, end=end, warehouses=warehouses
        )
        return train_warehouses(
            WandbHook(wandb_conn_id=WANDB_CONN_ID),
            features,
            params={**DEFAULT_HOURLY_PARAMS, "random_state": 0, **params["detector_params"]},
            dag_run_id=context["run_id"],
            run_name=f"train-warehouses-{warehouses[0].lower().replace(':', '.')}",
        )

    train.expand(warehouses=chunk_warehouses())
