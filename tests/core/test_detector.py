from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from airflow_provider_snowstorm.core.detector import (
    DecomposeIsolationForest,
    DetectorInputError,
    _consensus,
    min_history_days,
)
from airflow_provider_snowstorm.core.schema import PREDICTION_COLUMNS
from tests.core.conftest import weekly_costs, weekly_job

TRAIN_DAYS = 120


@pytest.fixture
def model(costs: pd.DataFrame) -> DecomposeIsolationForest:
    return DecomposeIsolationForest(random_state=0).fit(costs.iloc[:TRAIN_DAYS])


def test_params_follow_scikit_learn_conventions() -> None:
    detector = DecomposeIsolationForest(period=7, threshold_cutoff=4.0, random_state=1)
    assert detector.get_params()["threshold_cutoff"] == 4.0
    assert clone(detector).get_params() == detector.get_params()


def test_detect_returns_one_row_per_day_and_series(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    new_days = costs.iloc[TRAIN_DAYS:]
    result = model.detect(new_days)
    assert list(result.columns) == list(PREDICTION_COLUMNS)
    assert len(result) == new_days.size
    first = result[result["series"] == "series_1"].iloc[0]
    assert first["usage_date"] == new_days.index[0]
    assert first["value"] == new_days.iloc[0]["series_1"]
    assert first["residual"] == pytest.approx(first["value"] - first["expected"])
    assert first["threshold"] == model.thresholds["series_1"]


def test_a_spike_is_flagged_and_ordinary_days_mostly_not(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    new_days = costs.iloc[TRAIN_DAYS:].copy()
    spike_day = new_days.index[10]
    new_days.loc[spike_day, "series_0"] *= 4
    result = model.detect(new_days).set_index(["usage_date", "series"])
    assert result.loc[(spike_day, "series_0"), "is_anomaly"]
    assert (
        result.loc[(spike_day, "series_0"), "anomaly_score"]
        > result.loc[(spike_day, "series_1"), "anomaly_score"]
    )
    assert result["is_anomaly"].mean() < 0.1


def test_a_month_end_run_is_learned_and_its_double_still_alarms() -> None:
    """A monthly charge fifty times the daily cost: its normal variation widens that day's scale, not so far that a
    run twice its usual size passes."""
    rng = np.random.default_rng(3)
    index = pd.date_range("2024-01-01", periods=500, freq="D")
    month_end = index.is_month_end
    values = 20 * rng.lognormal(0, 0.1, 500) + np.where(month_end, 1000 * rng.lognormal(0, 0.05, 500), 0.0)
    doubled = np.flatnonzero(month_end)[-1]
    values[doubled] += 1000
    frame = pd.DataFrame({"billing": values}, index=index)
    result = DecomposeIsolationForest().fit(frame.iloc[:400]).detect(frame, start=index[400])
    flagged = result.loc[result["is_anomaly"], "usage_date"].tolist()
    assert flagged == [index[doubled]]


def test_scores_are_causal_future_data_never_changes_past_scores(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    new_days = costs.iloc[TRAIN_DAYS:]
    before = model.detect(new_days)
    changed = new_days.copy()
    changed.iloc[15:] *= 3
    after = model.detect(changed)
    past = before["usage_date"] < new_days.index[15]
    pd.testing.assert_frame_equal(before[past], after[past])
    assert not before[~past]["value"].equals(after[~past]["value"])


def test_scoring_new_days_alone_equals_scoring_them_with_all_history(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    alone = model.detect(costs.iloc[TRAIN_DAYS:])
    with_history = model.detect(costs, start=costs.index[TRAIN_DAYS]).reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, with_history)


def test_scoring_one_day_at_a_time_equals_scoring_the_window(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    window = model.detect(costs.iloc[TRAIN_DAYS : TRAIN_DAYS + 5])
    daily = pd.concat(
        [model.detect(costs.iloc[: TRAIN_DAYS + k + 1], start=costs.index[TRAIN_DAYS + k]) for k in range(5)],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(window, daily)


def test_after_a_gap_the_frame_must_bring_its_history(model: DecomposeIsolationForest) -> None:
    later = weekly_costs(60, start="2025-09-01")
    with pytest.raises(DetectorInputError, match=r"needs the .* days before it"):
        model.detect(later)


def test_fit_detect_equals_fit_then_detect(costs: pd.DataFrame) -> None:
    detector = DecomposeIsolationForest(random_state=0)
    together = detector.fit_detect(costs)
    separately = clone(detector).fit(costs).detect(costs)
    pd.testing.assert_frame_equal(together, separately)


def test_a_fixed_threshold_cutoff_replaces_the_calibrated_threshold(costs: pd.DataFrame) -> None:
    training = costs.iloc[:TRAIN_DAYS]
    fixed = DecomposeIsolationForest(threshold_cutoff=4.5, random_state=0).fit(training)
    assert (fixed.thresholds == 4.5).all()


@pytest.fixture
def heavy_tailed_costs() -> pd.DataFrame:
    """900 days of 40 series with Student-t noise (3 degrees of freedom, 15%) on a weekday pattern."""
    rng = np.random.default_rng(11)
    days = 900
    index = pd.date_range("2023-01-02", periods=days, freq="D")
    weekday = np.where(np.arange(days) % 7 < 5, 1.0, 0.5)[:, None]
    noise = 1 + 0.15 * np.clip(rng.standard_t(3, (days, 40)), -5, 5)
    return pd.DataFrame(1000 * weekday * noise, index=index, columns=[f"s{i}" for i in range(40)])


def test_a_larger_alarm_budget_lowers_every_threshold(heavy_tailed_costs: pd.DataFrame) -> None:
    training = heavy_tailed_costs.iloc[:365]
    strict = DecomposeIsolationForest(alarm_budget=0.05, random_state=0).fit(training)
    loose = DecomposeIsolationForest(alarm_budget=3.0, random_state=0).fit(training)
    assert (loose.thresholds < strict.thresholds).all()
    assert (loose.thresholds >= 3.0).all()


def test_calibrated_false_alarms_stay_near_the_budget_on_normal_heavy_tailed_data(
    heavy_tailed_costs: pd.DataFrame,
) -> None:
    """On 40 normal heavy-tailed series the alarm rate is of the budget's order."""
    frame, days = heavy_tailed_costs, len(heavy_tailed_costs)
    model = DecomposeIsolationForest(alarm_budget=0.5, random_state=0).fit(frame.iloc[:365])
    flags = model.predict(frame.iloc[365:]).to_numpy() == -1
    starts = flags & ~np.vstack([np.zeros((1, 40), bool), flags[:-1]])
    alarms_per_series_month = starts.sum() / 40 / ((days - 365) / 30.44)
    assert 0.05 < alarms_per_series_month < 1.0


def test_a_row_scores_what_both_baselines_agree_on() -> None:
    decomposition = np.array([4.0, 4.0, -6.0, 5.0, 3.0, np.nan])
    same_position = np.array([9.0, 2.0, -1.5, -7.0, np.nan, 4.0])
    np.testing.assert_array_equal(
        _consensus(decomposition, same_position), [4.0, 2.0, -1.5, 0.0, 3.0, np.nan]
    )


def test_the_second_opinion_finds_a_smaller_spike_within_the_same_budget(
    heavy_tailed_costs: pd.DataFrame,
) -> None:
    """Normal noise rarely deviates from both baselines at once, so at the same alarm budget the thresholds are
    lower: a 2x day the decomposition alone lets pass is found, and normal days alarm within twice the budget."""
    training, new_days = heavy_tailed_costs.iloc[:365], heavy_tailed_costs.iloc[365:].copy()
    new_days.iloc[100, 3] *= 2.0
    months = len(new_days) / 30.44
    alone = DecomposeIsolationForest(position_periods=0, random_state=0).fit(training)
    both = DecomposeIsolationForest(random_state=0).fit(training)
    assert np.median(both.threshold_) < np.median(alone.threshold_)
    flags = both.predict(new_days) == -1
    assert flags.iloc[100, 3]
    assert not (alone.predict(new_days) == -1).iloc[100, 3]
    assert 0 < flags.to_numpy().sum() / 40 / months < 0.2


def test_natural_bursts_the_training_span_shows_again_and_again_do_not_set_the_threshold() -> None:
    """Hourly series with one-hour bursts of 2-4x in 1% of hours: the row-wise tail fit takes the training span's
    bursts for incidents; the fit to its excursions lifts the thresholds above most of them, and a ten-fold hour is
    still found."""
    rng = np.random.default_rng(5)
    rows = 24 * 60
    values = 100 * rng.lognormal(0, 0.05, (rows, 10))
    bursts = rng.random((rows, 10)) < 0.01
    values[bursts] *= rng.uniform(2, 4, bursts.sum())
    frame = pd.DataFrame(
        values,
        index=pd.date_range("2024-01-01", periods=rows, freq="h"),
        columns=[f"s{i}" for i in range(10)],
    )
    training, new_hours = frame.iloc[:720], frame.iloc[720:].copy()
    new_hours.iloc[300, 2] *= 10
    fitted = DecomposeIsolationForest(period=24, training_incidents_per_month=None).fit(training)
    ceiled = DecomposeIsolationForest(period=24).fit(training)
    assert (ceiled.threshold_ >= fitted.threshold_).all()
    alarms = {
        name: model.predict(new_hours) == -1 for name, model in (("fitted", fitted), ("ceiled", ceiled))
    }
    assert alarms["ceiled"].iloc[300, 2]
    assert alarms["ceiled"].to_numpy().sum() < 0.6 * alarms["fitted"].to_numpy().sum()


def test_a_long_incident_in_the_training_span_does_not_raise_the_threshold() -> None:
    """Half-hourly series, one with a flapping day-long incident in its training span (every other row 8 noise
    scales up, so no level shift is rebased): its 24 rows would fill a quarter of the tail the threshold is fitted
    to. Set aside but for its peak, the threshold stays near the clean series' ones and a later burst of six rows at
    6 scales is found; read as noise, the threshold was 12 and the burst passed."""
    rng = np.random.default_rng(11)
    rows = 48 * 56
    values = 100 + 5 * rng.standard_normal((rows, 6))
    values[400:448:2, 0] += 40
    frame = pd.DataFrame(
        values, index=pd.date_range("2024-07-01", periods=rows, freq="30min"), columns=list("abcdef")
    )
    training, later = frame.iloc[:1075], frame.iloc[1075:].copy()
    later.iloc[500:506, 0] += 30
    model = DecomposeIsolationForest(period=48).fit(training)
    read_as_noise = DecomposeIsolationForest(period=48, training_incidents_per_month=None).fit(training)
    assert model.threshold_[0] < 1.3 * np.median(model.threshold_[1:])
    assert read_as_noise.threshold_[0] > 2 * model.threshold_[0]
    assert (model.predict(later).iloc[500:506, 0] == -1).any()
    assert not (read_as_noise.predict(later).iloc[500:506, 0] == -1).any()


def test_drops_have_a_threshold_of_their_own() -> None:
    """Log-normal costs: the upper tail sets the shared threshold; rows below expectation calibrate their own,
    lower one, and more 60% drops are found (each flagged row's threshold is the one of its direction)."""
    rng = np.random.default_rng(3)
    days = 500
    weekday = np.where(np.arange(days) % 7 < 5, 1.0, 0.6)[:, None]
    frame = pd.DataFrame(
        1000 * weekday * rng.lognormal(0, 0.1, (days, 20)),
        index=pd.date_range("2024-01-01", periods=days, freq="D"),
        columns=[f"s{i}" for i in range(20)],
    )
    training, new_days = frame.iloc[:300], frame.iloc[300:].copy()
    drop_rows = [20 + 7 * (column % 5) for column in range(20)]
    for column, row in enumerate(drop_rows):
        new_days.iloc[row, column] *= 0.4
    own = DecomposeIsolationForest(random_state=0).fit(training)
    shared = DecomposeIsolationForest(calibrate_drops=False, random_state=0).fit(training)
    assert own.thresholds.equals(shared.thresholds)
    assert shared.drop_thresholds.equals(shared.thresholds)
    assert (own.drop_thresholds <= own.thresholds).all()
    assert own.drop_thresholds.median() < own.thresholds.median()

    def found(model: DecomposeIsolationForest) -> int:
        flags = model.predict(new_days) == -1
        return sum(bool(flags.iloc[row, column]) for column, row in enumerate(drop_rows))

    assert found(own) >= found(shared) + 3
    result = own.detect(new_days)
    drops = result[result["residual"] < 0]
    np.testing.assert_array_equal(drops["threshold"], own.drop_thresholds[drops["series"]].to_numpy())
    assert own.metadata["drop_thresholds"] == own.drop_thresholds.to_dict()


def test_an_outage_on_a_noisy_series_is_found_by_its_run_of_zeros() -> None:
    """Gamma noise with a CV of 0.5: four days of zero spend are two scales below the level, inside the noise for
    both z-scores, but a run of zeros on series that are never zero is not."""
    rng = np.random.default_rng(5)
    days, series = 400, 20
    frame = pd.DataFrame(
        100 * rng.gamma(4.0, 0.25, (days, series)),
        index=pd.date_range("2024-01-01", periods=days, freq="D"),
        columns=[f"s{i}" for i in range(series)],
    )
    training, new_days = frame.iloc[:250].copy(), frame.iloc[250:].copy()
    training.iloc[100:103, :5] = 0.0  # an outage in the training span too
    starts = [20 + 5 * column for column in range(series)]
    outage = np.zeros(new_days.shape, dtype=bool)
    for column, start in enumerate(starts):
        new_days.iloc[start : start + 4, column] = 0.0
        outage[start : start + 4, column] = True

    def flags(model: DecomposeIsolationForest) -> np.ndarray:
        return (model.predict(new_days) == -1).to_numpy()

    def found(flagged: np.ndarray) -> int:
        return sum(bool(flagged[start : start + 4, column].any()) for column, start in enumerate(starts))

    model = DecomposeIsolationForest(random_state=0).fit(training)
    plain = DecomposeIsolationForest(outages=False, random_state=0).fit(training)
    # A run of zeros is evidence of a drop only: the threshold of rises is the one without the outage score.
    assert model.thresholds.equals(plain.thresholds)
    with_runs, without = flags(model), flags(plain)
    assert found(with_runs) >= 18
    assert found(without) <= 5
    assert (with_runs & ~outage).sum() <= (without & ~outage).sum() + 2
    scores = model.score_samples(new_days).to_numpy()
    assert (scores[starts[0] + 1 : starts[0] + 4, 0] > scores[starts[0], 0]).all()  # each zero day adds to it


def test_a_weekly_job_s_noise_neither_alarms_nor_hides_a_quiet_day_s_spike() -> None:
    """A steady load plus a job on two weekdays with twice its relative noise: scaled relative to the expected
    value, the job days' noise is not an anomaly and a 1.5x quiet day is found."""
    days, series = 400, 20
    frame = pd.DataFrame(
        weekly_job(days, series)[0],
        index=pd.date_range("2024-01-01", periods=days, freq="D"),
        columns=[f"s{i}" for i in range(series)],
    )
    training, new_days = frame.iloc[:250], frame.iloc[250:].copy()
    spikes = np.zeros(new_days.shape, dtype=bool)
    for column in range(series):
        spikes[25 + 7 * (column % 10), column] = True  # a Wednesday
    new_days = new_days.where(~spikes, new_days * 1.5)

    def flags(relative_scale: bool) -> np.ndarray:
        model = DecomposeIsolationForest(relative_scale=relative_scale, random_state=0).fit(training)
        return (model.predict(new_days) == -1).to_numpy()

    relative, absolute = flags(True), flags(False)
    assert (relative & spikes).sum() > (absolute & spikes).sum()
    assert (relative & ~spikes).sum() < (absolute & ~spikes).sum()


def test_ordinary_days_of_sporadic_use_do_not_alarm() -> None:
    """Series used on about a fifth of the days: scaled by the median absolute deviation of mostly idle days, an
    ordinary day of use could be a hundred scales out and alarm; by their mean absolute deviation it does not."""
    rng = np.random.default_rng(5)
    days, series = 400, 20
    frame = pd.DataFrame(
        (rng.random((days, series)) < 0.2) * 500 * rng.lognormal(0, 0.5, (days, series)),
        index=pd.date_range("2024-01-01", periods=days, freq="D"),
        columns=[f"s{i}" for i in range(series)],
    )
    training, new_days = frame.iloc[:250], frame.iloc[250:]

    def alarms(sporadic_scale: bool) -> int:
        model = DecomposeIsolationForest(sporadic_scale=sporadic_scale, random_state=0).fit(training)
        return int((model.predict(new_days) == -1).to_numpy().sum())

    # The budget: 0.1 false alarms a month for 20 series over 150 days, about 10.
    assert alarms(True) <= 15
    assert alarms(False) > 30


def test_scores_keep_ranking_beyond_the_training_range(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    new_days = costs.iloc[TRAIN_DAYS:].copy()
    new_days.iloc[10, 0] *= 1.5
    new_days.iloc[17, 0] *= 4.0
    new_days.iloc[24, 0] *= 40.0
    scores = model.score_samples(new_days)["series_0"].iloc[[10, 17, 24]].to_numpy()
    assert scores[0] < scores[1] < scores[2]


@pytest.mark.parametrize(
    "make",
    [
        lambda index: np.zeros(len(index)),
        lambda index: np.full(len(index), 120.0),
        lambda index: np.where(index.day_of_week < 5, 80.0, 6.0),
    ],
    ids=["all-zero", "flat-charge", "exact-weekly"],
)
def test_series_without_variation_never_alarm(make) -> None:
    index = pd.date_range("2025-01-06", periods=200, freq="D")
    frame = pd.DataFrame({"flat": make(index)}, index=index)
    result = DecomposeIsolationForest(random_state=0).fit(frame.iloc[:120]).detect(frame.iloc[120:])
    assert not result["is_anomaly"].any()


def test_hourly_data_with_three_days_of_history_fits_and_flags_a_runaway() -> None:
    index = pd.date_range("2025-03-03", periods=24 * 10, freq="h")
    hour = index.hour.to_numpy()
    rng = np.random.default_rng(2)
    busy = np.where((hour >= 8) & (hour < 18), 10.0, 1.0) * rng.lognormal(0, 0.1, len(index))
    frame = pd.DataFrame({"wh": busy}, index=index)
    frame.iloc[24 * 8 + 20 : 24 * 8 + 26, 0] = 12.0  # left running at full size overnight
    model = DecomposeIsolationForest(period=24, random_state=0).fit(frame.iloc[: 24 * 3])
    assert model.metadata["freq"] == "h"
    result = model.detect(frame.iloc[24 * 3 :]).set_index("usage_date")
    flagged = result.index[result["is_anomaly"]]
    # Three days of history give a wide threshold: the alarm comes within three hours of the start.
    assert index[24 * 8 + 20] <= flagged.min() <= index[24 * 8 + 22]
    assert len(flagged) <= 8


def test_two_weeks_of_five_minute_data_train_on_their_first_15_percent() -> None:
    """The minimum history is the warm-up and eight scored rows: 583 five-minute rows, fewer than 15% of 4,032."""
    index = pd.date_range("2025-03-03", periods=4032, freq="5min")
    rng = np.random.default_rng(5)
    cycle = 100.0 + 30.0 * np.sin(2 * np.pi * np.arange(len(index)) / 288)
    frame = pd.DataFrame({"cpu": cycle + rng.normal(0, 3, len(index))}, index=index)
    assert min_history_days(288) == 583 <= round(0.15 * len(index))
    model = DecomposeIsolationForest(period=288, random_state=0).fit(frame.iloc[:605])
    assert np.isfinite(model.threshold_).all()
    with pytest.raises(DetectorInputError, match=r"needs at least 583 \(the decomposition's warm-up of 575"):
        DecomposeIsolationForest(period=288).fit(frame.iloc[:582])


def test_weekly_data_are_inferred_from_their_dates_and_read_no_months_of_history() -> None:
    index = pd.date_range("2023-01-02", periods=120, freq="W-MON")
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"spend": 700.0 * rng.lognormal(0, 0.05, len(index))}, index=index)
    frame.iloc[110, 0] *= 3.0
    model = DecomposeIsolationForest(period=4, random_state=0).fit(frame.iloc[:80])
    assert model.metadata["freq"] == "7D"
    # The day-of-month adjustment is for daily rows: weekly models need not carry 96 weeks more for it.
    assert model.required_history_days == DecomposeIsolationForest(period=4).required_history_days - (
        31 * 3 + 3
    )
    assert model.required_history_days == DecomposeIsolationForest(period=4, freq="W").required_history_days
    result = model.detect(frame.iloc[80:])
    assert list(result.loc[result["is_anomaly"], "usage_date"]) == [index[110]]


def test_rows_numbered_instead_of_timed_need_freq_to_say_how_far_apart_they_are() -> None:
    values = np.random.default_rng(7).lognormal(3, 0.1, (200, 1))
    values[150] *= 4
    numbered = pd.DataFrame(values, columns=["cpu"])
    with pytest.raises(DetectorInputError, match=r"indexed by numbers \(0 to 199\).*give freq"):
        DecomposeIsolationForest(period=24).fit(numbered)
    timed = numbered.set_axis(pd.date_range("1970-01-01", periods=200, freq="h"))
    by_number = DecomposeIsolationForest(period=24, freq="h").fit(numbered.iloc[:100])
    by_time = DecomposeIsolationForest(period=24).fit(timed.iloc[:100])
    # Row i is i steps after 1970-01-01: the same model and, scored from row 100 on, the same results.
    np.testing.assert_array_equal(by_number.threshold_, by_time.threshold_)
    pd.testing.assert_frame_equal(by_number.detect(numbered.iloc[100:]), by_time.detect(timed.iloc[100:]))


def test_rows_under_a_second_apart_are_refused() -> None:
    index = pd.date_range("2025-03-03", periods=100, freq="500ms")
    with pytest.raises(DetectorInputError, match="500000 apart: the finest step is one second"):
        DecomposeIsolationForest(period=4).fit(pd.DataFrame({"x": np.ones(100)}, index=index))


def test_rows_off_the_frequency_grid_are_named() -> None:
    index = pd.date_range("2025-03-03", periods=100, freq="h").delete(50)
    frame = pd.DataFrame({"wh": np.ones(99)}, index=index)
    with pytest.raises(DetectorInputError, match=r"skips 1 row\(s\) such as \['2025-03-05T02:00:00'\]"):
        DecomposeIsolationForest(period=24).fit(frame)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"seasonality": "multiplicatve"}, "seasonality"),
        ({"threshold_cutoff": -10}, "threshold_cutoff"),
        ({"threshold_cutoff": "3.0"}, "threshold_cutoff"),
        ({"baseline_lag": -5}, "baseline_lag"),
        ({"alarm_budget": 0}, "alarm_budget"),
        ({"period": 1}, "period"),
        ({"direction": "sideways"}, "direction"),
        ({"scorer": "svm"}, "scorer"),
        ({"min_deviation": -1}, "min_deviation"),
        ({"quarterly_periods": -2}, "quarterly_periods"),
    ],
)
def test_every_bad_parameter_is_named_before_any_work(costs: pd.DataFrame, params: dict, name: str) -> None:
    with pytest.raises(DetectorInputError, match=f"'{name}' parameter"):
        DecomposeIsolationForest(**params).fit(costs)


def test_every_init_parameter_has_a_constraint() -> None:
    assert set(DecomposeIsolationForest._parameter_constraints) == set(
        DecomposeIsolationForest().get_params()
    )


def test_predict_marks_anomalies_with_minus_one(model: DecomposeIsolationForest, costs: pd.DataFrame) -> None:
    new_days = costs.iloc[TRAIN_DAYS:]
    labels = model.predict(new_days)
    flags = model.detect(new_days).pivot(index="usage_date", columns="series", values="is_anomaly")
    assert set(np.unique(labels.to_numpy())) <= {-1, 1}
    np.testing.assert_array_equal(labels.to_numpy() == -1, flags[labels.columns].to_numpy())


@pytest.mark.parametrize(
    ("direction", "flagged"), [("both", {"up", "down"}), ("up", {"up"}), ("down", {"down"})]
)
def test_direction_limits_what_is_flagged(costs: pd.DataFrame, direction: str, flagged: set[str]) -> None:
    detector = DecomposeIsolationForest(direction=direction, random_state=0).fit(costs.iloc[:TRAIN_DAYS])
    new_days = costs.iloc[TRAIN_DAYS:].copy()
    new_days.iloc[5, 0] *= 4
    new_days.iloc[20, 0] *= 0.1
    result = detector.detect(new_days).set_index(["usage_date", "series"])
    spike = bool(result.loc[(new_days.index[5], "series_0"), "is_anomaly"])
    drop = bool(result.loc[(new_days.index[20], "series_0"), "is_anomaly"])
    assert {name for name, hit in (("up", spike), ("down", drop)) if hit} == flagged


def test_materiality_filter_ignores_small_deviations(costs: pd.DataFrame) -> None:
    new_days = costs.iloc[TRAIN_DAYS:].copy()
    new_days.iloc[5, 0] *= 4
    strict = DecomposeIsolationForest(min_deviation=1e6, random_state=0).fit(costs.iloc[:TRAIN_DAYS])
    relative = DecomposeIsolationForest(min_relative_deviation=5.0, random_state=0).fit(
        costs.iloc[:TRAIN_DAYS]
    )
    assert not strict.detect(new_days)["is_anomaly"].any()
    assert not relative.detect(new_days)["is_anomaly"].any()


def test_the_default_materiality_floor_is_one_unit_a_day_at_any_frequency() -> None:
    """A small hourly warehouse (0.5 credits a busy hour) left running overnight at 0.3 an hour: 1.0 an hour would
    hide it; the default floor, 1.0 a day, is 1/24 an hour."""
    index = pd.date_range("2025-03-03", periods=24 * 30, freq="h")
    rng = np.random.default_rng(3)
    busy = (index.hour >= 8) & (index.hour < 18)
    frame = pd.DataFrame({"xs": np.where(busy, 0.5 * rng.lognormal(0, 0.1, len(index)), 0.0)}, index=index)
    frame.iloc[24 * 25 + 20 : 24 * 26 + 6, 0] = 0.3
    default = DecomposeIsolationForest(period=24, random_state=0).fit(frame.iloc[: 24 * 14])
    per_hour = DecomposeIsolationForest(period=24, min_deviation=1.0, random_state=0).fit(
        frame.iloc[: 24 * 14]
    )
    assert default._min_deviations([0]) == pytest.approx(1 / 24)
    assert default.predict(frame.iloc[24 * 14 :]).iloc[24 * 11 + 20 :, 0].eq(-1).any()
    assert not per_hour.predict(frame.iloc[24 * 14 :]).eq(-1).any().any()
    daily = DecomposeIsolationForest().fit(frame.resample("D").sum())
    assert daily._min_deviations([0]) == 1.0


def test_unknown_series_is_named(model: DecomposeIsolationForest, costs: pd.DataFrame) -> None:
    with pytest.raises(DetectorInputError, match="series_9"):
        model.detect(costs.iloc[TRAIN_DAYS:].rename(columns={"series_0": "series_9"}))


def test_a_subset_of_the_training_series_can_be_scored(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    both = model.detect(costs.iloc[TRAIN_DAYS:])
    one = model.detect(costs.iloc[TRAIN_DAYS:][["series_1"]])
    pd.testing.assert_frame_equal(
        one.reset_index(drop=True),
        both[both["series"] == "series_1"].reset_index(drop=True),
        check_categorical=False,
    )


def test_too_little_history_says_how_much_is_needed(costs: pd.DataFrame) -> None:
    short = costs.iloc[: min_history_days(7) - 1]
    with pytest.raises(DetectorInputError, match=f"needs at least {min_history_days(7)}"):
        DecomposeIsolationForest().fit(short)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.iloc[:0], "empty"),
        (
            lambda f: f.assign(series_0=f["series_0"].where(f.index != f.index[40])),
            "NaN or infinite value.*series_0",
        ),
        (lambda f: f.assign(series_1=-f["series_1"]), "negative value.*series_1"),
        (lambda f: pd.concat([f, f.iloc[[3]]]), "duplicate dates"),
        (lambda f: f.drop(f.index[50]), "skips 1 day"),
        (lambda f: f.assign(series_0="x"), "non-numeric"),
    ],
)
def test_bad_training_frames_are_refused_with_the_reason(costs: pd.DataFrame, damage, message: str) -> None:
    with pytest.raises(DetectorInputError, match=message):
        DecomposeIsolationForest().fit(damage(costs))


def test_metadata_is_json_safe_and_describes_training(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    import json

    metadata = json.loads(json.dumps(model.metadata))
    assert metadata["training_start"] == costs.index[0].date().isoformat()
    assert metadata["training_end"] == costs.index[TRAIN_DAYS - 1].date().isoformat()
    assert metadata["period"] == 7
    assert metadata["series"] == ["series_0", "series_1"]
    assert set(metadata["versions"]) >= {"scikit-learn", "airflow-provider-snowstorm"}


def test_days_after_a_reported_level_shift_are_continuing_not_new_alarms(costs: pd.DataFrame) -> None:
    detector = DecomposeIsolationForest(random_state=0).fit(costs.iloc[:TRAIN_DAYS])
    shifted = costs.iloc[TRAIN_DAYS:].copy()
    shifted.iloc[5:] *= 3
    result = detector.detect(shifted)
    series = result[result["series"] == "series_0"].reset_index(drop=True)
    assert series.loc[5, "is_anomaly"]
    assert series.loc[5:12, "continuing"].any()
    assert not (series["continuing"] & series["is_anomaly"]).any()
    assert not series.loc[:4, "continuing"].any()


def test_a_model_from_the_earlier_detector_asks_to_be_retrained(
    model: DecomposeIsolationForest, costs: pd.DataFrame
) -> None:
    del model.step_seconds_  # what a model file written before calibrated thresholds lacks
    with pytest.raises(DetectorInputError, match=r"earlier version of the detector.*retrain it"):
        model.detect(costs.iloc[TRAIN_DAYS:])


def test_alarm_episodes_keep_one_alarm_per_incident_despite_gaps() -> None:
    from airflow_provider_snowstorm.core.detector import alarm_episodes

    candidates = np.array([[1, 0, 1, 0, 0, 0, 1, 1, 0]], dtype=bool).T
    up = np.ones(candidates.shape)
    alarms, continued = alarm_episodes(candidates, up, gap=2)
    assert alarms[:, 0].tolist() == [1, 0, 0, 0, 0, 0, 1, 0, 0]  # the third row is 2 rows on; the seventh, 4
    assert continued[:, 0].tolist() == [0, 0, 1, 0, 0, 0, 0, 1, 0]
    flipped = np.where(np.arange(9) >= 2, -1.0, 1.0)[:, None]  # a drop right after a spike is a new alarm
    assert alarm_episodes(candidates, flipped, gap=2)[0][:, 0].tolist() == [1, 0, 1, 0, 0, 0, 1, 0, 0]
    same, none = alarm_episodes(candidates, up, gap=0)
    assert same.tolist() == candidates.tolist()
    assert not none.any()


def test_rows_of_a_shift_under_way_keep_its_alarm_open_without_raising_one() -> None:
    from airflow_provider_snowstorm.core.detector import alarm_episodes

    candidates = np.array([[1, 0, 0, 0, 0, 0, 1, 0, 0]], dtype=bool).T
    ongoing = np.array([[0, 1, 1, 1, 1, 0, 0, 0, 1]], dtype=bool).T
    up = np.ones(candidates.shape)
    alarms, continued = alarm_episodes(candidates, up, gap=2, ongoing=ongoing)
    assert alarms[:, 0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0]  # row 6 is 2 rows after the last ongoing row
    assert continued[:, 0].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0]
    assert alarm_episodes(candidates, up, gap=2)[0][:, 0].tolist() == [1, 0, 0, 0, 0, 0, 1, 0, 0]
    # An ongoing row opens nothing: without an open alarm in its direction it is ignored.
    down = -up
    assert alarm_episodes(candidates, np.r_[up[:1], down[1:]], gap=2, ongoing=ongoing)[0][:, 0].tolist() == [
        1,
        0,
        0,
        0,
        0,
        0,
        1,
        0,
        0,
    ]


def test_sub_daily_alarms_stay_open_a_quarter_of_a_day() -> None:
    """An hourly burst whose rows sometimes dip below the threshold raises one alarm, not one per stretch."""
    index = pd.date_range("2025-01-01", periods=24 * 40, freq="h")
    rng = np.random.default_rng(4)
    hours = index.hour.to_numpy()
    values = 100.0 + 40.0 * np.sin(2 * np.pi * hours / 24) + rng.normal(0.0, 3.0, len(index))
    frame = pd.DataFrame({"wh": values}, index=index)
    burst = slice(24 * 35 + 2, 24 * 35 + 14)
    frame.iloc[burst, 0] += np.tile([60.0, 60.0, 0.0], 4)  # every third hour back to normal
    detector = DecomposeIsolationForest(period=24, random_state=0).fit(frame.iloc[: 24 * 30])
    assert detector._alarm_gap == 6
    result = detector.detect(frame, start=frame.index[24 * 30])
    in_burst = result.set_index("usage_date").loc[frame.index[burst]]
    assert int(in_burst["is_anomaly"].sum()) == 1
    assert int(in_burst["continuing"].sum()) >= 6
    off = DecomposeIsolationForest(period=24, random_state=0, alarm_gap=0).fit(frame.iloc[: 24 * 30])
    assert (
        int(
            off.detect(frame, start=frame.index[24 * 30])
            .set_index("usage_date")
            .loc[frame.index[burst], "is_anomaly"]
            .sum()
        )
        >= 3
    )


@pytest.mark.parametrize("direction", ["both", "up"])
def test_the_warm_up_has_no_score(costs: pd.DataFrame, direction: str) -> None:
    """NaN, not 0: a 0 would also enter the threshold's calibration as a calm row (the fit scores as this does)."""
    history = costs.iloc[: min_history_days(7)]
    scores = DecomposeIsolationForest(direction=direction, random_state=0).fit(history).score_samples(history)
    warm_up = scores.isna().any(axis=1)
    assert warm_up.equals(scores.isna().all(axis=1))
    assert warm_up.iloc[0]
    assert not warm_up.iloc[-1]
    assert (scores[~warm_up].notna()).all().all()
