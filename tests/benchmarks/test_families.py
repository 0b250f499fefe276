from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from benchmarks.families import FAMILIES, FLAT_SERIES, TRAIN_SHARE, LabelledSet, smooth_storage

N_SERIES = 8
# Rows labelled from the start of a level shift, per period (daily: 3 days; hourly: 24 hours; 5-minute: 36 rows).
SHIFT_LABEL_ROWS = {7: 3, 24: 24, 48: 24, 288: 36}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request: pytest.FixtureRequest) -> tuple[str, LabelledSet]:
    return request.param, FAMILIES[request.param](3, N_SERIES)


def test_at_least_the_required_families() -> None:
    required = {
        "lognormal_weekly",
        "heavy_tail",
        "intermittent",
        "smooth_storage",
        "batch_jobs",
        "hourly_warehouse",
        "minute_metrics",
        "service_metrics",
        "package_generator",
    }
    assert required <= set(FAMILIES)


def test_deterministic_per_seed_and_different_across_seeds(family: tuple[str, LabelledSet]) -> None:
    name, data = family
    again = FAMILIES[name](3, N_SERIES)
    pd.testing.assert_frame_equal(data.values, again.values)
    pd.testing.assert_frame_equal(data.labels, again.labels)
    other = FAMILIES[name](4, N_SERIES)
    assert not np.array_equal(data.values.to_numpy(), other.values.to_numpy())


def test_values_are_a_fixed_frequency_frame_of_non_negative_floats(family: tuple[str, LabelledSet]) -> None:
    _, data = family
    index = data.values.index
    assert isinstance(index, pd.DatetimeIndex)
    assert index.is_monotonic_increasing
    assert (np.diff(index.asi8) == np.diff(index.asi8)[0]).all()
    assert data.values.shape[1] == N_SERIES
    assert data.values.columns.is_unique
    values = data.values.to_numpy()
    assert values.dtype == np.float64
    assert np.isfinite(values).all()
    assert (values >= 0).all()
    assert data.period == (7 if data.rows_per_day == 1 else data.rows_per_day)
    days = len(index) / data.rows_per_day
    assert 21 <= days <= 600


def test_labels_lie_within_the_index_and_name_known_series(family: tuple[str, LabelledSet]) -> None:
    _, data = family
    labels = data.labels
    assert list(labels.columns[:4]) == ["series", "start", "end", "kind"]
    assert len(labels) > 0
    assert set(labels["series"]) <= set(data.values.columns)
    assert (labels["start"] <= labels["end"]).all()
    assert (labels["start"] >= data.values.index[0]).all()
    assert (labels["end"] <= data.values.index[-1]).all()
    assert labels["start"].isin(data.values.index).all()
    assert labels["end"].isin(data.values.index).all()


def test_incidents_in_both_the_training_and_the_scored_span(family: tuple[str, LabelledSet]) -> None:
    _, data = family
    boundary = data.values.index[data.train_rows]
    assert data.train_rows == round(TRAIN_SHARE * len(data.values))
    assert (data.labels["end"] < boundary).any()
    assert (data.labels["start"] >= boundary).any()


def test_incidents_of_a_series_do_not_overlap(family: tuple[str, LabelledSet]) -> None:
    _, data = family
    for _, incidents in data.labels.sort_values("start").groupby("series"):
        assert (incidents["start"].to_numpy()[1:] > incidents["end"].to_numpy()[:-1]).all()


def test_flat_series_are_exactly_flat_and_have_no_labels() -> None:
    data = smooth_storage(5, 10)
    assert set(FLAT_SERIES) <= set(data.values.columns)
    assert not data.labels["series"].isin(FLAT_SERIES).any()
    assert (data.values["flat_zero"] == 0).all()
    assert data.values["flat_charge"].nunique() == 1
    weekly = data.values["flat_weekly"]
    assert (weekly.to_numpy()[7:] == weekly.to_numpy()[:-7]).all()
    assert weekly.nunique() == 2


def test_hourly_family_has_suspended_zero_hours_and_runaways() -> None:
    data = FAMILIES["hourly_warehouse"](1, 30)
    assert data.period == 24
    assert data.rows_per_day == 24
    assert (data.values.to_numpy() == 0).mean() > 0.2
    assert "runaway" in set(data.labels["kind"])


def test_level_shifts_label_only_their_first_days(family: tuple[str, LabelledSet]) -> None:
    _, data = family
    shifts = data.labels[data.labels["kind"] == "level_shift"]
    lengths = (shifts["end"] - shifts["start"]) / (data.values.index[1] - data.values.index[0]) + 1
    assert (lengths <= SHIFT_LABEL_ROWS[data.period]).all()


def test_a_level_shift_on_a_day_without_usage_is_sized_in_noise_scales() -> None:
    """Weekday-only sporadic series have no expected usage on Saturdays: a level shift starting there was sized
    relative to a level of 0 and grew the series to 1e10 and more (4 of these 60 series)."""
    values = FAMILIES["intermittent"](2026, 60).values.to_numpy()
    before = values[:28]  # no incident starts in a series' first 28 rows
    usual = np.array([np.quantile(column[column > 0], 0.9) for column in before.T])
    assert (values.max(axis=0) < 10_000 * usual).all()


def test_label_mask_marks_exactly_the_labelled_rows() -> None:
    data = FAMILIES["lognormal_weekly"](2, 4)
    mask = data.label_mask()
    lengths = (data.labels["end"] - data.labels["start"]).dt.days + 1
    assert mask.sum() == lengths.sum()


def test_unknown_sizes_are_rejected() -> None:
    for function in FAMILIES.values():
        with pytest.raises(ValueError, match="n_series"):
            function(1, 0)


def assert_incident_rows(data: LabelledSet, bounds: dict[str, tuple[int, int]]) -> None:
    """Exactly these incident kinds, each labelled over between ``low`` and ``high`` rows."""
    labels = data.labels
    rows = (labels["end"] - labels["start"]) / (data.values.index[1] - data.values.index[0]) + 1
    assert set(labels["kind"]) == set(bounds)
    for kind, (low, high) in bounds.items():
        assert rows[labels["kind"] == kind].between(low, high).all(), kind


def test_minute_family_is_five_minutely_with_a_daily_period_and_its_incident_lengths() -> None:
    started = time.perf_counter()
    data = FAMILIES["minute_metrics"](2, 60)
    assert time.perf_counter() - started < 5.0  # about 0.25 s; generous for slow machines
    assert data.freq == "5min"
    assert data.period == 288
    assert data.rows_per_day == 288
    assert data.values.shape == (21 * 288, 60)
    assert (data.values.index[1:] - data.values.index[:-1] == pd.Timedelta(minutes=5)).all()
    assert_incident_rows(data, {"spike": (1, 6), "burst": (12, 72), "level_shift": (36, 36), "drop": (6, 60)})
    # Outages reach zero, and nearly every series carries a labelled incident.
    assert (data.values.to_numpy() == 0).any()
    assert data.labels["series"].nunique() >= 50


def test_service_family_is_half_hourly_with_a_weekly_rhythm_its_daily_period_does_not_know() -> None:
    data = FAMILIES["service_metrics"](2, 60)
    assert (data.freq, data.period, data.rows_per_day) == ("30min", 48, 48)
    assert data.values.shape == (56 * 48, 60)
    assert_incident_rows(data, {"spike": (1, 4), "burst": (6, 48), "level_shift": (24, 24), "drop": (4, 36)})
    # Utilisation saturates at 100%; several series are quieter at weekends (requests, busy hours' load).
    assert (data.values.to_numpy() == 100.0).any()
    assert data.values.to_numpy().max() > 100.0  # request counts and latencies are not percentages
    weekend = data.values.index.day_of_week >= 5
    ratio = data.values[weekend].median() / data.values[~weekend].median()
    assert (ratio < 0.9).sum() >= 10


def test_a_training_span_can_be_set_but_must_leave_rows_to_score() -> None:
    data = FAMILIES["lognormal_weekly"](1, 2)
    shorter = data.with_training_rows(30)
    assert shorter.train_rows == 30
    assert shorter.values is data.values
    assert data.train_rows == round(TRAIN_SHARE * len(data.values))
    for rows in (0, len(data.values)):
        with pytest.raises(ValueError, match="must leave rows to score"):
            data.with_training_rows(rows)


def test_job_fleet_bills_warehouse_sizes_hourly_with_runaways_and_resizes() -> None:
    data = FAMILIES["job_fleet"](2, 30)
    assert data.freq == "h"
    assert data.period == 24
    assert data.values.shape == (120 * 24, 30)
    assert_incident_rows(data, {"runaway": (12, 60), "resized": (6, 72)})
    # Outside incidents no hour bills more than the warehouse's size, a power of two from 1 to 32 credits.
    normal = data.values.where(~data.label_mask())
    sizes = np.log2(normal.max().to_numpy())
    assert np.allclose(sizes, np.round(sizes))
    assert sizes.min() >= 0
    assert sizes.max() <= 5
