"""Operators run against a real SQL database (SQLite through Airflow's SqliteHook) and W&B offline."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.operators.score import BatchScoreOperator
from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator
from tests.core.conftest import weekly_costs

FEATURES_TABLE = "DAILY_FEATURES"
FEATURE_DAYS = 200
RESULTS_TABLE = "PREDICTIONS"


def train_operator(**overrides: Any) -> DecomposeIsolationForestOperator:
    """Training of ``compute`` from the features table up to 2025-06-30 (before the spike); ``overrides`` win."""
    arguments: dict[str, Any] = {
        "task_id": "train",
        "series": "compute",
        "conn_id": "features_db",
        "features_table": FEATURES_TABLE,
        "training_end": "2025-06-30",
        "detector_params": {"random_state": 0},
    }
    return DecomposeIsolationForestOperator(**{**arguments, **overrides})


def score_operator(**overrides: Any) -> BatchScoreOperator:
    """Scoring of ``compute`` over 2025-07-12..18 (the spike is on the 15th) into ``RESULTS_TABLE``."""
    arguments: dict[str, Any] = {
        "task_id": "score",
        "series": "compute",
        "conn_id": "features_db",
        "features_table": FEATURES_TABLE,
        "window_start": "2025-07-12",
        "window_end": "2025-07-18",
        "results_table": RESULTS_TABLE,
    }
    return BatchScoreOperator(**{**arguments, **overrides})


def stored_rows(db: Path) -> pd.DataFrame:
    """The predictions table of the features database, in a stable order."""
    with sqlite3.connect(db) as conn:
        return pd.read_sql(f"SELECT * FROM {RESULTS_TABLE} ORDER BY SERIES, USAGE_DATE", conn)


@pytest.fixture
def feature_frame() -> pd.DataFrame:
    """200 days of compute and total_usage costs, with a spike on day 190."""
    frame = weekly_costs(FEATURE_DAYS, series=2, seed=11).set_axis(["compute", "total_usage"], axis=1)
    frame.iloc[190] *= 4
    return frame


@pytest.fixture
def features_db(tmp_path: Path, feature_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite database with the features table, reachable as Airflow connection ``features_db``."""
    path = tmp_path / "features.db"
    with sqlite3.connect(path) as conn:
        table = feature_frame.rename(columns=str.upper).rename_axis("USAGE_DATE").reset_index()
        table["USAGE_DATE"] = table["USAGE_DATE"].dt.strftime("%Y-%m-%d")
        table.to_sql(FEATURES_TABLE, conn, index=False)
    monkeypatch.setenv("AIRFLOW_CONN_FEATURES_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """``wandb_default`` offline, with its model store and run folder under ``tmp_path``."""
    paths = {"model_store": tmp_path / "model-store", "run_dir": tmp_path / "wandb"}
    extra = {
        "mode": "offline",
        "entity": "snowstorm-tests",
        "project": "snowstorm",
        **{k: str(v) for k, v in paths.items()},
    }
    monkeypatch.setenv("AIRFLOW_CONN_WANDB_DEFAULT", json.dumps({"conn_type": "wandb", "extra": extra}))
    return paths


class FakeTaskInstance:
    """Records XCom pushes the way the task SDK's RuntimeTaskInstance receives them."""

    def __init__(self, map_index: int = -1) -> None:
        self.map_index = map_index
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture
def context() -> dict[str, Any]:
    return {
        "run_id": "manual__2025-07-01T00:00:00+00:00",
        "dag": SimpleNamespace(dag_id="snowstorm_test"),
        "ti": FakeTaskInstance(),
    }


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, Any]]:
    """A real PostgreSQL server (Debian package, installed if missing) on a free port, stopped after the session."""
    import socket
    import subprocess

    script = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = subprocess.run(
        ["bash", str(script), "start", str(port)], capture_output=True, text=True, timeout=600, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"could not start PostgreSQL with {script}: {started.stderr[-2000:]}")
    data_dir = started.stdout.strip().splitlines()[-1]
    try:
        yield {"host": "127.0.0.1", "port": port, "login": "postgres", "schema": "postgres"}
    finally:
        subprocess.run(["bash", str(script), "stop", data_dir], capture_output=True, timeout=120, check=False)


@pytest.fixture
def postgres_conn_id(postgres_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """Airflow connection ``results_pg`` to the test server, with a fresh (empty) predictions table name space."""
    monkeypatch.setenv("AIRFLOW_CONN_RESULTS_PG", json.dumps({"conn_type": "postgres", **postgres_server}))
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    PostgresHook(postgres_conn_id="results_pg").run("DROP TABLE IF EXISTS PREDICTIONS")
    return "results_pg"
