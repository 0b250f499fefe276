"""Calibrated thresholds (``core.thresholds``): the tail fit, the bound on how far it may extrapolate, and the
floor set by the training span's own excursions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from airflow_provider_snowstorm.core.thresholds import (
    FULL_TAIL_SCORES,
    MAX_EXTRAPOLATION,
    budget_thresholds,
    budget_to_risk,
    excursion_peaks,
    excursion_thresholds,
    nan_quantiles,
    risk_floor,
    set_aside_incidents,
    tail_thresholds,
)


def test_a_deep_extrapolation_stays_within_reach_of_the_training_scores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hourly data asks for a risk far below one training row: the heavy-tailed prior alone would put the
    threshold far above any score seen; the bound keeps it at 1.5 times the largest."""
    from airflow_provider_snowstorm.core import thresholds as module

    rng = np.random.default_rng(0)
    scores = np.abs(rng.standard_t(5, (800, 3)))
    risk = budget_to_risk(0.1, rows_per_day=24)
    bounded = tail_thresholds(scores, risk)
    monkeypatch.setattr(module, "MAX_EXTRAPOLATION", np.inf)
    unbounded = tail_thresholds(scores, risk)
    largest = scores.max(axis=0)
    assert (bounded <= MAX_EXTRAPOLATION * largest + 1e-9).all()
    binds = unbounded > MAX_EXTRAPOLATION * largest
    assert binds.any()
    assert bounded[binds] == pytest.approx(MAX_EXTRAPOLATION * largest[binds])
    assert bounded[~binds] == pytest.approx(unbounded[~binds])


def test_a_short_span_may_extrapolate_further_than_a_long_one() -> None:
    """The largest of twenty scores understates the tail: its bound grows by sqrt(FULL_TAIL_SCORES / 20) = 2."""
    rng = np.random.default_rng(3)
    scores = np.abs(rng.standard_t(4, (2000, 1)))
    risk = budget_to_risk(0.1, rows_per_day=1)
    short = scores[:20]
    widened = tail_thresholds(short, risk)[0]
    assert MAX_EXTRAPOLATION * short.max() < widened <= 2 * MAX_EXTRAPOLATION * short.max() + 1e-9
    assert (
        tail_thresholds(scores[:FULL_TAIL_SCORES], risk)[0]
        <= MAX_EXTRAPOLATION * scores[:FULL_TAIL_SCORES].max()
    )


def test_heavier_tails_get_higher_thresholds() -> None:
    rng = np.random.default_rng(1)
    light = np.abs(rng.standard_normal(2000))
    heavy = np.abs(rng.standard_t(3, 2000))
    low, high = tail_thresholds(np.column_stack([light, heavy]), budget_to_risk(0.1, rows_per_day=1))
    assert 3.0 <= low < high


def test_a_tail_that_looks_bounded_is_extrapolated_as_an_exponential_one() -> None:
    """Uniform scores fit a negative shape above their 90% quantile; the threshold extrapolates with shape 0
    (``MIN_SHAPE``) instead, exactly u + median excess / ln 2 * ln(tail share / risk), widened for its excesses."""
    scores = np.random.default_rng(4).uniform(0.0, 5.0, (2000, 1))
    risk = 1e-3
    u = np.quantile(scores, 0.9)
    excesses = scores[scores > u] - u
    exponential = (u + np.median(excesses) / np.log(2.0) * np.log(excesses.size / scores.size / risk)) * (
        1.0 + 0.5 / np.sqrt(excesses.size)
    )
    assert exponential < MAX_EXTRAPOLATION * scores.max()  # the bound does not decide here
    assert tail_thresholds(scores, risk)[0] == pytest.approx(exponential, rel=1e-12)


def test_a_series_without_scores_gets_the_floor_or_the_other_series_threshold() -> None:
    assert tail_thresholds(np.full((50, 1), np.nan), 0.01)[0] == 3.0
    scores = np.column_stack([np.full(50, np.nan), np.linspace(0, 5, 50)])
    assert tail_thresholds(scores, 0.01)[0] == pytest.approx(tail_thresholds(scores[:, 1:], 0.01)[0])
    with pytest.raises(ValueError, match="risk"):
        tail_thresholds(scores, 0.0)


def test_a_series_with_few_scores_borrows_the_other_series_tails() -> None:
    """Twenty calm scores say little about a tail: among heavy-tailed series, the threshold moves most of the way
    towards theirs (by the 60 of FULL_TAIL_SCORES it lacks)."""
    rng = np.random.default_rng(5)
    heavy = np.abs(rng.standard_t(3, (500, 4)))
    calm = np.full((500, 1), np.nan)
    calm[:20, 0] = np.abs(rng.standard_normal(20))
    risk = budget_to_risk(0.1, rows_per_day=1)
    alone = tail_thresholds(calm, risk)[0]
    together = tail_thresholds(np.column_stack([calm, heavy]), risk)
    pooled = tail_thresholds(np.column_stack([calm, heavy]).reshape(-1, 1), risk)[0]
    assert alone < together[0] < pooled
    own = 20 / FULL_TAIL_SCORES
    assert together[0] == pytest.approx(alone**own * pooled ** (1 - own))


def test_no_threshold_is_below_the_gaussian_quantile_of_its_risk() -> None:
    """A calm training span (scores under 2) at the per-row risk of 5-minute rows got the floor of 3 deviations,
    which Gaussian noise crosses about 24 times a month at that frequency; the floor is now its quantile, 4.39."""
    rng = np.random.default_rng(2)
    calm = np.abs(rng.normal(0.0, 0.5, (2000, 1))).clip(max=1.9)
    risk = budget_to_risk(0.1, rows_per_day=288)
    assert risk_floor(risk) == pytest.approx(4.389, abs=1e-3)
    assert tail_thresholds(calm, risk)[0] == pytest.approx(risk_floor(risk))
    # Daily rows at the default budget keep the floor of three deviations.
    assert risk_floor(budget_to_risk(0.1, rows_per_day=1)) == 3.0
    assert tail_thresholds(calm, budget_to_risk(0.1, rows_per_day=1))[0] == 3.0


@pytest.mark.parametrize(
    ("gap", "expected"),
    [
        (0, [[7.0, 6.0, 9.0], [5.0, 5.0, 8.0], [4.0, np.nan, np.nan]]),  # the adjacent 9s are one excursion
        (1, [[7.0, 6.0, 9.0]]),  # rows one apart join: a single excursion per series
    ],
)
def test_excursion_peaks_are_each_runs_largest_score_highest_first(
    gap: int, expected: list[list[float]]
) -> None:
    scores = np.array([[0, 5, 0], [4, 0, 9], [0, 6, 9], [5, 0, np.nan], [0, 2, 8], [7, 1, 0]], dtype=float)
    np.testing.assert_array_equal(excursion_peaks(scores, gap), expected)


def test_excursion_thresholds_set_the_level_normal_excursions_exceed_at_the_budgeted_rate() -> None:
    """One series with 40 normal one-row bursts in a month, one of noise alone."""
    rng = np.random.default_rng(2)
    scores = np.abs(rng.standard_normal((720, 2)))
    bursts = rng.choice(np.arange(0, 720, 10), 40, replace=False)
    scores[bursts, 0] = 4.0 + rng.exponential(2.0, 40)
    thresholds = excursion_thresholds(scores, 0, alarm_budget=0.1, months=1.0, incidents=1)
    # Noise alone: at most its second-highest row (the highest excursion may be an incident).
    assert thresholds[1] <= np.sort(scores[:, 1])[-2]
    # 39 normal excursions a month, 0.1 allowed: above all but a few of them, within 1.5x the largest score.
    assert np.sort(scores[bursts, 0])[-3] < thresholds[0] <= 1.5 * scores[:, 0].max()
    looser = excursion_thresholds(scores, 0, alarm_budget=3.0, months=1.0, incidents=1)
    assert looser[0] < thresholds[0]


def test_three_normal_excursions_beyond_the_budget_are_fitted_above_the_highest() -> None:
    """Four excursions in a month, the highest perhaps real: three normal ones, thirty times the budget's rate, are
    enough for a tail, which puts the level above the highest of them (within 1.5x the largest score)."""
    scores = np.zeros((720, 1))
    scores[[100, 300, 500, 650], 0] = [6.0, 7.0, 8.0, 9.0]
    threshold = excursion_thresholds(scores, 0, alarm_budget=0.1, months=1.0, incidents=1)[0]
    assert 8.0 < threshold <= 1.5 * 9.0
    # Two normal ones are too few to fit a tail, but no threshold below the higher of them keeps the budget.
    assert excursion_thresholds(scores[:600], 0, alarm_budget=0.1, months=1.0, incidents=1)[0] == 7.0


def test_few_normal_excursions_within_the_budget_do_not_raise_the_threshold() -> None:
    scores = np.zeros((720, 1))
    scores[[100, 300, 500], 0] = [6.0, 7.0, 8.0]
    # Two normal excursions in 30 months: fewer than the 3 that a budget of 0.1 a month allows.
    assert excursion_thresholds(scores, 0, alarm_budget=0.1, months=30.0, incidents=1)[0] == 0.0
    assert excursion_thresholds(scores, 0, alarm_budget=0.1, months=3.0, incidents=1)[0] == 7.0


def test_an_incident_set_aside_keeps_only_its_peak() -> None:
    """Series 0: an excursion of rows 1-3 (rows one apart join at gap 1, the row between them included) and a lower
    one-row one; series 1 has none."""
    scores = np.array([[0, 0], [4, 1], [1, 2], [9, np.nan], [0, 1], [0, 1], [0, 1], [6, 1]], dtype=float)
    kept = set_aside_incidents(scores, gap=1, incidents=1)
    np.testing.assert_array_equal(kept[:, 0], [0, np.nan, np.nan, 9, 0, 0, 0, 6])
    np.testing.assert_array_equal(kept[:, 1], scores[:, 1])
    np.testing.assert_array_equal(set_aside_incidents(scores, gap=1, incidents=0), scores)
    both = set_aside_incidents(scores, gap=1, incidents=2)
    assert both[7, 0] == 6.0  # a one-row excursion is its own peak
    np.testing.assert_array_equal(set_aside_incidents(np.zeros((5, 2)), gap=0, incidents=1), np.zeros((5, 2)))


def test_the_budget_threshold_is_the_tail_fit_without_incidents_raised_to_the_normal_excursions() -> None:
    """One month of hourly scores: series 0 is noise with a few bursts (its excursions set the level), series 1 has
    one real incident (set aside from the tail fit), series 2 is calm."""
    rng = np.random.default_rng(4)
    scores = np.abs(rng.standard_normal((730, 3)))
    scores[100:104, 0] = scores[300:303, 0] = scores[500:502, 0] = scores[650:653, 0] = 6.0
    scores[200:230, 1] = 20.0
    rows_per_day = 24.0
    months = 730 / rows_per_day / 30.44
    got = budget_thresholds(scores, 2, alarm_budget=0.1, rows_per_day=rows_per_day, incidents_per_month=1.0)
    risk = budget_to_risk(0.1, rows_per_day)
    expected = np.maximum(
        tail_thresholds(set_aside_incidents(scores, 2, 1), risk),
        excursion_thresholds(scores, 2, alarm_budget=0.1, months=months, incidents=1),
    )
    np.testing.assert_array_equal(got, expected)
    assert got[0] > 6.0  # four bursts of 6 in a month are normal at a budget of one alarm in ten months
    assert got[1] < 20.0
    assert got[2] < 6.0


@pytest.mark.parametrize("quantiles", [0.9, [0.25, 0.5], [0.0, 0.37, 1.0]])
def test_nan_quantiles_equal_numpy_to_the_last_bit(quantiles: float | list[float]) -> None:
    rng = np.random.default_rng(1)
    values = rng.standard_t(3, (57, 6)) * 1000.0
    values[rng.random(values.shape) < 0.4] = np.nan
    values[:, 0] = np.nan  # a series without scores
    values[1:, 1] = np.nan  # a single score
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy on the all-NaN column
        expected = np.nanquantile(values, quantiles, axis=0)
    np.testing.assert_array_equal(nan_quantiles(values, quantiles), expected)
