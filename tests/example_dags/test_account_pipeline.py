"""The example pipeline at account level (``SNOWSTORM_SERIES_LEVEL=account``) under ``dag.test()`` on the emulator.

A series per account and cost category (``PROD:compute``), long features, mapped tasks over batches of
``SNOWSTORM_SERIES_PER_TASK`` series (2 here: three accounts' two categories make three batches), one model per
series, the report's root cause from the account's own rows. Its own schema keeps its tables apart from the
organisation-level run's.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.local.pipeline import (
    DEMO_ACCOUNTS,
    DEMO_DAYS,
    DEMO_RUN_DAY,
    DEMO_SEED,
    DEMO_START,
    SCORED_DAYS,
    promote,
    run_example_dag,
    seed_feedback,
    xcom_values,
)
from airflow_provider_snowstorm.utils.sql import read_dataframe

pytestmark = pytest.mark.slow

EXAMPLE_DAGS = Path(__file__).parents[2] / "example_dags"
SCHEMA = "ACCOUNTS"
CATEGORIES = ["total_usage", "compute"]


@dataclass
class AccountRun:
    settings: Any  # the example_pipeline module as the DAGs saw it
    usage: Any
    hook: Any
    runs: dict[str, Any]
    series: list[str]
    models: list[dict[str, Any]]


def task_instances(run: Any, task_id: str) -> list[Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return list(
            session.query(TaskInstance.map_index, TaskInstance.rendered_map_index, TaskInstance.state).filter(
                TaskInstance.dag_id == run.dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.task_id == task_id,
            )
        )


@pytest.fixture(scope="module")
def account_run(
    airflow_db: Path, snowflake_conn_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountRun]:
    from airflow.sdk import BaseHook

    from airflow_provider_snowstorm import example_pipeline
    from airflow_provider_snowstorm.datasets import generate_organization_usage
    from airflow_provider_snowstorm.datasets.statement import billing_statement
    from airflow_provider_snowstorm.local.seed import seed_usage

    home = tmp_path_factory.mktemp("accounts")
    extra = {"mode": "offline", "model_store": str(home / "model-store"), "run_dir": str(home / "wandb")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_WANDB_DEFAULT", json.dumps({"conn_type": "wandb", "extra": extra}))
        patch.setenv("SNOWSTORM_SERIES_LEVEL", "account")
        patch.setenv("SNOWSTORM_SERIES_PER_TASK", "2")
        patch.setenv("SNOWSTORM_SCHEMA", SCHEMA)
        settings = importlib.reload(example_pipeline)  # the settings are read when the module is imported
        try:
            usage = generate_organization_usage(DEMO_START, DEMO_DAYS, accounts=DEMO_ACCOUNTS, seed=DEMO_SEED)
            hook = BaseHook.get_connection(snowflake_conn_id).get_hook()
            seed_usage(hook, billing_statement(usage, seed=DEMO_SEED).rows)
            seed_feedback(hook, settings.FEEDBACK_TABLE, usage.labels, per_account=True)
            runs = {
                "data_engineering": run_example_dag(
                    "snowstorm_data_engineering", EXAMPLE_DAGS, {"full_refresh": True}, day=DEMO_RUN_DAY
                ),
                "features": run_example_dag("snowstorm_feature_engineering", EXAMPLE_DAGS, day=DEMO_RUN_DAY),
            }
            (built,) = xcom_values(runs["features"], "build_features")
            training_end = pd.Timestamp(built["cutoff_date"]).date() - timedelta(days=SCORED_DAYS)
            runs["training"] = run_example_dag(
                "snowstorm_training",
                EXAMPLE_DAGS,
                {
                    "cost_models": CATEGORIES,
                    "configurations": {"default": {"random_state": 0}},
                    "training_end": training_end.isoformat(),
                },
                day=DEMO_RUN_DAY,
            )
            (models,) = xcom_values(runs["training"], "publish_models")
            for model in models:
                promote(EXAMPLE_DAGS, model["series"], model["model_version"], "first production model")
            runs["prediction"] = run_example_dag(
                "snowstorm_prediction",
                EXAMPLE_DAGS,
                {"cost_models": CATEGORIES, "window_days": SCORED_DAYS},
                day=DEMO_RUN_DAY,
            )
            (series,) = xcom_values(runs["prediction"], "cost_models")
            yield AccountRun(settings, usage, hook, runs, series, models)
        finally:
            patch.undo()
            importlib.reload(example_pipeline)


def test_features_are_long_rows_per_account_that_add_up_to_the_organisation(account_run: AccountRun) -> None:
    settings = account_run.settings
    assert f"SNOWSTORM.{SCHEMA}.DAILY_ACCOUNT_COST_FEATURES" == settings.FEATURES_TABLE
    features = read_dataframe(
        account_run.hook, f"SELECT USAGE_DATE, SERIES, VALUE FROM {settings.FEATURES_TABLE}"
    )
    wide = features.pivot(index="USAGE_DATE", columns="SERIES", values="VALUE")
    accounts = sorted(account_run.usage.rows["ACCOUNT_NAME"].unique())
    assert sorted(c for c in wide.columns if c.endswith(":total_usage")) == [
        f"{a}:total_usage" for a in accounts
    ]
    assert not wide.isna().any().any()  # every day of every series
    # The accounts' totals are the organisation's consumption, day by day (the raw table, summed in Snowflake).
    organisation = read_dataframe(
        account_run.hook,
        f"SELECT USAGE_DATE, SUM(USAGE_IN_CURRENCY) AS TOTAL FROM {settings.RAW_USAGE_TABLE} "
        f"WHERE USAGE_DATE <= %(last)s GROUP BY USAGE_DATE",
        {"last": wide.index.max()},
    ).set_index("USAGE_DATE")["TOTAL"]
    totals = wide[[c for c in wide.columns if c.endswith(":total_usage")]].sum(axis=1)
    pd.testing.assert_series_equal(
        totals.sort_index(), organisation.astype(float).sort_index(), atol=0.01, check_names=False
    )


def test_each_accounts_series_is_trained_and_evaluated_in_batches(account_run: AccountRun) -> None:
    series = account_run.series
    accounts = sorted(account_run.usage.rows["ACCOUNT_NAME"].unique())
    # Every account's series of each requested category, category by category.
    assert series == [f"{a}:{c}" for c in CATEGORIES for a in accounts]
    trained = task_instances(account_run.runs["training"], "train")
    assert sorted(label for _, label, _ in trained) == sorted(
        f"2 series from {first} default" for first in series[::2]
    )
    assert [m["series"] for m in account_run.models] == series
    assert {m["model_name"] for m in account_run.models} == {
        f"snowstorm-{s.lower().replace(':', '.')}" for s in series
    }
    evaluated = [m["evaluation"] for m in account_run.models]
    assert all(e is not None and e["span"] == "backtest" for e in evaluated)
    rows = account_run.hook.get_records(
        f"SELECT DISTINCT SERIES FROM {account_run.settings.EVALUATIONS_TABLE}"
    )
    assert sorted(r[0] for r in rows) == sorted(series)


def test_every_account_series_is_scored_once_per_day_and_monitored(account_run: AccountRun) -> None:
    settings = account_run.settings
    counts = read_dataframe(
        account_run.hook,
        f"SELECT SERIES, COUNT(*) AS N, COUNT(DISTINCT USAGE_DATE) AS DAYS FROM {settings.PREDICTIONS_TABLE} "
        "GROUP BY SERIES ORDER BY SERIES",
    )
    assert list(counts["SERIES"]) == sorted(account_run.series)
    assert set(counts["N"]) == set(counts["DAYS"]) == {SCORED_DAYS}
    assert len(task_instances(account_run.runs["prediction"], "score")) == 3
    (check,) = xcom_values(account_run.runs["prediction"], "monitor")
    assert sorted(check["model_versions"]) == sorted(account_run.series)
    # The long features' series are every account's series, not the table's columns: nothing new, no drift.
    assert not check["drifted"], check["reason"]


def test_an_account_incident_is_explained_by_that_accounts_usage(account_run: AccountRun) -> None:
    settings = account_run.settings
    (report,) = xcom_values(account_run.runs["prediction"], "report")
    causes = account_run.hook.get_records(
        f"SELECT SERIES, ACCOUNT_NAME, USAGE_TYPE FROM {settings.ROOT_CAUSES_TABLE} WHERE ACCOUNT_NAME IS NOT NULL"
    )
    assert report["incidents"] >= 1
    assert causes
    for series, account, _ in causes:
        assert series.split(":")[0] == account  # only the account's own rows
    text = Path(report["report"]).read_text()
    assert causes[0][0] in text
