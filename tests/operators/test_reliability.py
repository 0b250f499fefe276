"""Scoring and training under faults and bad input: one model resolution, exact audit columns, early and clear
errors, and one bounded fallback when W&B is unreachable."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.persistence import load_detector
from airflow_provider_snowstorm.operators.base import SeriesInputError
from airflow_provider_snowstorm.registry import ModelStore
from tests.operators.conftest import (
    score_operator,
    stored_rows,
    train_operator,
)


@pytest.fixture
def trained(features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]) -> ModelStore:
    train_operator().execute(context)
    return ModelStore(wandb_offline["model_store"])


# -- 1. one resolution: a training that lands mid-scoring -----------------------------------------------------------
def test_a_training_landing_between_resolution_and_download_does_not_change_what_is_recorded(
    trained: ModelStore, context: dict[str, Any], features_db: Path, mocker: Any
) -> None:
    other_run = {**context, "run_id": "manual__2025-07-20T00:00:00+00:00"}
    # The new version is trained on a shorter history: its training end (and threshold) tell it apart from v0.
    new_training = train_operator(training_end="2025-05-31")
    resolve = ModelStore.resolve
    landed: list[str] = []

    def resolve_then_train(store: ModelStore, *args: Any, **kwargs: Any) -> Any:
        resolved = resolve(store, *args, **kwargs)
        if not landed:  # the first resolution of the scoring task: a training registers v1 right after it
            landed.append(new_training.execute(other_run)["model_version"])
        return resolved

    mocker.patch.object(ModelStore, "resolve", autospec=True, side_effect=resolve_then_train)
    summary = score_operator().execute(context)
    mocker.stopall()

    assert landed == ["v1"]
    assert trained.aliases("snowstorm-compute")["latest"] == "v1"
    v0_file = trained.download("snowstorm-compute", features_db.parent / "v0", version="v0")
    v0 = load_detector(v0_file)
    rise, drop = float(v0.thresholds["compute"]), float(v0.drop_thresholds["compute"])
    v0_thresholds = [drop if row["residual"] < 0 else rise for row in summary["rows"]]
    # What scored the rows is what the rows and the XCom say: v0, with v0's thresholds (one for each direction).
    assert (summary["model_version"], summary["training_end"]) == ("v0", "2025-06-30")
    assert [row["threshold"] for row in summary["rows"]] == pytest.approx(v0_thresholds)
    assert set(stored_rows(features_db)["MODEL_VERSION"]) == {"v0"}
    # The test can tell the versions apart: scoring again now uses v1 and its (different) threshold.
    after = score_operator().execute(context)
    assert (after["model_version"], after["training_end"]) == ("v1", "2025-05-31")
    assert [row["threshold"] for row in after["rows"]] != pytest.approx(v0_thresholds)


# -- 3. audit columns keep the time of day --------------------------------------------------------------------------
def test_scored_at_keeps_the_full_utc_timestamp_on_sqlite(
    trained: ModelStore, context: dict[str, Any], features_db: Path
) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    score_operator().execute(context)
    after = datetime.now(UTC).replace(tzinfo=None)

    scored_at = {pd.Timestamp(value) for value in stored_rows(features_db)["SCORED_AT"]}
    assert len(scored_at) == 1
    (stamp,) = scored_at
    assert before <= stamp.to_pydatetime() <= after


def test_scored_at_keeps_the_full_utc_timestamp_on_the_snowflake_emulator(
    trained: ModelStore, context: dict[str, Any], snowflake_conn_id: str, snowflake_hook: Any
) -> None:
    snowflake_hook.run("CREATE DATABASE IF NOT EXISTS AUDIT_TEST")
    snowflake_hook.run("CREATE SCHEMA IF NOT EXISTS AUDIT_TEST.RESULTS")
    table = "AUDIT_TEST.RESULTS.PREDICTIONS"
    before = datetime.now(UTC).replace(tzinfo=None)
    score_operator(results_table=table, results_conn_id=snowflake_conn_id).execute(context)
    after = datetime.now(UTC).replace(tzinfo=None)

    values = {row[0] for row in snowflake_hook.get_records(f"SELECT DISTINCT SCORED_AT FROM {table}")}
    assert len(values) == 1
    (value,) = values
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    assert before <= stamp.to_pydatetime() <= after


# -- 5. errors at the operator boundary name the column, the row and the parameter -----------------------------
def feature_records(feature_frame: pd.DataFrame) -> list[dict[str, Any]]:
    frame = feature_frame.rename_axis("usage_date").reset_index()
    frame["usage_date"] = frame["usage_date"].dt.strftime("%Y-%m-%d")
    return frame.astype(object).to_dict("records")


def test_a_non_numeric_cell_names_the_column_the_date_and_the_row(
    wandb_offline: Any, context: dict[str, Any], feature_frame: pd.DataFrame
) -> None:
    records = feature_records(feature_frame)
    records[54]["compute"] = "abc"
    day = records[54]["usage_date"]

    with pytest.raises(
        SeriesInputError, match=rf"column 'compute' has a non-numeric value 'abc' on {day} \(row 55\)"
    ):
        train_operator(conn_id=None, features_table=None, features=records).execute(context)


def test_a_date_with_a_time_of_day_names_the_column_and_the_row(
    wandb_offline: Any, context: dict[str, Any], feature_frame: pd.DataFrame
) -> None:
    records = feature_records(feature_frame)
    records[10]["usage_date"] = "2025-01-11 13:30:00"

    with pytest.raises(
        SeriesInputError,
        match=r"column 'USAGE_DATE' row 11 has '2025-01-11 13:30:00', a date with a time of day",
    ):
        train_operator(conn_id=None, features_table=None, features=records).execute(context)


def test_a_cell_that_is_not_a_date_names_the_row(
    wandb_offline: Any, context: dict[str, Any], feature_frame: pd.DataFrame
) -> None:
    records = feature_records(feature_frame)
    records[3]["usage_date"] = "yesterday"

    with pytest.raises(
        SeriesInputError, match=r"column 'USAGE_DATE' row 4 has 'yesterday', which is not a date"
    ):
        train_operator(conn_id=None, features_table=None, features=records).execute(context)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"window_days": 0}, r"window_days must be at least 1, got 0"),
        (
            {"window_start": None, "window_end": None, "window_days": "a week"},
            r"window_days must be a whole number, got 'a week'",
        ),
        ({"history_days": -3}, r"history_days must be at least 0, got -3"),
        ({"window_start": "2025-07-12T10:00"}, r"window_start '2025-07-12T10:00' has a time of day"),
        ({"window_end": "July"}, r"window_end 'July' is not a date"),
        ({"model_alias": "v7"}, r"model_alias 'v7'.*reserved for version numbers"),
        ({"model_version": "latest"}, r"model_version 'latest'.*expected 'v<N>'"),
        ({"model_name": "bad name!"}, r"model_name: Invalid model name 'bad name!'"),
    ],
)
def test_bad_scoring_parameters_fail_naming_the_parameter_before_any_work(
    wandb_offline: Any, features_db: Path, context: dict[str, Any], mocker: Any, overrides: dict, message: str
) -> None:
    operator = score_operator(**overrides)
    reads = mocker.spy(operator, "load_features")
    fetches = mocker.spy(operator, "load_model")

    with pytest.raises(SeriesInputError, match=message):
        operator.execute(context)

    assert (reads.call_count, fetches.call_count) == (0, 0)


# -- 6. late checks: a bad alias fails before the model is fitted or anything is logged ---------------------------
def test_a_bad_training_alias_fails_before_fitting_or_logging(
    features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any], mocker: Any
) -> None:
    operator = train_operator(aliases=["staging", "v7"])
    reads = mocker.spy(operator, "load_features")

    with pytest.raises(SeriesInputError, match=r"alias in aliases 'v7'.*reserved for version numbers"):
        operator.execute(context)

    assert reads.call_count == 0
    assert not wandb_offline["model_store"].exists()
    assert not wandb_offline["run_dir"].exists()


# -- 7. unreachable W&B: one probe, one bounded timeout, offline for the rest of the task --------------------------
@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers: requests to it hang until their timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_an_unreachable_wandb_costs_one_bounded_timeout_per_scoring_task(
    trained: ModelStore,
    features_db: Path,
    wandb_offline: dict[str, Path],
    context: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    silent_server: str,
    mocker: Any,
) -> None:
    import requests
    import wandb

    # What training online had mirrored: W&B's v3 of the model, under W&B's number.
    mirror = ModelStore(wandb_offline["model_store"] / "_wandb" / "snowstorm")
    mirror.put("snowstorm-compute", trained.read_bytes("snowstorm-compute"), version="v3", suffix=".skops")
    started = time.monotonic()
    score_operator(log_to_wandb=True).execute(context)
    offline_seconds = time.monotonic() - started

    init_timeout = 3
    monkeypatch.delenv("WANDB_MODE", raising=False)
    extra = {"mode": "online", "entity": "acme", "project": "snowstorm", "init_timeout": init_timeout}
    extra |= {key: str(value) for key, value in wandb_offline.items()}
    connection = {"conn_type": "wandb", "host": silent_server, "password": "k" * 40, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_WANDB_DEFAULT", json.dumps(connection))
    probes = mocker.spy(requests, "get")
    init = mocker.spy(wandb, "init")
    started = time.monotonic()
    summary = score_operator(log_to_wandb=True).execute(context)
    online_seconds = time.monotonic() - started

    assert summary["model_version"] == "v3"
    assert probes.call_count == 1
    assert [call.kwargs["mode"] for call in init.call_args_list] == ["offline"]
    assert online_seconds - offline_seconds < init_timeout + 1.5, (online_seconds, offline_seconds)
    run_folders = list((wandb_offline["run_dir"] / "wandb").glob("*run-*"))
    assert run_folders, "the offline run must be where `wandb sync <run_dir>/wandb/*run-*` finds it"
