from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from airflow_provider_snowstorm.core.decomposition import (
    DecompositionConfig,
    _comparators,
    _network_median,
    causal_decompose,
    history_needed,
    position_zscore,
    warm_up_days,
)
from tests.core.conftest import weekly_job


@pytest.mark.parametrize("size", range(1, 17))
def test_network_median_equals_numpy_median(size: int) -> None:
    rng = np.random.default_rng(size)
    arrays = [rng.integers(0, 4, 500).astype(float) for _ in range(size)]
    np.testing.assert_array_equal(_network_median(arrays), np.median(np.stack(arrays), axis=0))


def test_comparators_sort_every_binary_input() -> None:
    # The 0-1 principle: a network that sorts every 0/1 input sorts everything.
    size = 8
    for bits in range(2**size):
        items = [(bits >> i) & 1 for i in range(size)]
        for low, high in _comparators(size):
            items[low], items[high] = min(items[low], items[high]), max(items[low], items[high])
        assert items == sorted(items)


def test_expected_is_exact_for_a_seasonal_series_without_noise() -> None:
    day = np.arange(200)
    values = (100 + np.where(day % 7 < 5, 30.0, 0.0))[:, None]
    result = causal_decompose(values)
    np.testing.assert_allclose(result.expected[10:], values[10:], atol=1e-9)
    assert np.isnan(result.expected[:10]).all()


def test_expected_follows_a_trend_within_a_percent() -> None:
    day = np.arange(200)
    values = (100 + 0.5 * day + np.where(day % 7 < 5, 30.0, 0.0))[:, None]
    result = causal_decompose(values, multiplicative=False)
    np.testing.assert_allclose(result.expected[80:], values[80:], rtol=0.01)


def test_multiplicative_seasonality_follows_growth_within_a_percent() -> None:
    day = np.arange(200)
    values = ((100 + 0.5 * day) * np.where(day % 7 < 5, 1.3, 1.0))[:, None]
    result = causal_decompose(values)
    np.testing.assert_allclose(result.expected[80:], values[80:], rtol=0.01)


def test_no_day_uses_its_own_or_later_values() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(4, 0.2, (150, 3))
    before = causal_decompose(values, first_row=20_000)
    changed = values.copy()
    changed[100:] *= 5
    after = causal_decompose(changed, first_row=20_000)
    np.testing.assert_array_equal(before.scale[:101], after.scale[:101])
    # Day 100's own value only picks which past baseline it is compared with; earlier days are untouched.
    for name in ("expected", "residual", "continuing"):
        np.testing.assert_array_equal(getattr(before, name)[:100], getattr(after, name)[:100])


@pytest.mark.parametrize("quarterly_periods", [0, 2])
def test_history_needed_is_enough_to_reproduce_the_full_computation(quarterly_periods: int) -> None:
    rng = np.random.default_rng(4)
    values = rng.lognormal(4, 0.2, (500, 2))
    # Month-end and quarter-end runs, so that the calendar adjustments reach back as far as they can.
    index = np.datetime64("1970-01-01") + 19_000 + np.arange(500)
    month_end = (index + 1).astype("datetime64[M]") != index.astype("datetime64[M]")
    quarter_end = month_end & np.isin(index.astype("datetime64[M]").astype(int) % 12, (2, 5, 8, 11))
    values[month_end] *= 3.0
    values[quarter_end] *= 2.0
    values[396:405, 0] = 0.0  # an outage across the cuts
    values[rng.random(500) < 0.6, 1] = 0.0  # sporadic use
    config = DecompositionConfig(
        position_periods=8,
        quarterly_periods=quarterly_periods,
        outages=True,
        relative_scale=True,
        sporadic_scale=True,
    )
    needed = history_needed(config)
    full = causal_decompose(values, config, first_row=19_000)
    assert (full.outage_zscore[398:404, 0] < -5).all()
    for cut in (400, 403, 406):
        tail = causal_decompose(values[cut - needed :], config, first_row=19_000 + cut - needed)
        for name in ("zscore", "continuing", "position_zscore", "outage_zscore"):
            np.testing.assert_array_equal(getattr(tail, name)[needed:], getattr(full, name)[cut:])


def _office_hours(days: int, seed: int) -> np.ndarray:
    """Hourly spend of a warehouse running 9:00-17:00 and suspended (exactly zero) at night."""
    rng = np.random.default_rng(seed)
    hour = np.arange(days * 24) % 24
    return np.where((hour >= 9) & (hour < 17), rng.lognormal(3, 0.2, days * 24), 0.0)[:, None]


def test_history_needed_reproduces_sub_daily_scheduled_hours() -> None:
    values = _office_hours(60, 11)
    values[1000:1010] += 20.0  # a night the warehouse was left running
    config = DecompositionConfig(period=24, scale_window=192, baseline_lag=48, monthly_periods=0)
    needed = history_needed(config)
    full = causal_decompose(values, config, rows_per_day=24)
    for cut in (1000, 1100):
        tail = causal_decompose(values[cut - needed :], config, first_row=cut - needed, rows_per_day=24)
        np.testing.assert_array_equal(tail.zscore[needed:], full.zscore[cut:])


def test_spend_in_an_hour_suspended_every_night_is_scaled_by_the_floor_alone() -> None:
    values = _office_hours(30, 12)
    night = 20 * 24 + 3
    values[night] = 2.0  # a tenth of a busy hour, at 3:00, zero on each of the last eight nights
    hourly = causal_decompose(
        values, period=24, scale_window=192, baseline_lag=48, monthly_periods=0, rows_per_day=24
    )
    assert hourly.scale[night, 0] < hourly.scale[night - 12, 0] / 5  # far below a busy hour's noise
    assert hourly.zscore[night, 0] > 20
    # Daily (or weekly) data: eight zero Mondays are sporadic use, not a schedule, so the floor is not the scale.
    for rows_per_day in (1, 1 / 7):
        daily = causal_decompose(
            values, period=24, scale_window=192, baseline_lag=48, monthly_periods=0, rows_per_day=rows_per_day
        )
        assert daily.scale[night, 0] > hourly.scale[night, 0]


def test_an_hour_busy_at_its_full_size_keeps_its_spread_below_the_size_and_the_floor_above() -> None:
    """A warehouse of size 8 that runs the whole of hours 0-11 (exactly 8 credits) and part of hours 12-23: a job
    that ends early at 3:00 is ordinary variation of such a warehouse, a resize to 16 credits at 5:00 is not."""
    rng = np.random.default_rng(13)
    hour = np.arange(30 * 24) % 24
    values = np.where(hour < 12, 8.0, 8.0 * rng.uniform(0.2, 0.9, 30 * 24))[:, None]
    dip, resized = 20 * 24 + 3, 22 * 24 + 5
    values[dip] = 3.0
    values[resized] = 16.0
    hourly = causal_decompose(
        values, period=24, scale_window=192, baseline_lag=48, monthly_periods=0, rows_per_day=24
    )
    floor = hourly.scale[dip - 24, 0]  # the same hour the day before, at the full size: the floor alone
    assert hourly.scale[resized, 0] == pytest.approx(floor, rel=0.2)
    assert hourly.zscore[resized, 0] > 20
    # Below the size: the residuals' scale (it was the floor alone: a z-score of -34).
    assert hourly.scale[dip, 0] > 3 * floor
    assert -10 < hourly.zscore[dip, 0] < -3


def test_a_relative_scale_follows_the_expected_value_unless_a_zero_is_within_its_reach() -> None:
    values, job = weekly_job(300)
    config = DecompositionConfig(relative_scale=True)
    relative = causal_decompose(values, config, first_row=19_723)
    absolute = causal_decompose(values, replace(config, relative_scale=False), first_row=19_723)
    quiet = ~job[100:]
    # The job days' noise no longer widens the quiet days' scale.
    assert np.median(relative.scale[100:, 0][quiet]) < 0.9 * np.median(absolute.scale[100:, 0][quiet])
    # A zero value: while the scale reads it (a window and a period), the scale is the residuals' own.
    values[150] = 0.0
    reach = config.scale_window + config.period - 1
    relative = causal_decompose(values, config, first_row=19_723)
    absolute = causal_decompose(values, replace(config, relative_scale=False), first_row=19_723)
    np.testing.assert_array_equal(relative.scale[151 : 151 + reach], absolute.scale[151 : 151 + reach])
    assert not np.array_equal(relative.scale[151 + reach :], absolute.scale[151 + reach :])
    # Additive seasonality has additive noise.
    additive = replace(config, multiplicative=False)
    np.testing.assert_array_equal(
        causal_decompose(values, additive, first_row=19_723).scale,
        causal_decompose(values, replace(additive, relative_scale=False), first_row=19_723).scale,
    )


def test_a_sporadic_series_is_scaled_by_its_mean_absolute_deviation() -> None:
    rng = np.random.default_rng(3)
    active = rng.random(300) < 0.2  # used on a fifth of the days, 500 a day give or take half
    values = (active * 500 * rng.lognormal(0, 0.5, 300))[:, None]
    config = DecompositionConfig(min_scale=0.01, sporadic_scale=True)
    sporadic = causal_decompose(values, config, first_row=19_723)
    median = causal_decompose(values, replace(config, sporadic_scale=False), first_row=19_723)
    used = np.flatnonzero(active[100:]) + 100
    # The median absolute deviation of mostly idle days put an ordinary day of use well over 100 scales out.
    assert np.max(median.zscore[used, 0]) > 100
    assert np.max(sporadic.zscore[used, 0]) < 10
    # A series idle on fewer than half the days keeps the median absolute deviation.
    busy = np.where(active, 0.0, 500 * rng.lognormal(0, 0.5, 300))[:, None]
    np.testing.assert_array_equal(
        causal_decompose(busy, config, first_row=19_723).scale,
        causal_decompose(busy, replace(config, sporadic_scale=False), first_row=19_723).scale,
    )


def test_position_zscore_compares_a_row_with_the_same_season_position_before_it() -> None:
    values = np.random.default_rng(8).lognormal(4, 0.3, (60, 2))
    zscore = position_zscore(values, period=7, periods=4)
    same_weekday = values[[49, 42, 35, 28], 1]
    assert zscore[56, 1] == pytest.approx((values[56, 1] - same_weekday.mean()) / same_weekday.std(ddof=1))
    # Two earlier values are the fewest a spread needs; with only two, both are used.
    assert np.isnan(zscore[:14]).all()
    assert zscore[15, 0] == pytest.approx(
        (values[15, 0] - values[[8, 1], 0].mean()) / values[[8, 1], 0].std(ddof=1)
    )
    # A flat charge has no spread: its own value is no deviation, any other an infinite one.
    flat = position_zscore(np.full((30, 1), 5.0), period=7, periods=4)
    assert (flat[14:] == 0).all()


def test_position_zscore_is_only_computed_when_asked_for() -> None:
    values = np.random.default_rng(9).lognormal(4, 0.3, (80, 1))
    assert np.isnan(causal_decompose(values).position_zscore).all()
    assert np.isfinite(causal_decompose(values, position_periods=8).position_zscore[14:]).all()


def test_first_zscore_arrives_within_the_warm_up() -> None:
    values = np.random.default_rng(5).lognormal(4, 0.2, (60, 1))
    for first_day in range(7):
        zscore = causal_decompose(values, first_row=first_day).zscore[:, 0]
        assert np.isfinite(zscore[warm_up_days(7) :]).all()


def test_scale_floor_bounds_zscores_of_constant_series() -> None:
    values = np.full((120, 1), 50.0)
    values[100] = 51.0
    result = causal_decompose(values, scale_floor=0.02)
    assert result.scale[100, 0] == pytest.approx(1.0)
    assert result.zscore[100, 0] == pytest.approx(1.0)


def test_a_level_shift_stops_counting_as_anomalous_after_its_first_days() -> None:
    values = np.random.default_rng(6).lognormal(4, 0.03, (200, 1))
    values[150:] *= 1.8
    result = causal_decompose(values, first_row=19_000)
    assert (result.zscore[150:153, 0] > 3).all()
    # The days right after the first ones continue the shift (not re-alarmed), then the baseline has adapted.
    quiet = (result.zscore[153:165, 0] <= 3) | result.continuing[153:165, 0]
    assert quiet.all()


def test_the_end_of_a_burst_is_not_a_drop() -> None:
    values = np.random.default_rng(7).lognormal(4, 0.03, (200, 1))
    values[150:156] *= 2.0
    result = causal_decompose(values, first_row=19_000)
    assert result.zscore[150, 0] > 3
    assert (result.zscore[156:170, 0] > -3).all()


def test_a_recurring_month_start_bump_is_learned() -> None:
    index = np.datetime64("2024-01-01") + np.arange(300)
    values = np.random.default_rng(8).lognormal(4, 0.03, (300, 1))
    first_of_month = (index.astype("datetime64[M]").astype("datetime64[D]") == index)[:, None]
    values = np.where(first_of_month, values * 1.5, values)
    first_day = int((index[0] - np.datetime64("1970-01-01")).astype(int))
    learned = causal_decompose(values, first_row=first_day).zscore[first_of_month[:, 0]][-3:, 0]
    ignored = causal_decompose(values, first_row=first_day, monthly_periods=0).zscore[first_of_month[:, 0]][
        -3:, 0
    ]
    assert (np.abs(learned) < 3).all()
    assert (ignored > 3).all()


def test_a_job_on_the_last_business_day_of_each_month_is_learned() -> None:
    index = np.datetime64("2024-01-01") + np.arange(400)
    values = np.random.default_rng(9).lognormal(4, 0.03, (400, 1))
    next_month = (index.astype("datetime64[M]") + 1).astype("datetime64[D]")
    last_business_day = np.busday_offset(next_month, -1, roll="forward") == index
    values = np.where(last_business_day[:, None], values * 1.5, values)
    first_day = int((index[0] - np.datetime64("1970-01-01")).astype(int))
    learned = causal_decompose(values, first_row=first_day).zscore[last_business_day][-4:, 0]
    ignored = causal_decompose(values, first_row=first_day, monthly_periods=0).zscore[last_business_day][
        -4:, 0
    ]
    assert (np.abs(learned) < 4).all()
    assert (ignored > 2 * np.abs(learned).max()).all()


def test_a_quarter_end_run_is_learned_from_past_quarters() -> None:
    index = np.datetime64("2024-01-01") + np.arange(700)
    values = np.random.default_rng(10).lognormal(4, 0.03, (700, 1))
    month_end = (index + 1).astype("datetime64[M]") != index.astype("datetime64[M]")
    quarter_end = month_end & np.isin(index.astype("datetime64[M]").astype(int) % 12, (2, 5, 8, 11))
    values = np.where(quarter_end[:, None], values * 4.0, values)
    first_day = int((index[0] - np.datetime64("1970-01-01")).astype(int))
    learned = causal_decompose(values, first_row=first_day, quarterly_periods=2).zscore[quarter_end][-3:, 0]
    monthly_only = causal_decompose(values, first_row=first_day, quarterly_periods=0).zscore[quarter_end][
        -3:, 0
    ]
    assert (np.abs(learned) < 3).all()
    assert (monthly_only > 10).all()


def test_a_learned_month_end_run_widens_that_days_scale_in_proportion_to_its_size() -> None:
    index = np.datetime64("2024-01-01") + np.arange(400)
    rng = np.random.default_rng(11)
    values = rng.lognormal(4, 0.05, (400, 1))
    month_end = (index + 1).astype("datetime64[M]") != index.astype("datetime64[M]")
    # A month-end job five times the level, varying like the rest (5% of its own size).
    values = np.where(month_end[:, None], values + 5 * np.exp(4) * rng.lognormal(0, 0.05, (400, 1)), values)
    first_day = int((index[0] - np.datetime64("1970-01-01")).astype(int))
    result = causal_decompose(values, first_row=first_day)
    ordinary = np.median(result.scale[200:][~month_end[200:], 0])
    assert (result.scale[200:][month_end[200:], 0] > 4 * ordinary).all()
    assert (np.abs(result.zscore[200:][month_end[200:], 0]) < 3).all()
    # Against the ordinary scale, the learned job's normal variation would read as anomalies.
    assert (np.abs(result.residual[200:][month_end[200:], 0]) > 3 * ordinary).any()


def test_a_config_and_the_same_keyword_arguments_decompose_identically() -> None:
    values = np.random.default_rng(4).lognormal(4.0, 0.1, (200, 3))
    config = DecompositionConfig(period=5, monthly_periods=0, multiplicative=False, min_scale=0.5)

    by_config = causal_decompose(values, config, first_row=19_000)
    by_keywords = causal_decompose(
        values, first_row=19_000, period=5, monthly_periods=0, multiplicative=False, min_scale=0.5
    )
    overridden = causal_decompose(
        values,
        DecompositionConfig(period=9),
        first_row=19_000,
        period=5,
        monthly_periods=0,
        multiplicative=False,
        min_scale=0.5,
    )

    for result in (by_keywords, overridden):
        np.testing.assert_array_equal(result.zscore, by_config.zscore)
        np.testing.assert_array_equal(result.continuing, by_config.continuing)


def test_an_unknown_parameter_is_rejected() -> None:
    with pytest.raises(TypeError, match="periods_per_year"):
        causal_decompose(np.ones((30, 1)), periods_per_year=52)
