"""Runs without a logical date, and mapped tasks labelled by cost category (fast checks; the real scheduler's run of
the same is tests/ui/test_readme_standalone.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_snowstorm.example_pipeline import run_day

EXAMPLE_DAGS = Path(__file__).parents[2] / "example_dags"


def test_run_day_prefers_the_data_interval_end() -> None:
    context = {
        "data_interval_end": datetime(2026, 3, 2, tzinfo=UTC),
        "logical_date": datetime(2026, 3, 1, tzinfo=UTC),
        "dag_run": SimpleNamespace(run_after=datetime(2026, 3, 5, tzinfo=UTC)),
    }
    assert run_day(context) == date(2026, 3, 2)


def test_run_day_of_a_manual_run_without_logical_date_is_its_run_after() -> None:
    """Airflow 3 leaves logical_date and the data interval out of such a run's context."""
    context = {"dag_run": SimpleNamespace(logical_date=None, run_after=datetime(2026, 3, 5, 7, tzinfo=UTC))}
    assert run_day(context) == date(2026, 3, 5)


def test_run_day_without_any_date_says_so() -> None:
    with pytest.raises(ValueError, match="run_after"):
        run_day({"dag_run": SimpleNamespace(run_after=None)})


@pytest.mark.parametrize(
    ("dag_id", "task_id", "fields", "label"),
    [
        ("snowstorm_training", "train", {"configuration": "default"}, "compute default"),
        ("snowstorm_training", "evaluate", {"model_version": "v3", "model_alias": None}, "compute v3"),
        ("snowstorm_prediction", "score", {}, "compute"),
        ("snowstorm_prediction", "shadow_score", {}, "compute"),
        ("snowstorm_promotion", "evaluate", {"model_version": "v3", "span": "shadow"}, "compute v3 shadow"),
    ],
)
def test_mapped_tasks_are_labelled_with_their_cost_category_or_batch(
    dag_id: str, task_id: str, fields: dict[str, Any], label: str
) -> None:
    """The UI's label of a mapped task: its category, or at account level its batch's size and first series."""
    import jinja2
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert not bag.import_errors
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
        bag.dags[dag_id].get_task(task_id).map_index_template
    )
    assert template.render(task=SimpleNamespace(series="compute", **fields)) == label
    if dag_id != "snowstorm_promotion":  # promotion compares one series' versions
        batch = SimpleNamespace(series=["DEV:compute", "PROD:compute"], **{**fields, "model_version": None})
        batch.model_alias = "manual__2026-11-28-default"
        rendered = template.render(task=batch)
        assert rendered.startswith("2 series from DEV:compute")
