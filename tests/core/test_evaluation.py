"""Evaluation metrics on scoring's long rows, label validation, and the champion/challenger comparison."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.evaluation import (
    compare_evaluations,
    evaluate_predictions,
    validate_labels,
)


def metrics(f1: float, false_alarms: float = 0.0, ap: float | None = 0.5) -> dict[str, float | None]:
    return {"f1": f1, "false_alarms_per_month": false_alarms, "average_precision": ap}


def test_no_champion_accepts_the_candidate() -> None:
    assert compare_evaluations(None, metrics(0.1)) == (True, "no model in production yet")


@pytest.mark.parametrize(
    ("champion", "candidate", "better"),
    [
        (metrics(0.8), metrics(0.9), True),
        (metrics(0.8), metrics(0.8), True),  # as good: accepted
        (metrics(0.8), metrics(0.7), False),
        (metrics(0.8, false_alarms=0.5), metrics(0.8, false_alarms=0.2), True),  # F1 ties: fewer false alarms
        (metrics(0.8, false_alarms=0.2), metrics(0.8, false_alarms=0.5), False),
        (metrics(0.8, ap=0.9), metrics(0.8, ap=0.6), False),  # then average precision
        (metrics(0.8, ap=None), metrics(0.8, ap=0.1), True),  # no AP ranks lowest
    ],
)
def test_the_candidate_must_be_at_least_as_good(champion, candidate, better: bool) -> None:
    accepted, text = compare_evaluations(champion, candidate)
    assert accepted is better
    assert ("at least as good as" if better else "worse than") in text
    assert f"F1 {candidate['f1']:.2f}" in text


def test_labels_name_the_bad_row() -> None:
    with pytest.raises(ValueError, match=r"row 2 has end 'soon', not a date"):
        validate_labels(
            [
                {"series": "a", "start": "2025-01-01", "end": "2025-01-02"},
                {"series": "a", "start": "2025-01-03", "end": "soon"},
            ]
        )
    with pytest.raises(ValueError, match=r"row 1 ends \(2025-01-01\) before it starts"):
        validate_labels([{"series": "a", "start": "2025-01-05", "end": "2025-01-01"}])
    with pytest.raises(ValueError, match=r"lack column\(s\) \['end'\]"):
        validate_labels([{"series": "a", "start": "2025-01-05"}])


def test_a_span_without_labelled_days_has_no_average_precision() -> None:
    days = pd.date_range("2025-01-01", periods=5, freq="D")
    predictions = pd.DataFrame({"usage_date": days, "series": "a", "anomaly_score": 1.0, "is_anomaly": False})
    result = evaluate_predictions(predictions, pd.DataFrame(columns=["series", "start", "end"]))
    assert (result.incidents, result.false_alarms, result.average_precision) == (0, 0, None)
    other = pd.DataFrame([{"series": "b", "start": days[0], "end": days[1]}])  # another series: ignored
    assert evaluate_predictions(predictions, other).incidents == 0
