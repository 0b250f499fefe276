"""The example pipeline end to end: the four DAGs under ``dag.test()`` against the local Snowflake emulation.

One module-scoped run of the whole pipeline (the main job's sequence, ``local.pipeline.run_demo_dags``: a real
organisation's statement, yesterday's load, a restatement, today's load, features, training, prediction) feeds the
assertions; re-runs check idempotency. This is the same path as ``bash scripts/run_pipeline.sh``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
    run_demo_dags,
    run_example_dag,
    seed_feedback,
    xcom_values,
)
from airflow_provider_snowstorm.utils.sql import read_dataframe

pytestmark = pytest.mark.slow

COST_MODELS = ["total_usage", "compute"]
EXAMPLE_DAGS = Path(__file__).parents[2] / "example_dags"
LAST_DAY = DEMO_START + timedelta(days=DEMO_DAYS - 1)
SETTLING_DAYS = 2  # the statement's last two days are still loading on the run day
SCORED_UNTIL = LAST_DAY - timedelta(days=SETTLING_DAYS)
TRAINING_END = SCORED_UNTIL - timedelta(days=SCORED_DAYS)


@dataclass
class PipelineRun:
    usage: Any
    statement: Any
    hook: Any
    runs: dict[str, Any]
    model_store: Path
    models: list[dict[str, Any]]


def run_dag(dag_id: str, conf: dict[str, Any] | None = None, *, day: date = DEMO_RUN_DAY) -> Any:
    """Fails the test (by raising) if the DAG files do not import or the run does not succeed."""
    return run_example_dag(dag_id, EXAMPLE_DAGS, conf, day=day)


def count(hook: Any, table: str) -> int:
    return int(hook.get_first(f"SELECT COUNT(*) FROM {table}")[0])


def task_states(run: Any, task_ids: list[str]) -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return dict(
            session.query(TaskInstance.task_id, TaskInstance.state).filter(
                TaskInstance.dag_id == run.dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.task_id.in_(task_ids),
            )
        )


@pytest.fixture(scope="module")
def pipeline(
    airflow_db: Path, snowflake_conn_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineRun]:
    from airflow.sdk import BaseHook

    from airflow_provider_snowstorm.datasets import generate_organization_usage
    from airflow_provider_snowstorm.datasets.statement import billing_statement

    home = tmp_path_factory.mktemp("pipeline")
    extra = {
        "mode": "offline",
        "entity": "snowstorm-tests",
        "project": "snowstorm",
        "model_store": str(home / "model-store"),
        "run_dir": str(home / "wandb"),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_WANDB_DEFAULT", json.dumps({"conn_type": "wandb", "extra": extra}))
        usage = generate_organization_usage(DEMO_START, DEMO_DAYS, accounts=DEMO_ACCOUNTS, seed=DEMO_SEED)
        statement = billing_statement(usage, seed=DEMO_SEED)
        hook = BaseHook.get_connection(snowflake_conn_id).get_hook()
        from airflow_provider_snowstorm.example_pipeline import FEEDBACK_TABLE

        seed_feedback(hook, FEEDBACK_TABLE, usage.labels)
        demo = run_demo_dags(hook, EXAMPLE_DAGS, statement)
        yield PipelineRun(
            usage=usage,
            statement=statement,
            hook=hook,
            runs=demo.runs,
            model_store=home / "model-store",
            models=demo.models,
        )


def test_raw_usage_holds_one_row_per_account_day_and_cost_category(pipeline: PipelineRun) -> None:
    from airflow_provider_snowstorm.core.billing import cost_category
    from airflow_provider_snowstorm.example_pipeline import RAW_USAGE_TABLE

    rows = pipeline.statement.rows
    consumption = rows[rows["BILLING_TYPE"].str.lower() == "consumption"]
    expected = consumption.groupby(
        ["ACCOUNT_NAME", "USAGE_DATE", consumption["USAGE_TYPE"].map(cost_category), "CURRENCY"]
    ).ngroups
    assert count(pipeline.hook, RAW_USAGE_TABLE) == expected
    types = {
        row[0] for row in pipeline.hook.get_records(f"SELECT DISTINCT USAGE_TYPE FROM {RAW_USAGE_TABLE}")
    }
    assert {"data_transfer", "cloud_services", "compute"} <= types
    # No adjustment, overage or support line became a series of its own.
    assert not any(" " in t or "adj" in t or "overage" in t or "support" in t for t in types), types


def test_raw_usage_is_loaded_at_utc(pipeline: PipelineRun) -> None:
    from airflow_provider_snowstorm.example_pipeline import RAW_USAGE_TABLE

    (loaded_at,) = pipeline.hook.get_first(f"SELECT MAX(LOADED_AT) FROM {RAW_USAGE_TABLE}")
    assert abs(datetime.now(UTC).replace(tzinfo=None) - loaded_at) < timedelta(minutes=10)


def test_features_equal_the_organisations_consumption_on_complete_days(pipeline: PipelineRun) -> None:
    """Adjustments netted, overage folded in, support lines left out, settling days not yet features: the
    features are exactly the generator's net consumption per category."""
    from airflow_provider_snowstorm.example_pipeline import FEATURES_TABLE

    features = read_dataframe(pipeline.hook, f"SELECT * FROM {FEATURES_TABLE} ORDER BY USAGE_DATE")
    features = features.set_index(pd.to_datetime(features.pop("USAGE_DATE")))
    truth = pipeline.usage.org_series().loc[: pd.Timestamp(SCORED_UNTIL)]
    truth["total_usage"] = truth.sum(axis=1)
    assert len(features) == DEMO_DAYS - SETTLING_DAYS
    assert list(features.index) == list(truth.index)
    pd.testing.assert_frame_equal(
        features[[column.upper() for column in truth.columns]].set_axis(list(truth.columns), axis=1),
        truth,
        check_exact=False,
        atol=0.006,
        check_names=False,
        check_freq=False,
    )
    emitted = xcom_values(pipeline.runs["features"], "build_features")[0]
    assert emitted["cutoff_date"] == SCORED_UNTIL.isoformat()
    assert emitted["settling_days"] == [(LAST_DAY - timedelta(days=1)).isoformat(), LAST_DAY.isoformat()]
    assert emitted["currency"] == "USD"


def test_the_restated_day_of_last_month_is_reloaded_and_recorded(pipeline: PipelineRun) -> None:
    from airflow_provider_snowstorm.example_pipeline import RAW_USAGE_TABLE, RESTATEMENTS_TABLE

    restated = pipeline.statement.restated_day
    assert restated < DEMO_RUN_DAY - timedelta(days=35)  # outside the plain 35-day look-back
    loaded = xcom_values(pipeline.runs["data_engineering"], "extract_usage")[0]
    assert loaded["window_start"] == date(DEMO_RUN_DAY.year, DEMO_RUN_DAY.month - 1, 1).isoformat()
    assert loaded["restated_days"] == [restated.isoformat()]
    (previous, current), *_ = pipeline.hook.get_records(
        f"SELECT PREVIOUS_USAGE_IN_CURRENCY, USAGE_IN_CURRENCY FROM {RESTATEMENTS_TABLE} "
        f"WHERE USAGE_DATE = '{restated.isoformat()}' ORDER BY DETECTED_AT DESC"
    )
    (in_raw,) = pipeline.hook.get_first(
        f"SELECT SUM(USAGE_IN_CURRENCY) FROM {RAW_USAGE_TABLE} WHERE USAGE_DATE = '{restated.isoformat()}'"
    )
    assert float(current) == pytest.approx(float(in_raw), abs=0.01)
    assert float(previous) < float(current)


def test_training_registers_every_configuration_of_every_category_as_candidates(
    pipeline: PipelineRun,
) -> None:
    from airflow_provider_snowstorm.example_pipeline import MODEL_CONFIGURATIONS
    from airflow_provider_snowstorm.registry import ModelStore

    store = ModelStore(pipeline.model_store)
    assert [(m["series"], m["configuration"]) for m in pipeline.models] == [
        (series, configuration) for series in COST_MODELS for configuration in MODEL_CONFIGURATIONS
    ]
    features_event = xcom_values(pipeline.runs["features"], "build_features")[0]
    for model in pipeline.models:
        stored = store.resolve(model["model_name"], alias=model["configuration"])
        assert stored.version == model["model_version"]
        assert model["training_end"] == TRAINING_END.isoformat()
        lineage = stored.metadata["metadata"]["lineage"]
        assert lineage["reason"] == "manual"
        assert lineage["features_event"]["cutoff_date"] == features_event["cutoff_date"]
        assert lineage["features_event"]["source_dag_id"] == "snowstorm_feature_engineering"
        assert model["evaluation"]["span_end"] == SCORED_UNTIL.isoformat()
        assert model["evaluation"]["incidents"] > 0
    history = store.alias_history("snowstorm-compute")
    assert [(m["alias"], m["previous"], m["reason"]) for m in history] == [
        ("production", None, "first production model: the default configuration")
    ]


def test_every_candidate_is_evaluated_into_the_evaluations_table(pipeline: PipelineRun) -> None:
    from airflow_provider_snowstorm.example_pipeline import EVALUATIONS_TABLE

    rows = read_dataframe(
        pipeline.hook, f"SELECT MODEL_NAME, MODEL_VERSION, SPAN, F1 FROM {EVALUATIONS_TABLE}"
    )
    trained = {(m["model_name"], m["model_version"]) for m in pipeline.models}
    assert trained <= set(zip(rows["MODEL_NAME"], rows["MODEL_VERSION"], strict=True))
    assert set(rows["SPAN"]) == {"backtest"}


def test_every_mapped_training_task_has_its_wandb_link(pipeline: PipelineRun) -> None:
    training = pipeline.runs["training"]
    indexes = range(len(pipeline.models))
    urls = [xcom_values(training, "train", key="_link_WandbRunLink", map_index=index)[0] for index in indexes]
    summaries = [xcom_values(training, "train", map_index=index)[0] for index in indexes]
    # Offline, the button opens the run's local page (the plugin); the summary keeps the W&B URL it has after sync.
    assert all("/snowstorm-tests/snowstorm/runs/" in summary["run_url"] for summary in summaries)
    assert urls == [f"/snowstorm/runs/{summary['run_url'].rsplit('/', 1)[-1]}" for summary in summaries]
    assert len(set(urls)) == len(pipeline.models)


def test_predictions_cover_the_window_for_each_category(pipeline: PipelineRun) -> None:
    from airflow_provider_snowstorm.example_pipeline import PREDICTIONS_TABLE

    predictions = read_dataframe(pipeline.hook, f"SELECT * FROM {PREDICTIONS_TABLE}")
    assert len(predictions) == SCORED_DAYS * len(COST_MODELS)
    assert pd.to_datetime(predictions["USAGE_DATE"]).min().date() == TRAINING_END + timedelta(days=1)
    assert pd.to_datetime(predictions["USAGE_DATE"]).max().date() == SCORED_UNTIL
    assert set(predictions["SERIES"]) == set(COST_MODELS)
    # Lineage: the production (default) version and the W&B run that trained it, on every row.
    production = {m["series"]: m for m in pipeline.models if m["configuration"] == "default"}
    for series, rows in predictions.groupby("SERIES"):
        assert set(rows["MODEL_VERSION"]) == {production[series]["model_version"]}
        assert set(rows["TRAINING_RUN"]) == {production[series]["run_id"]}


def test_the_challenger_scores_in_shadow_apart_from_production(pipeline: PipelineRun) -> None:
    from airflow_provider_snowstorm.example_pipeline import SHADOW_PREDICTIONS_TABLE

    shadow = read_dataframe(pipeline.hook, f"SELECT * FROM {SHADOW_PREDICTIONS_TABLE}")
    challengers = {
        m["series"]: m["model_version"] for m in pipeline.models if m["configuration"] == "challenger"
    }
    assert len(shadow) == SCORED_DAYS * len(COST_MODELS)
    assert dict(shadow.groupby("SERIES")["MODEL_VERSION"].first()) == challengers
    report = xcom_values(pipeline.runs["prediction"], "report")[0]
    markdown = Path(report["report"]).read_text()
    models = markdown.split("## Models", 1)[1]
    assert all(f"snowstorm-{series} {version} " not in models for series, version in challengers.items())


def test_report_names_the_injected_anomaly_of_the_scored_window(pipeline: PipelineRun) -> None:
    report = xcom_values(pipeline.runs["prediction"], "report")[0]
    markdown = Path(report["report"]).read_text()
    assert Path(report["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = pipeline.usage.labels
    injected = labels[
        (labels["series"] == "compute") & (pd.to_datetime(labels["end"]) > pd.Timestamp(TRAINING_END))
    ]
    assert len(injected) == 1
    start = injected["start"].iloc[0]
    assert start >= TRAINING_END
    # An incident starts on the first day of the injected burst, and the report names compute as what drove it
    # (the category's own incident, or the usage type in the root cause of the total's).
    incident_lines = [
        line for line in markdown.split("## Incidents", 1)[1].splitlines() if line.startswith("| 1 |")
    ]
    assert any(str(start) in line for line in incident_lines), markdown
    assert "| compute |" in markdown or "(compute)" in markdown, markdown
    # The reader can mark it real or a false alarm: a ready statement for the feedback table evaluation reads.
    from airflow_provider_snowstorm.example_pipeline import FEEDBACK_TABLE

    feedback = markdown.split("## Feedback", 1)[1].split("```sql\n", 1)[1].split("\n```", 1)[0]
    assert feedback.startswith(f"INSERT INTO {FEEDBACK_TABLE} (SERIES, START_DATE, END_DATE, VERDICT")
    assert f"'{start}'" in feedback


def test_report_headline_counts_the_burst_once_and_names_its_cause(pipeline: PipelineRun) -> None:
    """The compute burst also shows in total_usage: one incident, its cost within 25% of the injected cost, in the
    source's currency, with the account and usage type that drove it."""
    markdown = Path(xcom_values(pipeline.runs["prediction"], "report")[0]["report"]).read_text()
    labels = pipeline.usage.labels
    burst = labels[
        (labels["series"] == "compute") & (pd.to_datetime(labels["end"]) > pd.Timestamp(TRAINING_END))
    ]
    headline = markdown.splitlines()[0]
    match = re.fullmatch(
        r"# Snowflake spend anomalies: 1 incident in 1 cost category, est\. extra cost \+([\d,.]+) USD",
        headline,
    )
    assert match, headline
    estimated = float(match.group(1).replace(",", ""))
    injected = float(burst["extra_cost"].iloc[0])
    assert abs(estimated - injected) <= 0.25 * injected, (estimated, injected)
    account = burst["account_name"].iloc[0]
    drivers = markdown.split("What drove it", 1)[1].splitlines()
    top = next(line for line in drivers if line.startswith(f"| {account} |"))
    assert top.startswith(f"| {account} | compute |"), markdown


def test_root_causes_are_written_beside_the_predictions(pipeline: PipelineRun) -> None:
    from airflow_provider_snowstorm.example_pipeline import ROOT_CAUSES_TABLE

    causes = pipeline.hook.get_records(
        f"SELECT ACCOUNT_NAME, USAGE_TYPE, SHARE, CURRENCY FROM {ROOT_CAUSES_TABLE} ORDER BY EXTRA_COST DESC"
    )
    account = pipeline.usage.labels["account_name"].iloc[-1]
    assert causes[0][:2] == (account, "compute")
    assert causes[0][2] > 0.9
    assert causes[0][3] == "USD"


def test_rerunning_the_dags_for_the_same_dates_changes_no_row_counts(pipeline: PipelineRun) -> None:
    from airflow_provider_snowstorm.example_pipeline import FEATURES_TABLE, PREDICTIONS_TABLE, RAW_USAGE_TABLE

    tables = (RAW_USAGE_TABLE, FEATURES_TABLE, PREDICTIONS_TABLE)
    before = {table: count(pipeline.hook, table) for table in tables}
    run_dag("snowstorm_data_engineering", {"full_refresh": True})
    run_dag("snowstorm_data_engineering")  # the nightly trailing window
    run_dag("snowstorm_feature_engineering")
    run_dag("snowstorm_prediction", {"cost_models": COST_MODELS, "window_days": SCORED_DAYS})
    assert {table: count(pipeline.hook, table) for table in tables} == before


def test_the_dag_files_import_cleanly() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "snowstorm_data_engineering",
        "snowstorm_feature_engineering",
        "snowstorm_training",
        "snowstorm_prediction",
        "snowstorm_promotion",
        "snowstorm_own_dag",  # the README's DAG of your own (tests/example_dags/test_own_dag.py runs it)
        # the hourly warehouse path (tests/example_dags/test_warehouse_pipeline.py runs them)
        "snowstorm_warehouse_data_engineering",
        "snowstorm_warehouse_training",
        "snowstorm_warehouse_scoring",
    }
    assert date(2024, 1, 1) == bag.get_dag("snowstorm_training").start_date.date()


def test_fresh_models_do_not_trigger_retraining(pipeline: PipelineRun) -> None:
    from airflow.utils.state import TaskInstanceState

    states = task_states(pipeline.runs["prediction"], ["monitor", "drifted", "trigger_retraining"])
    assert states == {
        "monitor": TaskInstanceState.SUCCESS,
        "drifted": TaskInstanceState.SUCCESS,
        "trigger_retraining": TaskInstanceState.SKIPPED,
    }
    check = xcom_values(pipeline.runs["prediction"], "monitor")[0]
    assert not check["drifted"]
    assert set(check["checked"]) == set(COST_MODELS)


def test_the_report_says_which_days_are_still_settling(pipeline: PipelineRun) -> None:
    report = xcom_values(pipeline.runs["prediction"], "report")[0]
    settling = f"{LAST_DAY - timedelta(days=1)}, {LAST_DAY}"
    assert report["notes"] == [
        f"Still settling, not scored yet: {settling} (Snowflake's usage figures arrive over up to 72 hours)"
    ]
    assert f"Still settling, not scored yet: {settling}" in Path(report["report"]).read_text()


def test_days_restated_after_scoring_are_rescored_once(pipeline: PipelineRun) -> None:
    """Score an earlier week, let Snowflake restate one of its days, then run the nightly DAGs: the day's
    predictions follow the corrected figure, and the next run has nothing more to re-score."""
    from airflow.utils.state import TaskInstanceState

    from airflow_provider_snowstorm.example_pipeline import PREDICTIONS_TABLE
    from airflow_provider_snowstorm.local.seed import USAGE_TABLE

    week_end = TRAINING_END - timedelta(days=10)
    restated = week_end - timedelta(days=2)
    run_dag(
        "snowstorm_prediction", {"cost_models": COST_MODELS, "window_days": 7, "window_end": str(week_end)}
    )
    where = f"USAGE_DATE = '{restated}' AND LOWER(USAGE_TYPE) LIKE '%compute' AND ACCOUNT_NAME = 'PROD'"
    pipeline.hook.run(f"UPDATE {USAGE_TABLE} SET USAGE_IN_CURRENCY = USAGE_IN_CURRENCY + 1000 WHERE {where}")
    try:
        run_dag("snowstorm_data_engineering")
        run_dag("snowstorm_feature_engineering")
        nightly = run_dag("snowstorm_prediction", {"cost_models": COST_MODELS, "window_days": SCORED_DAYS})
        assert xcom_values(nightly, "restated_days")[0]["days"] == [restated.isoformat()]
        assert "re-scored: " + restated.isoformat() in xcom_values(nightly, "report")[0]["notes"][-1]
        (value,) = pipeline.hook.get_first(
            f"SELECT VALUE FROM {PREDICTIONS_TABLE} WHERE USAGE_DATE = '{restated}' AND SERIES = 'compute'"
        )
        truth = pipeline.usage.org_series().loc[pd.Timestamp(restated), "compute"]
        assert value == pytest.approx(truth + 1000, abs=0.01)

        again = run_dag("snowstorm_prediction", {"cost_models": COST_MODELS, "window_days": SCORED_DAYS})
        assert xcom_values(again, "restated_days")[0]["days"] == []
        assert task_states(again, ["any_restated", "rescore_restated"]) == {
            "any_restated": TaskInstanceState.SUCCESS,
            "rescore_restated": TaskInstanceState.SKIPPED,
        }
    finally:
        pipeline.hook.run(
            f"UPDATE {USAGE_TABLE} SET USAGE_IN_CURRENCY = USAGE_IN_CURRENCY - 1000 WHERE {where}"
        )
        run_dag("snowstorm_data_engineering")
        run_dag("snowstorm_feature_engineering")


def test_drift_triggers_retraining_with_the_reason_in_its_conf_and_report(pipeline: PipelineRun) -> None:
    """A week later with no new features: the models are too old and the data is late."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    run = run_dag(
        "snowstorm_prediction",
        {
            "cost_models": COST_MODELS,
            "window_days": SCORED_DAYS,
            "retrain_after_days": 7,
        },
        day=DEMO_RUN_DAY + timedelta(days=7),
    )
    check = xcom_values(run, "monitor")[0]
    assert check["drifted"]
    assert {f["kind"] for f in check["findings"]} == {"model_age", "late_data"}
    assert f"Drift, models retraining: {check['reason']}" in xcom_values(run, "report")[0]["notes"]
    with create_session() as session:
        triggered = (
            session.query(DagRun)
            .filter(DagRun.dag_id == "snowstorm_training")
            .order_by(DagRun.id.desc())
            .first()
        )
    assert triggered.run_type == "operator_triggered"
    assert triggered.conf["reason"] == check["reason"]
    assert "model trained on data up to" in triggered.conf["reason"]
    assert sorted(triggered.conf["cost_models"]) == sorted(COST_MODELS)


def test_the_better_candidate_wins_a_worse_one_needs_force_and_rollback_is_the_same_dag(
    pipeline: PipelineRun,
) -> None:
    """The challenger is judged against the champion (on the labelled span, and beside it in shadow); whichever is
    better is then in production, and the other is refused unless forced."""
    from airflow_provider_snowstorm.example_pipeline import SHADOW_PREDICTIONS_TABLE
    from airflow_provider_snowstorm.registry import ModelStore

    store = ModelStore(pipeline.model_store)
    champion = store.resolve("snowstorm-compute", alias="production").version
    challenger = store.resolve("snowstorm-compute", alias="challenger").version
    judged = promote(EXAMPLE_DAGS, "compute", "challenger", "try the challenger", may_refuse=True)  # by alias
    assert (judged["from"], judged["to"]) == (champion, challenger)
    # Also judged on the days it scored in shadow beside the champion (shown, not decisive).
    # The shadow period: every day the challenger scored in shadow (earlier tests score earlier windows too).
    (first_shadow,) = pipeline.hook.get_first(f"SELECT MIN(USAGE_DATE) FROM {SHADOW_PREDICTIONS_TABLE}")
    window = f"{first_shadow}..{SCORED_UNTIL}: candidate (F1 "
    assert judged["shadow_comparison"].startswith(window), judged["shadow_comparison"]
    better, worse = (challenger, champion) if judged["accepted"] else (champion, challenger)
    assert store.resolve("snowstorm-compute", alias="production").version == better

    refused = promote(EXAMPLE_DAGS, "compute", worse, "try the other one", may_refuse=True)
    assert (refused["from"], refused["to"], refused["accepted"]) == (better, worse, False)
    assert "is worse than the champion" in refused["comparison"]
    assert store.resolve("snowstorm-compute", alias="production").version == better

    forced = promote(EXAMPLE_DAGS, "compute", worse, "forced for a test", force=True)
    assert forced["forced"]
    assert store.resolve("snowstorm-compute", alias="production").version == worse
    rollback = promote(EXAMPLE_DAGS, "compute", better, "roll back")
    assert (rollback["from"], rollback["to"], rollback["accepted"]) == (worse, better, True)
    moves = store.alias_history("snowstorm-compute")[-2:]
    assert [(m["previous"], m["version"], m["reason"], m["by"]) for m in moves] == [
        (better, worse, "forced for a test", "dag_test"),
        (worse, better, "roll back", "dag_test"),
    ]


def test_a_backfill_writes_the_rows_the_daily_runs_wrote(pipeline: PipelineRun) -> None:
    """Three daily runs (logical dates, the default window), then ``airflow backfill create`` over the same days."""
    from datetime import UTC, datetime

    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_snowstorm.example_pipeline import PREDICTIONS_TABLE
    from airflow_provider_snowstorm.local.backfill import run_backfill

    days = [SCORED_UNTIL - timedelta(days=offset) for offset in (2, 1, 0)]
    dag = DagBag(dag_folder=str(EXAMPLE_DAGS)).get_dag("snowstorm_prediction")
    columns = "USAGE_DATE, SERIES, VALUE, EXPECTED, ANOMALY_SCORE, IS_ANOMALY, MODEL_VERSION, TRAINING_RUN"
    query = f"SELECT {columns} FROM {PREDICTIONS_TABLE} WHERE USAGE_DATE BETWEEN %s AND %s ORDER BY 1, 2"

    daily = {}
    for day in days:
        run = dag.test(
            logical_date=datetime(day.year, day.month, day.day, tzinfo=UTC), run_conf={"window_days": 1}
        )
        assert run.state == "success"
        daily[day] = read_dataframe(pipeline.hook, query, [day, day])
    runs = run_backfill("snowstorm_prediction", EXAMPLE_DAGS, days[0], days[-1], {"window_days": 1})
    again = run_backfill("snowstorm_prediction", EXAMPLE_DAGS, days[0], days[-1], {"window_days": 1})

    assert [run.state for run in [*runs, *again]] == ["success"] * 6
    assert [run.run_type for run in runs] == ["backfill"] * 3
    backfilled = read_dataframe(pipeline.hook, query, [days[0], days[-1]])
    expected = pd.concat(daily.values(), ignore_index=True)
    pd.testing.assert_frame_equal(backfilled, expected)
    assert len(backfilled) == len(days) * len(COST_MODELS)
