"""The README's DAG of your own (``example_dags/snowstorm_own_dag.py``) runs as written under ``dag.test()``:
features from a SQLite connection (a table, or a query), train, score into a predictions table, report."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.local.pipeline import xcom_values
from tests.operators.conftest import (  # noqa: F401  (fixtures)
    FEATURES_TABLE,
    feature_frame,
    features_db,
    wandb_offline,
)

OWN_DAG = Path(__file__).parents[2] / "example_dags" / "snowstorm_own_dag.py"
PREDICTIONS = "OWN_PREDICTIONS"
SPIKE_DAY = "2025-07-15"  # day 190 of the features: every cost x4


@pytest.mark.parametrize("source", ["table", "sql"])
def test_own_dag_trains_scores_and_reports_from_any_sql_connection(
    airflow_db: Path,
    features_db: Path,  # noqa: F811
    wandb_offline: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    monkeypatch.setenv("SNOWSTORM_OWN_CONN_ID", "features_db")
    if source == "table":
        monkeypatch.setenv("SNOWSTORM_OWN_FEATURES_TABLE", FEATURES_TABLE)
    else:
        monkeypatch.setenv(
            "SNOWSTORM_OWN_FEATURES_SQL", f"SELECT USAGE_DATE, COMPUTE, TOTAL_USAGE FROM {FEATURES_TABLE}"
        )
    monkeypatch.setenv("SNOWSTORM_OWN_PREDICTIONS_TABLE", PREDICTIONS)
    monkeypatch.setenv("SNOWSTORM_REPORT_PATH", str(tmp_path / "report"))

    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    bag = DagBag(dag_folder=str(OWN_DAG))  # this file only: the settings above are read when it is parsed
    assert not bag.import_errors
    run = bag.get_dag("snowstorm_own_dag").test(
        run_conf={"training_end": "2025-06-30", "window_end": "2025-07-18", "window_days": 7}
    )
    assert run.state == DagRunState.SUCCESS

    with sqlite3.connect(features_db) as conn:
        predictions = pd.read_sql(f"SELECT * FROM {PREDICTIONS} ORDER BY SERIES, USAGE_DATE", conn)
    assert set(predictions["SERIES"]) == {"total_usage", "compute"}
    assert len(predictions) == 14  # 7 days x 2 series
    assert predictions["USAGE_DATE"].astype(str).str[:10].between("2025-07-12", "2025-07-18").all()
    alarms = predictions[predictions["IS_ANOMALY"].astype(bool)]
    assert SPIKE_DAY in set(alarms["USAGE_DATE"].astype(str).str[:10])

    delivered: dict[str, Any] = xcom_values(run, "notify")[0]
    report = Path(delivered["report"])
    assert report == tmp_path / "report" / "anomaly_report.md"
    text = report.read_text()
    assert SPIKE_DAY in text
    assert delivered["incidents"] >= 1
    assert delivered["chart"]
    assert Path(delivered["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert delivered["slack_channel"] is None  # no Slack connection: the file only
