"""The drift operator against a registered production model, on SQLite and W&B offline."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset

from airflow_provider_snowstorm.operators.monitor import ModelDriftOperator, drift_alias
from airflow_provider_snowstorm.registry import ModelNotFoundError, ModelRegistry
from tests.operators.conftest import FEATURES_TABLE, RESULTS_TABLE, score_operator, train_operator

DRIFT = Asset("drift_test")


class OutletEvents(dict):
    """What the task SDK hands a task as ``outlet_events``: an accessor per outlet, recording ``add`` calls."""

    def __missing__(self, key: Any) -> Any:
        accessor = self[key] = _Accessor()
        return accessor


class _Accessor:
    def __init__(self) -> None:
        self.added: list[tuple[Asset, dict[str, Any]]] = []

    def add(self, asset: Asset, extra: dict[str, Any]) -> None:
        self.added.append((asset, extra))


def monitor(**overrides: Any) -> ModelDriftOperator:
    arguments: dict[str, Any] = {
        "task_id": "monitor",
        "series": ["compute"],
        "conn_id": "features_db",
        "features_table": FEATURES_TABLE,
        "window_end": "2025-07-18",
        "drift_asset": DRIFT,
    }
    return ModelDriftOperator(**{**arguments, **overrides})


@pytest.fixture
def production(features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]) -> dict[str, Any]:
    trained = train_operator(configuration="default").execute(context)
    ModelRegistry().move_alias(
        "snowstorm-compute", "production", trained["model_version"], record={"by": "test"}
    )
    context["outlet_events"] = OutletEvents()
    return trained


def test_the_task_declares_the_drift_alias_as_its_outlet() -> None:
    assert monitor().outlets == [drift_alias(DRIFT)]


def test_recent_data_like_training_data_emits_no_drift_event(production, context) -> None:
    result = monitor(limits={"max_age_days": 60}).execute(context)
    json.dumps(result)
    assert not result["drifted"], result["reason"]
    assert result["model_versions"] == {"compute": production["model_version"]}
    assert (result["window_start"], result["window_end"]) == ("2025-06-21", "2025-07-18")
    assert context["outlet_events"][drift_alias(DRIFT)].added == []


def test_an_old_model_and_a_new_usage_type_emit_one_event_with_the_reason(
    features_db: Path, wandb_offline, context
) -> None:
    lineage = {"features_event": {"series": ["compute", "total_usage"]}}  # the features at training
    trained = train_operator(configuration="default", lineage=lineage).execute(context)
    ModelRegistry().move_alias("snowstorm-compute", "production", trained["model_version"])
    context["outlet_events"] = OutletEvents()
    with sqlite3.connect(features_db) as conn:
        conn.execute(f"ALTER TABLE {FEATURES_TABLE} ADD COLUMN AI_SERVICES FLOAT")
    result = monitor(limits={"max_age_days": 7}).execute(context)
    kinds = {finding["kind"] for finding in result["findings"]}
    assert kinds == {"model_age", "new_series"}
    assert result["cost_models"] == ["compute", "ai_services"]
    ((asset, extra),) = context["outlet_events"][drift_alias(DRIFT)].added
    assert asset == DRIFT
    assert extra["reason"] == result["reason"]
    assert "compute: model trained on data up to 2025-06-30, 18 days before 2025-07-18" in extra["reason"]


def test_the_alarm_rate_comes_from_the_predictions_table(production, context) -> None:
    score_operator(model_alias="production", window_start="2025-06-21", window_end="2025-07-18").execute(
        context
    )
    result = monitor(results_table=RESULTS_TABLE, limits={"max_age_days": 60}).execute(context)
    assert result["checked"]["compute"]["alarms"] >= 1
    assert result["checked"]["compute"]["expected_alarms"] == pytest.approx(0.1 * 28 / 30.44)


def test_without_a_production_model_it_says_so(features_db, wandb_offline, context) -> None:
    train_operator(configuration="default").execute(context)  # a candidate only
    with pytest.raises(ModelNotFoundError, match="no 'production' model of 'compute' to monitor"):
        monitor().execute(context)


def test_bad_limits_fail_before_any_read(production, context, mocker) -> None:
    operator = monitor(limits={"level_tolerance": -1})
    reads = mocker.spy(operator, "load_features")
    with pytest.raises(ValueError, match="level_tolerance must be a non-negative number"):
        operator.execute(context)
    with pytest.raises(ValueError, match="unexpected keyword argument 'tolerance'"):
        monitor(limits={"tolerance": 1}).execute(context)
    assert reads.call_count == 0
