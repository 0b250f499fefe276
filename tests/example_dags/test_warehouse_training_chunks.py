"""The hourly training DAG maps over chunks of warehouses (issue 14: many warehouses, few task instances)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_snowstorm.warehouse_tasks import warehouse_chunks

TRAINING_DAG = Path(__file__).parents[2] / "example_dags" / "snowstorm_warehouse_training.py"


def test_chunks_hold_at_most_the_chunk_size_and_every_warehouse_once() -> None:
    series = [f"PROD:WH_{number:02d}" for number in range(7)] + ["ANALYTICS:WH_00"]
    chunks = warehouse_chunks(series, 3)
    assert [len(chunk) for chunk in chunks] == [3, 3, 2]
    assert [name for chunk in chunks for name in chunk] == series
    assert warehouse_chunks(series, 25) == [series]
    assert warehouse_chunks([], 25) == []
    for size in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="SNOWSTORM_WAREHOUSE_CHUNK_SIZE"):
            warehouse_chunks(series, size)


def test_the_training_dag_maps_its_train_task_over_the_chunks(airflow_db: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    bag = DagBag(dag_folder=str(TRAINING_DAG))
    assert not bag.import_errors
    dag = bag.get_dag("snowstorm_warehouse_training")
    train = dag.get_task("train")
    assert isinstance(train, MappedOperator)
    assert {task.task_id for task in train.upstream_list} == {"warehouse_chunks"}
