"""Drift of recent features and scores against the reference a model keeps from its training data."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from airflow_provider_snowstorm.core.drift import DriftLimits, alarm_runs, check_drift, reference_profile
from tests.core.conftest import weekly_costs


@pytest.fixture
def history() -> pd.DataFrame:
    return weekly_costs(140, series=1, seed=3).set_axis(["compute"], axis=1)


@pytest.fixture
def references(history: pd.DataFrame) -> dict:
    return reference_profile(history.iloc[:112])


def recent(history: pd.DataFrame) -> pd.DataFrame:
    return history.iloc[112:]


def test_data_like_the_training_data_does_not_drift(history, references) -> None:
    report = check_drift(recent(history), references, training_ends={"compute": "2025-04-27"})
    assert not report.drifted, report.reason
    assert report.reason.startswith("no drift")
    assert report.checked["compute"]["level_ratio"] == pytest.approx(1.0, abs=0.1)


def test_a_level_shift_drifts_and_says_by_how_much(history, references) -> None:
    report = check_drift(recent(history) * 2.0, references)
    assert [f.kind for f in report.findings] == ["level"]
    assert report.drifted_series == ["compute"]
    assert re.fullmatch(r"compute: level 2\.1\dx the training level \(limit 0\.67-1\.50x\)", report.reason)


def test_a_new_weekly_profile_drifts(history, references) -> None:
    flipped = recent(history).copy()
    weekend = flipped.index.day_of_week >= 5
    flipped.loc[weekend, "compute"] *= 3.0
    report = check_drift(flipped, references, limits=DriftLimits(level_tolerance=10))
    assert [f.kind for f in report.findings] == ["weekly_profile"]


def test_missing_late_and_new_series_are_reported(history, references) -> None:
    gappy = recent(history).drop(recent(history).index[[3, 4]])
    report = check_drift(
        gappy,
        references,
        feature_columns=["compute", "storage", "ai_services"],
        known_series=["compute", "storage"],
        expected_last_day=date(2025, 6, 1),
    )
    kinds = {f.kind: f for f in report.findings}
    assert set(kinds) == {"missing_days", "late_data", "new_series"}
    assert kinds["missing_days"].value == 2
    assert kinds["late_data"].value == (date(2025, 6, 1) - gappy.index[-1].date()).days
    assert "ai_services" in kinds["new_series"].message
    assert "storage" not in kinds["new_series"].message
    assert report.drifted_series == ["compute"]


def test_alarms_the_budget_makes_improbable_are_score_drift(history, references) -> None:
    days = recent(history).index
    flags = np.zeros(len(days), dtype=bool)
    predictions = pd.DataFrame({"usage_date": days, "series": "compute", "is_anomaly": flags})
    quiet = check_drift(recent(history), references, predictions=predictions, alarm_budgets={"compute": 0.1})
    assert not quiet.drifted
    flags[[2, 8, 15, 22]] = True  # four separate alarms in four weeks against 0.1 a month
    noisy = check_drift(
        recent(history),
        references,
        predictions=predictions.assign(is_anomaly=flags),
        alarm_budgets={"compute": 0.1},
    )
    assert [f.kind for f in noisy.findings] == ["alarm_rate"]
    assert noisy.checked["compute"]["alarms"] == 4


def test_an_old_model_is_reported(history, references) -> None:
    report = check_drift(recent(history), references, training_ends={"compute": "2025-01-31"})
    assert [f.kind for f in report.findings] == ["model_age"]


def test_alarm_runs_count_pages_not_days() -> None:
    assert alarm_runs([False, True, True, False, True]) == 2
    assert alarm_runs([]) == 0


def test_a_series_without_reference_fails_clearly(history) -> None:
    with pytest.raises(ValueError, match="no training reference for series 'compute'"):
        check_drift(recent(history), {})
