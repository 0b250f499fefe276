from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.persistence import load_detector
from airflow_provider_snowstorm.links.wandb import WANDB_RUN_URL_XCOM_KEY
from airflow_provider_snowstorm.operators.base import SeriesInputError
from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator
from airflow_provider_snowstorm.registry import ModelStore
from airflow_provider_snowstorm.utils.sql import IdentifierError
from tests.operators.conftest import train_operator


@pytest.fixture
def train(features_db: Path, wandb_offline: dict[str, Path]):
    return train_operator


def test_trains_registers_latest_and_returns_a_json_safe_summary(train, context, wandb_offline) -> None:
    summary = train().execute(context)
    json.dumps(summary)
    assert summary["model_name"] == "snowstorm-compute"
    assert summary["training_end"] == "2025-06-30"
    store = ModelStore(wandb_offline["model_store"])
    latest = store.resolve("snowstorm-compute")
    assert latest.version == summary["model_version"]
    model = load_detector(store.download("snowstorm-compute", wandb_offline["model_store"].parent / "dl"))
    assert model.series_ == ["compute"]
    assert model.thresholds["compute"] == pytest.approx(summary["threshold"])


def test_training_respects_the_training_window(train, context, wandb_offline) -> None:
    train(training_start="2025-02-01", training_end="2025-05-31").execute(context)
    metadata = ModelStore(wandb_offline["model_store"]).resolve("snowstorm-compute").metadata["metadata"]
    assert (metadata["training_start"], metadata["training_end"]) == ("2025-02-01", "2025-05-31")


def test_pushes_the_run_url_for_the_extra_link(train, context) -> None:
    """Offline: the plugin's local run page; the summary keeps the W&B URL the run gets after ``wandb sync``."""
    summary = train().execute(context)
    assert "/snowstorm-tests/snowstorm/runs/" in summary["run_url"]
    run_id = summary["run_url"].rsplit("/", 1)[-1]
    assert context["ti"].pushed[WANDB_RUN_URL_XCOM_KEY] == f"/snowstorm/runs/{run_id}"


def test_online_the_link_is_wandbs_run_page(train, context, mocker) -> None:
    """Online, wandb gives the run its URL (the entity's page on W&B's host): the button opens it, not a local page."""
    from wandb.sdk.wandb_run import Run

    online_url = "https://wandb.example.com/acme/snowstorm/runs/abc123"
    mocker.patch.object(Run, "url", new_callable=mocker.PropertyMock, return_value=online_url)
    summary = train().execute(context)
    assert context["ti"].pushed[WANDB_RUN_URL_XCOM_KEY] == summary["run_url"] == online_url


def test_a_retry_replaces_its_version_instead_of_adding_one(train, context, wandb_offline) -> None:
    first = train().execute(context)
    second = train().execute(context)
    store = ModelStore(wandb_offline["model_store"])
    assert first["model_version"] == second["model_version"]
    assert store.versions("snowstorm-compute") == [first["model_version"]]


def test_a_new_dag_run_adds_a_version_and_moves_latest(train, context, wandb_offline) -> None:
    first = train().execute(context)
    later = train().execute({**context, "run_id": "manual__2025-07-08T00:00:00+00:00"})
    store = ModelStore(wandb_offline["model_store"])
    assert len(store.versions("snowstorm-compute")) == 2
    assert store.resolve("snowstorm-compute").version == later["model_version"] != first["model_version"]


def test_a_list_of_series_trains_one_model_each(train, context, wandb_offline) -> None:
    summaries = train(series=["compute", "total_usage"]).execute(context)
    assert [s["model_name"] for s in summaries] == ["snowstorm-compute", "snowstorm-total_usage"]


def test_features_can_come_from_xcom_records(train, context, feature_frame: pd.DataFrame) -> None:
    records = (
        feature_frame.rename_axis("usage_date").reset_index().astype({"usage_date": str}).to_dict("records")
    )
    summary = train(conn_id=None, features_table=None, features=records).execute(context)
    assert summary["training_start"] == feature_frame.index[0].date().isoformat()


def test_an_unknown_category_names_what_exists(train, context) -> None:
    with pytest.raises(
        SeriesInputError, match=r"\['storage'\] do not exist .* available: \['compute', 'total_usage'\]"
    ):
        train(series="storage").execute(context)


def test_too_little_history_fails_clearly(train, context) -> None:
    with pytest.raises(ValueError, match=r"cannot train a model for cost series 'compute'.*needs at least"):
        train(training_start="2025-06-20").execute(context)


def test_no_rows_fails_clearly(train, context) -> None:
    with pytest.raises(SeriesInputError, match="no rows between 2030-01-01"):
        train(training_start="2030-01-01", training_end="2030-12-31").execute(context)


def test_table_names_are_validated_before_any_query(train, context) -> None:
    with pytest.raises(IdentifierError, match="features_table"):
        train(features_table="DAILY_FEATURES; DROP TABLE X").execute(context)


def test_the_api_key_is_nowhere_in_the_store_or_runs(train, context, wandb_offline, monkeypatch) -> None:
    extra = {"mode": "offline", "entity": "e", **{k: str(v) for k, v in wandb_offline.items()}}
    secret = "local-0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WANDB_DEFAULT", json.dumps({"conn_type": "wandb", "password": secret, "extra": extra})
    )
    summary = train().execute(context)
    assert secret not in json.dumps(summary)
    for root in wandb_offline.values():
        for path in root.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_a_connection_type_without_its_provider_names_the_provider(
    monkeypatch: pytest.MonkeyPatch, context: dict[str, Any]
) -> None:
    """Features from "any SQL connection" need that database's Airflow provider; the error says which."""
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_X", '{"conn_type": "no_such_db", "host": "h"}')
    operator = DecomposeIsolationForestOperator(
        task_id="train", series="compute", conn_id="warehouse_x", features_table="FEATURES"
    )
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException, match=r"apache-airflow-providers-no_such_db") as raised:
        operator.get_db_hook()
    assert "'warehouse_x'" in str(raised.value)


def test_configurations_of_one_series_train_side_by_side_as_candidates(
    features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]
) -> None:

    lineage = {
        "features_event": {"id": 7, "cutoff_date": "2025-07-19"},
        "reason": "drift: compute level 2.1x",
    }
    default = train_operator(configuration="default", lineage=lineage).execute(context)
    challenger = train_operator(
        configuration="challenger", detector_params={"random_state": 0, "scorer": "forest"}
    ).execute(context)
    retried = train_operator(configuration="default", lineage=lineage).execute(context)  # replaces v0

    store = ModelStore(wandb_offline["model_store"])
    assert store.versions("snowstorm-compute") == ["v0", "v1"]
    assert (default["model_version"], challenger["model_version"]) == ("v0", "v1")
    aliases = store.aliases("snowstorm-compute")
    assert (aliases["default"], aliases["challenger"]) == ("v0", "v1")
    assert "production" not in aliases  # candidates only: promotion moves production
    recorded = store.resolve("snowstorm-compute", alias="default").metadata["metadata"]
    assert recorded["configuration"] == "default"
    assert recorded["lineage"] == lineage
    assert (recorded["training_start"], recorded["training_end"]) == ("2025-01-06", "2025-06-30")
    assert recorded["wandb"]["run_id"] == retried["run_id"] != default["run_id"]
    assert recorded["reference"]["end"] == "2025-06-30"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"configuration": "production"}, "reserved alias"),
        ({"configuration": "Bad Name"}, "not a valid name"),
        ({"aliases": ["production"]}, "moved only by promotion"),
        ({"lineage": ["features"]}, "lineage must be a mapping"),
    ],
)
def test_training_never_lands_in_production(
    overrides: dict[str, Any], message: str, features_db: Path, wandb_offline: dict[str, Path], context
) -> None:
    with pytest.raises(SeriesInputError, match=message):
        train_operator(**overrides).execute(context)
    assert not wandb_offline["model_store"].exists()
