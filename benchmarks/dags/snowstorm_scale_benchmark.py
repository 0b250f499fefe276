"""The cluster speed-up benchmark's DAGs (``benchmarks/cluster_speedup.py`` copies this file into the cluster's DAG
folder; it is not an example DAG).

Both read the series of a long features table (``USAGE_DATE, SERIES, VALUE``) and split them, sorted, into
``chunks`` chunks (``core.chunking.chunk_series``), one mapped task each:

- ``snowstorm_scale_benchmark_train`` (set-up, not timed): ``DecomposeIsolationForestOperator(chunk_model=True,
  features_layout="long")`` fits one model per chunk on ``training_start``..``training_end``;
- ``snowstorm_scale_benchmark_score`` (timed): ``BatchScoreOperator(chunk_model=True, features_layout="long")``
  scores ``window_start``..``window_end`` of each chunk with its model and writes the rows in bulk into
  ``results_table`` (no W&B run: the benchmark times scoring, not W&B's offline files).

Every setting is a param, set by the benchmark in the run's conf.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseHook, Param, get_current_context, task

from airflow_provider_snowstorm.core.chunking import chunk_series
from airflow_provider_snowstorm.operators.score import BatchScoreOperator
from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator
from airflow_provider_snowstorm.utils.sql import distinct_values

CONN_ID = "snowflake_default"
FEATURES_TABLE = "SNOWSTORM.ANALYTICS.SCALE_FEATURES_LONG"
RESULTS_TABLE = "SNOWSTORM.ANALYTICS.SCALE_PREDICTIONS"
# Failures show as they are: a retry would hide a slow or failed try in the timings.
DEFAULT_ARGS: dict[str, Any] = {"retries": 0}
PARAMS = {
    "chunks": Param(8, type="integer", minimum=1, description="mapped tasks (chunks of series)"),
    "training_start": Param("2025-11-20", type="string", description="first day of training history"),
    "training_end": Param("2026-11-19", type="string", description="last day of training history"),
    "window_start": Param("2026-11-20", type="string", description="first day scored"),
    "window_end": Param("2026-11-26", type="string", description="last day scored"),
}


@task
def plan() -> list[list[str]]:
    """The table's series, sorted, in ``chunks`` chunks of equal size (training and scoring get the same lists)."""
    hook = BaseHook.get_connection(CONN_ID).get_hook()
    series = distinct_values(hook, FEATURES_TABLE, "SERIES")
    chunks = int(get_current_context()["params"]["chunks"])
    return chunk_series(series, math.ceil(len(series) / chunks))


# What both DAGs share: the DAG's settings, and how the operators read a chunk and find its one model.
DAG_ARGUMENTS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2026, 1, 1),
    "catchup": False,
    "default_args": DEFAULT_ARGS,
    "params": PARAMS,
    "tags": ["snowstorm", "benchmark"],
}
CHUNKED: dict[str, Any] = {
    "conn_id": CONN_ID,
    "features_table": FEATURES_TABLE,
    "features_layout": "long",
    "chunk_model": True,
}


with DAG(
    dag_id="snowstorm_scale_benchmark_train",
    description="Cluster speed-up benchmark, set-up: one model per chunk of series (not timed)",
    **DAG_ARGUMENTS,
):
    DecomposeIsolationForestOperator.partial(
        task_id="train",
        **CHUNKED,
        training_start="{{ params.training_start }}",
        training_end="{{ params.training_end }}",
    ).expand(series=plan())


with DAG(
    dag_id="snowstorm_scale_benchmark_score",
    description="Cluster speed-up benchmark: score every chunk of series with its model (timed)",
    **DAG_ARGUMENTS,
):
    BatchScoreOperator.partial(
        task_id="score",
        **CHUNKED,
        window_start="{{ params.window_start }}",
        window_end="{{ params.window_end }}",
        results_table=RESULTS_TABLE,
        log_to_wandb=False,
    ).expand(series=plan())
